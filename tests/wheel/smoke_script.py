"""Run inside a fresh virtualenv where only the built wheel is installed.

Checks that the installed package (not the source tree) imports with its compiled core, then
enqueues a job and runs it on the embedded database (or on ``SMOKE_PG_URL`` when given).
Prints ``SMOKE OK`` on success.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    import dataqueue
    from dataqueue import _core, batch_dep_ref, init_job_queue

    assert "site-packages" in (dataqueue.__file__ or ""), dataqueue.__file__
    assert batch_dep_ref(0) == -1
    print("core:", _core.__file__)

    url = os.environ.get("SMOKE_PG_URL")
    server = None
    if not url:
        from dataqueue.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(sys.argv[1])
        server.start()
        url = server.url()
    print("database:", "embedded" if server else "test server")
    try:
        with init_job_queue(url) as q:
            q.migrate()
            job_id = q.add_job("greet", {"name": "wheel"})

            def greet(payload: dict[str, str], ctx: object) -> dict[str, str]:
                return {"greeting": "hello " + payload["name"]}

            with q.create_processor({"greet": greet}) as processor:
                assert processor.start() == 1
            record = q.get_job(job_id)
            assert record is not None
            assert record.status.value == "completed", record
            assert record.output == {"greeting": "hello wheel"}, record.output
    finally:
        if server is not None:
            server.stop()
    print("SMOKE OK")


if __name__ == "__main__":
    main()
