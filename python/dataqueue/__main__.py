"""``python -m dataqueue`` and the ``dataqueue`` console script: the command line, with a one-line
error instead of a traceback when the ``cli`` extra (typer, rich) is not installed."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line, or explain in one line that the ``cli`` extra is missing."""
    try:
        from dataqueue.cli import main as cli_main
    except ModuleNotFoundError as exc:  # typer/rich are the "cli" extra
        sys.stderr.write(
            f"error: the command line needs {exc.name!r}: pip install 'dataqueue[cli]'\n"
        )
        sys.exit(1)
    cli_main()


if __name__ == "__main__":
    main()
