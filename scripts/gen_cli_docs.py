"""Generate docs/reference/cli.md from the commands' --help (CI checks it is up to date).

    python scripts/gen_cli_docs.py          # rewrite docs/reference/cli.md
    python scripts/gen_cli_docs.py --check  # exit 1 if it would change
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["CONDENSE_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # core commands only, independent of installs

import click  # noqa: E402
from click.testing import CliRunner  # noqa: E402

TARGET = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"


def render() -> str:
    from condense.cli import cli

    runner = CliRunner()
    parts = ["# CLI reference\n",
             "Generated from `--help` by `scripts/gen_cli_docs.py`; CI fails if it drifts.\n"]

    def section(path: list[str], cmd: click.Command) -> None:
        result = runner.invoke(cli, [*path, "--help"], terminal_width=100, prog_name="condense")
        title = " ".join(["condense", *path])
        parts.append(f"## `{title}`\n\n```text\n{result.output.rstrip()}\n```\n")
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                section([*path, name], cmd.get_command(ctx, name))  # type: ignore[arg-type]

    section([], cli)
    return "\n".join(parts)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(TARGET)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
