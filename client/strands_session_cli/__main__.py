"""`python -m strands_session_cli`: the same as the `strands-cli` command."""

from strands_session_cli.main import cli

cli(prog_name="strands-cli")
