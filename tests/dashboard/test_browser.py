"""The dashboard in a real headless Chromium (Debian's ``chromium`` package, driven by
Playwright): overview, filtering, a job page, retry/cancel by clicking, live progress, and the
dependency graphs of a diamond DAG, a tag drain and the demo pipeline. Screenshots of the
overview, a job and a graph are taken on the PostgreSQL runs: into a temporary folder, or into
docs/images/ (the README's pictures) with ``DATAQUEUE_SCREENSHOTS=docs``, so that a test run
leaves the checkout as it was.

Without /usr/bin/chromium these tests skip locally, but fail under CI=true: .ci/services.sh
installs it there, so a missing browser is a broken setup, not a reason to pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _worker_helpers import add_diamond, claim_job, complete, fail_terminally
from conftest import free_port
from dataqueue.records import JobStatus

CHROMIUM = os.environ.get("DATAQUEUE_CHROMIUM", "/usr/bin/chromium")
IMAGES = (
    Path(__file__).resolve().parents[2] / "docs" / "images"
    if os.environ.get("DATAQUEUE_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "dataqueue-screenshots"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI: {CHROMIUM} is missing (bash .ci/services.sh installs chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    p = ctx.new_page()
    p.set_default_timeout(15_000)
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    ctx.close()
    assert errors == [], errors


def shot(live: Any, page: Any, name: str, **kwargs: Any) -> None:
    if live.place.backend == "postgres":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / name), **kwargs)


def test_overview_filter_and_open_a_job(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    sq = live.sq
    ids = [sq.add_job("send_email", {"to": f"u{i}@example.com"}, tags=["mail"]) for i in range(4)]
    sq.add_jobs([{"job_type": "resize_image", "payload": {"n": i}} for i in range(3)])
    complete(sq, claim_job(sq, ids[0]))
    fail_terminally(sq, ids[1], "SMTP 550: mailbox unavailable")
    claim_job(sq, ids[2])  # running
    page.goto(live.url + "/")
    row = page.locator('#types-table tr[data-type="send_email"]')
    expect(row).to_contain_text("send_email")
    expect(page.locator('#types-table tr[data-type="resize_image"] td').nth(1)).to_have_text("3")
    expect(page.locator("#workers")).to_contain_text("test-worker")
    shot(live, page, "overview.png", full_page=True)

    page.click("text=Jobs")
    page.select_option('select[name="status"]', "failed")
    page.click('form#filters button[type="submit"]')
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("SMTP 550")
    rows.first.locator(f'a[href="/jobs/{ids[1]}"]').click()
    expect(page.locator("h1")).to_contain_text(f"Job #{ids[1]}")
    expect(page.locator("#why")).to_contain_text("no attempts left")


def test_retry_a_failed_job_and_cancel_a_pending_one_by_clicking(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    sq = live.sq
    failed, pending = sq.add_job("t"), sq.add_job("t")
    fail_terminally(sq, failed)
    page.goto(f"{live.url}/jobs/{failed}")
    expect(page.locator("#job-status")).to_have_text("failed")
    page.click("#retry-button")
    expect(page.locator("#job-status")).to_have_text("pending")
    assert sq.get_job(failed).status is JobStatus.PENDING
    page.goto(f"{live.url}/jobs/{pending}")
    page.click("#cancel-button")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    assert sq.get_job(pending).status is JobStatus.CANCELLED
    # Bulk from the table: tick a row, cancel selected.
    other = sq.add_job("t")
    page.goto(f"{live.url}/jobs?status=pending")
    page.check(f'input[name="ids"][value="{other}"]')
    page.click('button[value="cancel"]')
    expect(page.locator(".flash")).to_contain_text("1 job(s) changed")
    assert sq.get_job(other).status is JobStatus.CANCELLED


def test_follow_a_running_jobs_progress_live(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    sq = live.sq
    j = sq.add_job("export_report", {"month": "2026-11"})
    job = claim_job(sq, j)
    page.goto(f"{live.url}/jobs/{j}")
    expect(page.locator("#job-status")).to_have_text("processing")
    assert sq._backend.set_progress(j, job.locked_by, job.lock_version, 40)
    expect(page.locator("#job-progress")).to_have_text("40%")
    assert sq._backend.set_progress(j, job.locked_by, job.lock_version, 75)
    expect(page.locator("#job-progress")).to_have_text("75%")
    shot(live, page, "job.png", full_page=True)
    complete(sq, job, {"rows": 1200, "file": "report-2026-11.csv"})
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#job-output")).to_contain_text("report-2026-11.csv")


def test_graph_of_a_diamond(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    sq = live.sq
    a, b, c, d = add_diamond(sq)
    complete(sq, claim_job(sq, a))
    complete(sq, claim_job(sq, b))
    page.goto(f"{live.url}/jobs/{d}/graph")
    nodes = page.locator("svg.dq-graph g.dq-node")
    expect(nodes).to_have_count(4)
    expect(page.locator(f'g.dq-node[data-job-id="{a}"]')).to_have_class(
        "dq-node kind-job status-completed"
    )
    expect(page.locator("svg.dq-graph polyline.dq-edge")).to_have_count(4)
    expect(page.locator("#why")).to_contain_text(f"1 prerequisite(s) to complete: #{c} (pending)")
    # Clicking a node opens that job's graph.
    page.locator(f'g.dq-node[data-job-id="{c}"]').click()
    expect(page.locator("h1")).to_contain_text(f"#{c} right")


def test_graph_of_a_tag_drain_barrier(live: Any, page: Any) -> None:
    from playwright.sync_api import expect

    sq = live.sq
    imports = [sq.add_job("import_batch", {"n": i}, tags=["import", "nightly"]) for i in range(2)]
    claim_job(sq, imports[0])
    report = sq.add_job("report", depends_on={"tags": ["import", "nightly"]})
    page.goto(f"{live.url}/jobs/{report}/graph")
    drain = page.locator("g.dq-node.kind-drain")
    expect(drain).to_have_count(1)
    expect(drain).to_contain_text("drain [import, nightly]")
    expect(drain).to_contain_text("2 holder(s)")
    for i in imports:
        expect(page.locator(f'g.dq-node[data-job-id="{i}"]')).to_have_count(1)
    why = page.locator("#why")
    expect(why).to_contain_text("tag drain [import, nightly] to clear")
    expect(why).to_contain_text(f"#{imports[0]}, #{imports[1]}")


def test_dashboard_command_on_the_demo_database_marks_the_cascade(live: Any, page: Any) -> None:
    """``dataqueue demo`` then ``dataqueue dashboard`` on the same database: the notify job's
    graph shows it cancelled by the failed upload (the cascade root)."""
    from playwright.sync_api import expect

    place = live.place
    env = {**os.environ, "DATAQUEUE_URL": place.url, "COLUMNS": "120"}
    conn = ["--key-prefix", place.key_prefix] if place.key_prefix else []
    exe = shutil.which("dataqueue") or sys.executable + " -m dataqueue"
    demo = subprocess.run(
        [*exe.split(), "demo", "--speed", "0.05", "--timeout", "60", *conn],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    notify = live.sq.get_jobs({"job_type": "demo.notify"})[0]
    upload = live.sq.get_jobs({"job_type": "demo.upload"})[0]
    assert notify.status is JobStatus.CANCELLED
    port = free_port()
    server = subprocess.Popen(
        [*exe.split(), "dashboard", "--port", str(port), *conn],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/api/overview", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "dataqueue dashboard did not come up"
            time.sleep(0.2)
        page.goto(f"{base}/jobs/{notify.id}/graph")
        node = page.locator(f'g.dq-node[data-job-id="{notify.id}"]')
        expect(node).to_have_class("dq-node kind-job status-cancelled focus cascaded")
        expect(node).to_contain_text(f"cancelled by #{upload.id}")
        root = page.locator(f'g.dq-node[data-job-id="{upload.id}"]')
        expect(root).to_have_class("dq-node kind-job status-failed cascade-root")
        expect(page.locator("#why")).to_contain_text(f"because job #{upload.id}")
        # The whole pipeline upstream of notify: upload, aggregate, 3 transforms, 3 ingests.
        expect(page.locator("g.dq-node.kind-job")).to_have_count(9)
        shot(live, page, "graph.png", full_page=True)
    finally:
        server.terminate()
        server.wait(15)
