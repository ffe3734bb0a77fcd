"""Render a new Strands agent project from the Jinja2 templates in `templates/project/`.

`TEMPLATES` lists every template, where it lands in the new project and for which session
states it is rendered. With `postgresql` the project depends on the client distribution
(`strands-session-client`, which brings this CLI too); its README says where to install it from.
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .locate import client_source
from .project import local_port

SESSION_STATES = ("postgresql", "file", "none")
ALL_STATES = frozenset(SESSION_STATES)
POSTGRESQL = frozenset({"postgresql"})

DEFAULT_BACKEND_PORT = 8000
DEFAULT_SESSION_URL = f"http://127.0.0.1:{DEFAULT_BACKEND_PORT}"
BACKEND_IMAGE = "strands-session-backend:latest"
MAX_NAME_LENGTH = 40

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
# Package names that would shadow what the generated project imports.
_RESERVED = frozenset(
    {"strands", "service", "tests", "test", "httpx", "backoff", "pytest", "boto3", "botocore"}
    | {"typing", "strands_session_client", "strands_session_cli"}
)

REQUIREMENTS = {
    "strands": "strands-agents>=1.62,<2",
    "client": "strands-session-client>=0.1,<1",
    "pytest": "pytest>=8",
}


class ScaffoldError(ValueError):
    """The project cannot be rendered or written; the message says why."""


@dataclass(frozen=True)
class Template:
    """One template: its file under `templates/project/`, its output path and its states."""

    source: str
    target: str
    states: frozenset[str] = ALL_STATES
    example: bool = False

    def output_path(self, package: str) -> str:
        """The path of the rendered file inside the new project."""
        return self.target.replace("{package}", package)


TEMPLATES: tuple[Template, ...] = (
    Template("README.md.j2", "README.md"),
    Template("pyproject.toml.j2", "pyproject.toml"),
    Template("gitignore.j2", ".gitignore"),
    Template("env.j2", ".env.example", example=True),
    Template("env.j2", ".env"),
    Template("compose.yaml.j2", "compose.yaml", POSTGRESQL),
    Template("package/__init__.py.j2", "{package}/__init__.py"),
    Template("package/__main__.py.j2", "{package}/__main__.py"),
    Template("package/agent.py.j2", "{package}/agent.py"),
    Template("package/config.py.j2", "{package}/config.py"),
    Template("tests/conftest.py.j2", "tests/conftest.py"),
    Template("tests/test_agent.py.j2", "tests/test_agent.py"),
    Template("tests/test_session_backend.py.j2", "tests/test_session_backend.py", POSTGRESQL),
)


def validate_name(name: str) -> str:
    """Check a project name and return its Python package name (`my-agent` -> `my_agent`)."""
    if not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(
            f"invalid project name {name!r}: use lower-case letters, digits and single '-' or "
            f"'_' between them, starting with a letter, at most {MAX_NAME_LENGTH} characters "
            "(e.g. 'travel-agent')"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package) or package in _RESERVED:
        raise ScaffoldError(f"invalid project name {name!r}: {package!r} would shadow a module")
    return package


@dataclass(frozen=True)
class ProjectSpec:
    """What the user asked for: everything the templates are rendered from."""

    name: str
    session_state: str = "none"
    session_url: str = DEFAULT_SESSION_URL
    api_key: str | None = None
    description: str = "A helpful assistant."

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.session_state not in SESSION_STATES:
            raise ScaffoldError(f"unknown session state {self.session_state!r}")
        for label, value in (("session URL", self.session_url), ("API key", self.api_key or "")):
            if any(ch.isspace() for ch in value) or "#" in value:
                raise ScaffoldError(f"the {label} must not contain spaces or '#'")

    @property
    def package(self) -> str:
        """The Python package of the project."""
        return validate_name(self.name)

    def context(self) -> dict[str, Any]:
        """The variables every template sees."""
        requirements = [REQUIREMENTS["strands"]]
        if self.session_state == "postgresql":
            requirements.append(REQUIREMENTS["client"])
        source = client_source()
        return {
            "name": self.name,
            "package": self.package,
            "title": self.name.replace("-", " ").replace("_", " ").title(),
            "session_state": self.session_state,
            "postgresql": self.session_state == "postgresql",
            "file": self.session_state == "file",
            "stateful": self.session_state != "none",
            "session_url": self.session_url.rstrip("/"),
            # compose.yaml publishes the backend here: the port of a local session URL.
            "backend_port": local_port(self.session_url) or DEFAULT_BACKEND_PORT,
            "api_key": self.api_key or "",
            "description": " ".join(self.description.split()),
            "requirements": requirements,
            "test_requirement": REQUIREMENTS["pytest"],
            "backend_image": BACKEND_IMAGE,
            # Where to `pip install` the client from (it is on no package index).
            "client_source": str(source) if source else "<session backend checkout>/client",
        }


def python_literal(value: str) -> str:
    """A Python string literal for `value`, quoted the way ruff's formatter leaves it."""
    if value.count('"') > value.count("'"):
        return repr(value)
    # A JSON string is a valid Python literal, in double quotes.
    return json.dumps(value, ensure_ascii=False)


def environment() -> jinja2.Environment:
    """The Jinja2 environment over `templates/project/`, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("strands_session_cli", "templates/project"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = python_literal
    env.filters["toml"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def render_template(template: Template, spec: ProjectSpec) -> str:
    """Render one template for `spec`."""
    context = spec.context() | {"example": template.example}
    return environment().get_template(template.source).render(context)


def render_project(spec: ProjectSpec) -> dict[str, str]:
    """Every file of the new project: relative path -> text."""
    return {
        t.output_path(spec.package): render_template(t, spec)
        for t in TEMPLATES
        if spec.session_state in t.states
    }


def generated_paths(package: str) -> set[str]:
    """Every path `init` may write, whatever the session state."""
    return {t.output_path(package) for t in TEMPLATES}


def write_project(spec: ProjectSpec, output_dir: Path, *, force: bool = False) -> Path:
    """Write the project into `output_dir/<name>` and return that directory.

    An existing directory is refused unless `force`; then the generated files are rewritten,
    generated files of other session states are removed, and anything else is left alone.
    """
    files = render_project(spec)
    root = output_dir / spec.name
    if root.exists() and not force:
        raise ScaffoldError(f"{root} already exists; pass --force to overwrite it")
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} exists and is not a directory")
    for stale in generated_paths(spec.package) - files.keys():
        (root / stale).unlink(missing_ok=True)
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # The .env may hold an API key: keep it private to the user.
    (root / ".env").chmod(0o600)
    return root
