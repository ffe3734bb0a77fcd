"""`python -m service.cli`: the same as the `strands-cli` command."""

from service.cli.main import cli

cli(prog_name="strands-cli")
