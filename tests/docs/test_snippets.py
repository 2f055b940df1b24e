"""Every ```python block of README.md and docs/*.md runs, against the test servers.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), once per backend. Whatever URL a snippet passes to ``init_job_queue`` /
``init_async_job_queue``, it gets this test's own storage (a fresh PostgreSQL database or Redis
key prefix), so snippets can show realistic URLs; each file starts with ``q``, a blocking
queue on that storage, as the pages assume. A block preceded by ``<!-- no-run -->``
(e.g. one that runs a worker until Ctrl-C) is skipped; use it sparingly.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NO_RUN = "<!-- no-run -->"

_BLOCK = re.compile(r"(?P<before>[^\n]*\n)?```python\n(?P<code>.*?)```", re.S)


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(line, code, runnable) of every python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in _BLOCK.finditer(text):
        line = text.count("\n", 0, m.start("code")) + 1
        runnable = NO_RUN not in (m.group("before") or "")
        out.append((line, textwrap.dedent(m.group("code")), runnable))
    return out


def test_every_doc_has_parsable_blocks() -> None:
    """The extraction finds the blocks (so a broken fence cannot silently skip a file)."""
    total = sum(len(python_blocks(p)) for p in DOCS)
    runnable = sum(r for p in DOCS for _, _, r in python_blocks(p))
    assert total >= 20
    assert runnable >= total * 0.6, f"only {runnable} of {total} blocks run: too many no-run"


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
@pytest.mark.parametrize("backend_name", ["postgres", "redis"])
def test_snippets_run(path: Path, storage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataqueue

    made: list[Any] = []
    real_sync, real_async = dataqueue.init_job_queue, dataqueue.init_async_job_queue

    def redirect(real: Any) -> Any:
        def init(url: str | None = None, **options: Any) -> Any:
            for key in (
                "database_config",
                "pool",
                "redis_config",
                "client",
                "backend",
                "key_prefix",
                "schema",
            ):
                options.pop(key, None)
            queue = real(**storage.options(), **options)
            made.append(queue)
            return queue

        return init

    monkeypatch.setattr(dataqueue, "init_job_queue", redirect(real_sync))
    monkeypatch.setattr(dataqueue, "init_async_job_queue", redirect(real_async))
    module = type(sys)(f"docs_{path.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    # Pages assume a queue named ``q`` (made here on this test's storage, like any other).
    namespace["q"] = dataqueue.init_job_queue()
    try:
        for line, code, runnable in python_blocks(path):
            if not runnable:
                continue
            try:
                exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{path.name} block at line {line} failed: {exc!r}") from exc
    finally:
        for queue in made:
            close = queue.close()
            if hasattr(close, "__await__"):
                import asyncio

                asyncio.run(close)
