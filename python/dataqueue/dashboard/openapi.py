"""The OpenAPI 3.1 description of the JSON API (served at ``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["openapi_schema"]

_LIST_PARAMS: Final = [
    (
        "status",
        "Comma-separated statuses (pending, processing, completed, failed, cancelled, waiting).",
    ),
    ("job_type", "Exact job type."),
    ("tags", "Comma-separated tags."),
    ("tag_mode", "all (default), any, none or exact."),
    ("priority", "Exact priority."),
    ("created_gte", "ISO 8601: created at or after."),
    ("created_lt", "ISO 8601: created before."),
    ("run_at_gte", "ISO 8601: run_at at or after."),
    ("run_at_lt", "ISO 8601: run_at before."),
    ("error", "Case-insensitive substring of the last error message."),
    ("limit", "Page size, 1-500 (default 50)."),
    ("cursor", "next_cursor of the previous page."),
]

# (method, path, summary, body?)
_OPS: Final[list[tuple[str, str, str, dict[str, Any] | None]]] = [
    ("get", "/api/overview", "Per-type counts, last hour's throughput, live workers.", None),
    (
        "get",
        "/api/overview/stream",
        "Server-sent events: `overview` with the overview JSON, "
        "every refresh interval (query max_events=N to stop after N).",
        None,
    ),
    ("get", "/api/counts", "Jobs per (job type, status), exact up to the cap.", None),
    ("get", "/api/jobs", "Jobs newest first, filtered, cursor-paginated.", None),
    (
        "post",
        "/api/jobs/bulk",
        "Cancel or retry the listed ids or up to `max` jobs matching "
        "`filter` (jobs-list parameters).",
        {
            "action": {"type": "string", "enum": ["cancel", "retry"]},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "filter": {"type": "object"},
            "max": {"type": "integer", "maximum": 1000},
        },
    ),
    (
        "get",
        "/api/jobs/{job_id}",
        "Job detail: every field, events, token, dependencies, "
        "cascade root and the why-not-running answer.",
        None,
    ),
    ("get", "/api/jobs/{job_id}/events", "The job's stored event history.", None),
    (
        "get",
        "/api/jobs/{job_id}/graph",
        "The dependency graph around the job, laid out (query collapse=auto|yes|no, max_nodes).",
        None,
    ),
    (
        "get",
        "/api/jobs/{job_id}/stream",
        "Server-sent events: `job` with status, progress, "
        "output, attempts and last error on every change; ends after a terminal status.",
        None,
    ),
    ("post", "/api/jobs/{job_id}/retry", "Retry a failed (or processing) job.", {}),
    ("post", "/api/jobs/{job_id}/cancel", "Cancel a pending or waiting job (cascades).", {}),
    (
        "post",
        "/api/jobs/{job_id}/edit",
        "Edit a pending job's priority and/or run_at.",
        {"priority": {"type": "integer"}, "run_at": {"type": "string", "format": "date-time"}},
    ),
    ("get", "/api/cron", "Cron schedules.", None),
    ("post", "/api/cron/{cron_id}/pause", "Pause a schedule.", {}),
    ("post", "/api/cron/{cron_id}/resume", "Resume a schedule.", {}),
    ("post", "/api/cron/{cron_id}/run", "Enqueue one occurrence now; returns job_id.", {}),
    ("get", "/api/tokens/{token_id}", "A wait token.", None),
    ("post", "/api/tokens/{token_id}/complete", "Complete a wait token with `data`.", {"data": {}}),
]


def openapi_schema(base: str = "") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary, body in _OPS:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {}}},
                "400": {"description": "Invalid parameter (the message names it)"},
                "401": {"description": "Authentication required"},
                "403": {"description": "Read-only mode, CSRF failure or non-loopback client"},
                "404": {"description": "No such job, schedule or token"},
            },
        }
        params = []
        for name in ("job_id", "cron_id", "token_id"):
            if "{" + name + "}" in path:
                kind = "string" if name == "token_id" else "integer"
                params.append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                )
        if path == "/api/jobs":
            params += [
                {"name": n, "in": "query", "description": d, "schema": {"type": "string"}}
                for n, d in _LIST_PARAMS
            ]
        if params:
            op["parameters"] = params
        if body is not None:
            op["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": {"type": "object", "properties": body}}},
            }
        if path.endswith("/stream"):
            op["responses"]["200"] = {
                "description": "text/event-stream",
                "content": {"text/event-stream": {}},
            }
        paths.setdefault(base + path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "dataqueue dashboard API", "version": "1"},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            }
        },
        "security": [{}, {"bearer": []}, {"basic": []}],
        "paths": paths,
    }
