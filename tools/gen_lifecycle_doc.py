#!/usr/bin/env python3
"""Write the transition table of dataqueue/lifecycle.py into docs/lifecycle.md.

The table sits between the ``<!-- transitions:start -->`` and ``<!-- transitions:end -->``
markers; ``--check`` fails if it is stale (a contract test checks the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))

from dataqueue.lifecycle import transition_table_markdown  # noqa: E402

START, END = "<!-- transitions:start -->\n", "<!-- transitions:end -->"


def main() -> int:
    doc = ROOT / "docs" / "lifecycle.md"
    text = doc.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    fresh = head + START + transition_table_markdown() + END + tail
    if "--check" in sys.argv[1:]:
        if fresh != text:
            print("docs/lifecycle.md is stale: run python tools/gen_lifecycle_doc.py")
            return 1
        return 0
    doc.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
