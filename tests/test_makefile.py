"""`make run` on a fresh clone installs what serving needs and nothing else, and says what it is
installing; `make test` and `make bench` add their own tools. Checked with `make -n` (print the
commands, run nothing) against a virtual environment that does not exist yet."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

TEST_AND_BENCH_TOOLS = ("pytest", "schemathesis", "hypothesis", "ruff", "mypy", "matplotlib")


def planned(target: str, tmp_path) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'fresh-venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    return [line for line in lines if "pip install" in line]


def test_make_run_installs_only_what_serving_needs(tmp_path) -> None:
    lines = planned("run", tmp_path)
    pip = installs(lines)
    assert len(pip) == 1 and re.search(r"install .* -e \.$", pip[0]), pip
    # ...and says so before it starts, since a first install takes a while.
    before = lines[: lines.index(pip[0])]
    assert any(line.startswith("echo") and "Installing" in line for line in before), lines
    served = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    named = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in served}
    assert not named & set(TEST_AND_BENCH_TOOLS), named


@pytest.mark.parametrize(("target", "extra"), [("test", "[test]"), ("bench", "[bench]")])
def test_make_test_and_bench_add_their_tools(tmp_path, target, extra) -> None:
    pip = installs(planned(target, tmp_path))
    assert any(extra in line for line in pip), pip
    assert any("./client" in line for line in pip), pip
