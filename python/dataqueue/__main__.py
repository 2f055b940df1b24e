"""``python -m dataqueue``: the command line."""

from __future__ import annotations

import sys


def _run() -> None:
    try:
        from dataqueue.cli import main
    except ModuleNotFoundError as exc:  # typer/rich are the "cli" extra
        sys.stderr.write(
            f"error: the command line needs {exc.name!r}: pip install 'dataqueue[cli]'\n"
        )
        sys.exit(1)
    main()


if __name__ == "__main__":
    _run()
