"""The JSON API and pages through an ASGI test client, on both backends."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from _worker_helpers import add_diamond, claim_job, complete, fail_terminally
from dataqueue.records import JobStatus

UTC = timezone.utc


def test_overview_counts_per_type(dash: Any, api: Any) -> None:
    sq = dash.sq
    a, b = sq.add_job("mail"), sq.add_job("mail")
    sq.add_job("sms", depends_on={"job_ids": [a]})
    complete(sq, claim_job(sq, a))
    fail_terminally(sq, b)
    ov = api.get("/api/overview").json()
    mail = next(t for t in ov["types"] if t["job_type"] == "mail")
    sms = next(t for t in ov["types"] if t["job_type"] == "sms")
    assert (mail["failed"], mail["pending"]) == (1, 0)
    assert "completed" not in mail  # terminal totals are not counted by the overview
    assert (mail["completed_last_hour"], mail["failed_last_hour"]) == (1, 1)
    assert sms["pending"] == 1 and sms["blocked"] == 0  # its prerequisite completed
    assert sum(b["completed"] for b in ov["throughput"]["buckets"]) == 1
    assert sum(b["failed"] for b in ov["throughput"]["buckets"]) == 1
    assert ov["totals"]["failed"] == 1
    counts = api.get("/api/counts").json()
    assert {"job_type": "sms", "status": "pending"}.items() <= counts["counts"][-1].items()
    page = api.get("/")
    assert page.status_code == 200 and 'data-type="mail"' in page.text
    assert api.get("/partials/overview").status_code == 200


def test_overview_live_workers(dash: Any, api: Any) -> None:
    j = dash.sq.add_job("render")
    claim_job(dash.sq, j)
    ov = api.get("/api/overview").json()
    assert ov["workers"][0]["worker_id"] == "test-worker"
    assert ov["workers"][0]["jobs"][0]["id"] == j
    row = next(t for t in ov["types"] if t["job_type"] == "render")
    assert row["processing"] == 1


def test_jobs_list_filters_and_cursor(dash: Any, api: Any) -> None:
    sq = dash.sq
    ids = [
        sq.add_job("a" if i % 2 else "b", {"i": i}, tags=["x"] if i < 3 else None) for i in range(7)
    ]
    fail_terminally(sq, ids[1], "disk <full>")
    got = api.get("/api/jobs", params={"limit": 3}).json()
    assert [j["id"] for j in got["jobs"]] == sorted(ids, reverse=True)[:3]
    seen = [j["id"] for j in got["jobs"]]
    while got["next_cursor"]:
        got = api.get("/api/jobs", params={"limit": 3, "cursor": got["next_cursor"]}).json()
        seen += [j["id"] for j in got["jobs"]]
    assert seen == sorted(ids, reverse=True)
    failed = api.get("/api/jobs", params={"status": "failed"}).json()["jobs"]
    assert [j["id"] for j in failed] == [ids[1]]
    assert failed[0]["error_history"][-1]["message"] == "disk <full>"
    assert [j["id"] for j in api.get("/api/jobs?error=DISK").json()["jobs"]] == [ids[1]]
    tagged = api.get("/api/jobs", params={"tags": "x", "job_type": "b"}).json()["jobs"]
    assert [j["id"] for j in tagged] == [ids[2], ids[0]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/api/jobs", params={"created_gte": later}).json()["jobs"] == []
    page = api.get("/jobs", params={"status": "failed"})
    assert page.status_code == 200 and f'data-job-id="{ids[1]}"' in page.text
    assert f'data-job-id="{ids[0]}"' not in page.text


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("status=finished", "finished"),
        ("limit=0", "limit"),
        ("created_gte=yesterday", "yesterday"),
        ("tag_mode=some&tags=a", "some"),
        ("colour=red", "colour"),
    ],
)
def test_jobs_list_bad_parameters_are_400_naming_the_value(
    api: Any, query: str, named: str
) -> None:
    r = api.get("/api/jobs?" + query)
    assert r.status_code == 400
    assert named in r.json()["error"]
    assert api.get("/jobs?" + query).status_code == 400


def test_job_detail_events_and_404(dash: Any, api: Any) -> None:
    ids = add_diamond(dash.sq, tags=["etl"])
    d = api.get(f"/api/jobs/{ids[3]}").json()
    assert d["job"]["id"] == ids[3] and d["job"]["depends_on_job_ids"] == [ids[1], ids[2]]
    assert set(d["job"]) >= {"payload", "output", "progress", "error_history", "step_data"}
    assert d["dependencies"]["upstream_job_ids"] == [ids[1], ids[2]]
    assert d["why_not_running"][0]["kind"] == "prerequisites"
    assert f"#{ids[1]} (pending)" in d["why_not_running"][0]["text"]
    root = api.get(f"/api/jobs/{ids[0]}").json()
    assert root["dependencies"]["downstream_job_ids"] == [ids[1], ids[2]]
    events = api.get(f"/api/jobs/{ids[0]}/events").json()["events"]
    assert [e["event_type"] for e in events] == ["added"]
    assert api.get("/api/jobs/999999").status_code == 404
    assert api.get("/jobs/999999").status_code == 404
    page = api.get(f"/jobs/{ids[3]}")
    assert page.status_code == 200 and "Why is this job not running?" in page.text


def test_retry_cancel_edit_and_bulk(dash: Any, api: Any) -> None:
    sq = dash.sq
    a, b, c, d = (sq.add_job("t") for _ in range(4))
    fail_terminally(sq, a)
    assert api.post(f"/api/jobs/{a}/retry", json={}).json() == {"changed": True}
    assert sq.get_job(a).status is JobStatus.PENDING
    assert api.post(f"/api/jobs/{b}/cancel", json={}).json() == {"changed": True}
    assert api.post(f"/api/jobs/{b}/cancel", json={}).json() == {"changed": False}
    when = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    r = api.post(f"/api/jobs/{c}/edit", json={"priority": 7, "run_at": when.isoformat()})
    assert r.json() == {"changed": True}
    assert (sq.get_job(c).priority, sq.get_job(c).run_at) == (7, when)
    assert api.post(f"/api/jobs/{c}/edit", json={"priority": "high"}).status_code == 400
    assert api.post(f"/api/jobs/{c}/explode", json={}).status_code == 404
    r = api.post("/api/jobs/bulk", json={"action": "cancel", "ids": [c, d]}).json()
    assert (r["matched"], r["changed"]) == (2, 2)
    r = api.post("/api/jobs/bulk", json={"action": "retry", "filter": {"job_type": "t"}}).json()
    assert r["changed"] == 0  # nothing failed any more
    fail_terminally(sq, a)
    r = api.post("/api/jobs/bulk", json={"action": "retry", "filter": {"job_type": "t"}}).json()
    assert (r["matched"], r["changed"]) == (1, 1)
    assert api.post("/api/jobs/bulk", json={"action": "nuke", "ids": [a]}).status_code == 400


def test_form_posts_need_the_csrf_token(dash: Any, api: Any) -> None:
    j = dash.sq.add_job("t")
    assert api.post(f"/jobs/{j}/cancel", data={}).status_code == 403
    assert api.post(f"/api/jobs/{j}/cancel", data={"x": "1"}).status_code == 403
    page = api.get(f"/jobs/{j}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert api.cookies.get("dq_csrf") == token
    assert api.post(f"/jobs/{j}/cancel", data={"csrf_token": "forged"}).status_code == 403
    assert dash.sq.get_job(j).status is JobStatus.PENDING
    r = api.post(f"/jobs/{j}/cancel", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/jobs/{j}?done=cancel")
    assert dash.sq.get_job(j).status is JobStatus.CANCELLED


def test_read_only_mode_refuses_every_mutation(dash: Any) -> None:
    c = dash.client(read_only=True)
    j = dash.sq.add_job("t")
    for path in (
        f"/api/jobs/{j}/cancel",
        f"/api/jobs/{j}/retry",
        "/api/jobs/bulk",
        f"/api/jobs/{j}/edit",
        "/api/cron/1/pause",
        "/api/tokens/x/complete",
    ):
        assert c.post(path, json={}).status_code == 403, path
    assert c.post(f"/jobs/{j}/cancel", data={"csrf_token": "x"}).status_code == 403
    assert dash.sq.get_job(j).status is JobStatus.PENDING
    assert c.get(f"/api/jobs/{j}").status_code == 200
    assert "Cancel" not in c.get(f"/jobs/{j}").text


def test_loopback_only_without_auth(dash: Any) -> None:
    assert dash.client(client_host="10.1.2.3").get("/api/overview").status_code == 403
    assert dash.client(client_host="::1").get("/api/overview").status_code == 200


def test_token_auth_bearer_and_login(dash: Any) -> None:
    c = dash.client(client_host="10.1.2.3", token="s3cret")
    assert c.get("/api/overview").status_code == 401
    assert c.get("/api/overview", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = c.get("/api/overview", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert c.get("/").status_code == 303  # pages send browsers to the login form
    login = c.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    assert c.post("/login", data={"csrf_token": csrf, "token": "wrong"}).status_code == 401
    r = c.post("/login", data={"csrf_token": csrf, "token": "s3cret"})
    assert r.status_code == 303 and "s3cret" not in r.headers.get("set-cookie", "")
    assert c.get("/").status_code == 200
    j = dash.sq.add_job("t")
    # Bearer requests need no CSRF token.
    r = c.post(f"/api/jobs/{j}/cancel", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json() == {"changed": True}


def test_basic_auth_and_hook(dash: Any) -> None:
    c = dash.client(client_host="10.1.2.3", basic_auth=("admin", "pw"))
    r = c.get("/")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert c.get("/", auth=("admin", "bad")).status_code == 401
    assert c.get("/", auth=("admin", "pw")).status_code == 200
    calls: list[str] = []

    async def hook(request: Any) -> bool:
        calls.append(request.url.path)
        return request.headers.get("x-user") == "ada"

    h = dash.client(client_host="10.1.2.3", auth=hook)
    assert h.get("/api/overview").status_code == 401
    assert h.get("/api/overview", headers={"x-user": "ada"}).status_code == 200
    assert calls == ["/api/overview", "/api/overview"]


def test_script_payload_is_escaped_everywhere(dash: Any, api: Any) -> None:
    evil = "<script>alert('x')</script>"
    j = dash.sq.add_job("t", {"note": evil}, tags=["<b>tag</b>"])
    fail_terminally(dash.sq, j, evil)
    for path in (f"/jobs/{j}", "/jobs", f"/jobs/{j}/graph", "/", f"/jobs/{j}/graph.svg"):
        body = api.get(path).text
        assert "<script>alert" not in body, path
        assert "<b>tag</b>" not in body, path
    assert "&lt;script&gt;alert" in api.get(f"/jobs/{j}").text
    csp = api.get(f"/jobs/{j}").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert api.get(f"/api/jobs/{j}").json()["job"]["payload"] == {"note": evil}


def test_job_stream_follows_until_terminal(dash: Any, api: Any) -> None:
    j = dash.sq.add_job("t")
    complete(dash.sq, claim_job(dash.sq, j), {"rows": 3})
    with api.stream("GET", f"/api/jobs/{j}/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    assert events[-1]["status"] == "completed" and events[-1]["output"] == {"rows": 3}
    assert "event: job" in text


def test_overview_stream(dash: Any, api: Any) -> None:
    dash.sq.add_job("t")
    with api.stream("GET", "/api/overview/stream?max_events=2") as r:
        text = "".join(r.iter_text())
    data = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    assert len(data) == 2 and data[0]["types"][0]["job_type"] == "t"


def test_graph_diamond_drain_and_cascade(dash: Any, api: Any) -> None:
    sq = dash.sq
    ids = add_diamond(sq, tags=["etl"])
    g = api.get(f"/api/jobs/{ids[3]}/graph").json()
    keys = {n["key"] for n in g["nodes"]}
    assert keys == {f"j{i}" for i in ids}
    edges = {(e["from"], e["to"]) for e in g["edges"]}
    assert edges == {
        (f"j{ids[0]}", f"j{ids[1]}"),
        (f"j{ids[0]}", f"j{ids[2]}"),
        (f"j{ids[1]}", f"j{ids[3]}"),
        (f"j{ids[2]}", f"j{ids[3]}"),
    }
    ys = {n["key"]: n["y"] for n in g["nodes"]}
    assert ys[f"j{ids[0]}"] < ys[f"j{ids[1]}"] < ys[f"j{ids[3]}"]
    report = sq.add_job("report", depends_on={"tags": ["etl"]})
    g = api.get(f"/api/jobs/{report}/graph").json()
    drain = next(n for n in g["nodes"] if n["kind"] == "drain")
    assert drain["holders"] == [ids[0]] and drain["label"] == "drain [etl]"
    edges = {(e["from"], e["to"]) for e in g["edges"]}
    assert (f"j{ids[0]}", drain["key"]) in edges and (drain["key"], f"j{report}") in edges
    fail_terminally(sq, ids[0])  # cascade-cancels left, right, join and the report
    g = api.get(f"/api/jobs/{ids[3]}/graph").json()
    by = {n["key"]: n for n in g["nodes"]}
    assert by[f"j{ids[3]}"]["cascade_root_job_id"] == ids[0]
    assert by[f"j{ids[0]}"]["is_cascade_root"] is True
    svg = api.get(f"/jobs/{ids[3]}/graph")
    assert f"cancelled by #{ids[0]}" in svg.text and "cascade-root" in svg.text
    why = api.get(f"/api/jobs/{ids[3]}").json()["why_not_running"]
    assert why[0]["kind"] == "cascade" and why[0]["root_job_id"] == ids[0]


def test_large_graph_collapses_and_truncates(dash: Any, api: Any) -> None:
    sq = dash.sq
    root = sq.add_job("root")
    sq.add_jobs([{"job_type": "leaf", "depends_on": {"job_ids": [root]}} for _ in range(120)])
    g = api.get(f"/api/jobs/{root}/graph").json()
    assert g["collapsed"] is True
    groups = [n for n in g["nodes"] if n["kind"] == "group"]
    assert groups and sum(n["count"] for n in groups) + len(g["nodes"]) - len(groups) - 1 == 120
    small = api.get(f"/api/jobs/{root}/graph", params={"max_nodes": 50, "collapse": "no"}).json()
    more = [n for n in small["nodes"] if n["kind"] == "more"]
    assert more and more[0]["count"] == 120 - 49
    assert len([n for n in small["nodes"] if n["kind"] == "job"]) == 50
    assert api.get(f"/jobs/{root}/graph?collapse=yes").status_code == 200


def test_why_not_running_cases(dash: Any, api: Any) -> None:
    sq = dash.sq
    later = datetime.now(UTC) + timedelta(hours=3)
    future = sq.add_job("t", run_at=later)
    why = api.get(f"/api/jobs/{future}").json()["why_not_running"]
    assert [w["kind"] for w in why] == ["run_at"]
    g1 = sq.add_job("g", group="tenant")
    g2 = sq.add_job("g", group="tenant")
    claim_job(sq, g1)
    why = api.get(f"/api/jobs/{g2}").json()["why_not_running"]
    assert why[0]["kind"] == "group" and why[0]["processing"] == 1
    ready = sq.add_job("lonely")
    why = api.get(f"/api/jobs/{ready}").json()["why_not_running"]
    assert why[0]["kind"] == "workers" and "test-worker" in why[0]["text"]


def test_cron_and_tokens(dash: Any, api: Any) -> None:
    sq = dash.sq
    cid = sq.add_cron_job("nightly", "0 3 * * *", "cleanup", {"deep": True})
    crons = api.get("/api/cron").json()["schedules"]
    assert crons[0]["schedule_name"] == "nightly"
    assert api.post(f"/api/cron/{cid}/pause", json={}).json() == {"changed": True}
    assert sq.get_cron_job(cid).status.value == "paused"
    assert api.post(f"/api/cron/{cid}/resume", json={}).json() == {"changed": True}
    ran = api.post(f"/api/cron/{cid}/run", json={}).json()
    job = sq.get_job(ran["job_id"])
    assert (job.job_type, job.payload) == ("cleanup", {"deep": True})
    assert "nightly" in api.get("/cron").text
    token = sq.create_token()
    assert api.get(f"/api/tokens/{token.id}").json()["status"] == "waiting"
    assert api.post(f"/api/tokens/{token.id}/complete", json={"data": {"ok": 1}}).json() == {
        "changed": True
    }
    assert sq.get_token(token.id).output == {"ok": 1}
    assert api.get("/api/tokens/nope").status_code == 404


def test_openapi_lists_every_api_route(api: Any) -> None:
    spec = api.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/api/jobs",
        "/api/jobs/{job_id}/stream",
        "/api/jobs/bulk",
        "/api/counts",
        "/api/cron/{cron_id}/run",
        "/api/tokens/{token_id}/complete",
    ):
        assert path in spec["paths"], path


def test_create_app_rejects_a_sync_queue(sq: Any) -> None:
    from dataqueue import ConfigurationError
    from dataqueue.dashboard import create_app

    with pytest.raises(ConfigurationError, match="AsyncJobQueue"):
        create_app(sq)
    from dataqueue import init_async_job_queue

    aq = init_async_job_queue("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="refresh_seconds"):
        create_app(aq, refresh_seconds=0)
    with pytest.raises(ConfigurationError, match="basic_auth"):
        create_app(aq, basic_auth=("", "x"))  # type: ignore[arg-type]
