"""Terminal output shared by the commands: rich consoles and the failure they all raise."""

from __future__ import annotations

from typing import IO, Any

import click
from rich.console import Console
from rich.markup import escape

from .health import Readiness

# soft_wrap: long URLs and commands stay on one line, so they can be copied.
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


class Failure(click.ClickException):
    """A command failed: print what happened and, when known, what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        err_console.print(f"[bold red]Error:[/] {escape(self.message)}")
        if self.hint:
            err_console.print(f"[yellow]Hint:[/] {escape(self.hint)}")


def warn(message: str, hint: str | None = None) -> None:
    """Print a warning (and its hint) to stderr."""
    err_console.print(f"[bold yellow]Warning:[/] {escape(message)}")
    if hint:
        err_console.print(f"[yellow]Hint:[/] {escape(hint)}")


def fail_unless_ready(result: Readiness) -> None:
    """Raise `Failure` carrying the message and hint of a failed check."""
    if not result.ok:
        raise Failure(result.message, result.hint)


def print_ready(url: str, *, note: str | None = None) -> None:
    """Tell the user where the API and its documentation are."""
    console.print(f"[bold green]Session backend ready[/] at {escape(url)}")
    console.print(f"  API docs:  {escape(url)}/docs")
    console.print(f"  API base:  {escape(url)}/api/v1")
    if note:
        console.print(f"  {escape(note)}")
    console.print(f"  Agents find it with SESSION_BACKEND_URL={escape(url)}")
