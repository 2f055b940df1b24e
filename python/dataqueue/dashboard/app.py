"""The dashboard ASGI app: pages, the JSON API and server-sent-event streams (Starlette)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from dataqueue.backends.types import JobSearch
from dataqueue.dashboard import data as D
from dataqueue.dashboard.graph import collect_graph, layout, render_svg
from dataqueue.dashboard.openapi import openapi_schema
from dataqueue.dashboard.security import (
    CSRF_COOKIE,
    MUTATING,
    SESSION_COOKIE,
    AuthHook,
    Security,
)
from dataqueue.errors import ConfigurationError, DataQueueError
from dataqueue.lifecycle import TERMINAL_STATUSES
from dataqueue.options import JobFilters, TagFilter
from dataqueue.queue_async import AsyncJobQueue
from dataqueue.records import JobStatus, TagQueryMode

__all__ = ["create_app"]

_HERE: Final = Path(__file__).parent
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 500
#: Candidate jobs one jobs-table page examines at most (see search_jobs).
SCAN_LIMIT: Final = 5_000
BULK_MAX: Final = 1000
JOB_STREAM_INTERVAL: Final = 0.5
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

UTC = timezone.utc


class BadRequest(Exception):
    """A request parameter is invalid; answered 400 with the message."""


def create_app(
    q: AsyncJobQueue,
    *,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    auth: AuthHook | None = None,
    read_only: bool = False,
    refresh_seconds: float = 10.0,
    title: str = "dataqueue",
) -> ASGIApp:
    """The dashboard and HTTP API for ``q`` (an :class:`~dataqueue.AsyncJobQueue`).

    Mount it anywhere (``app.mount("/queue", create_app(q))``); links follow the mount path.
    ``token``: bearer token (and the login form's secret); ``basic_auth``: ``(user, password)``;
    ``auth``: the host app's check ``fn(request) -> bool`` (may be async). With none of the
    three, only loopback clients are served. ``read_only``: every mutation answers 403.
    ``refresh_seconds``: how often the overview refreshes (and how long it is cached).
    """
    if not isinstance(q, AsyncJobQueue):
        raise ConfigurationError(
            f"create_app needs an AsyncJobQueue (init_async_job_queue), got {q!r}"
        )
    if basic_auth is not None and (
        len(basic_auth) != 2 or not all(isinstance(x, str) and x for x in basic_auth)
    ):
        raise ConfigurationError("basic_auth must be a (user, password) pair of non-empty strings")
    if not (isinstance(refresh_seconds, (int, float)) and math.isfinite(refresh_seconds)) or (
        refresh_seconds < 0.2
    ):
        raise ConfigurationError(f"refresh_seconds must be at least 0.2, got {refresh_seconds!r}")
    security = Security(token=token or None, basic_auth=basic_auth, auth=auth, read_only=read_only)
    return _Dashboard(q, security, float(refresh_seconds), title).asgi


class _Dashboard:
    def __init__(self, q: AsyncJobQueue, security: Security, refresh: float, title: str) -> None:
        self.q = q
        self.security = security
        self.refresh = refresh
        self.title = title
        self.cache = D.OverviewCache(q, refresh)
        self.env = Environment(
            loader=PackageLoader("dataqueue.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.env.filters["pretty"] = _pretty
        self.env.filters["num"] = lambda n: f"{n:,}"
        self.env.filters["age"] = _age
        page = self._page
        api = self._api
        routes = [
            Route("/", page(self.overview_page)),
            Route("/partials/overview", page(self.overview_partial)),
            Route("/jobs", page(self.jobs_page)),
            Route("/jobs/bulk", page(self.bulk_form), methods=["POST"]),
            Route("/jobs/{job_id:int}", page(self.job_page)),
            Route("/jobs/{job_id:int}/graph", page(self.graph_page)),
            Route("/jobs/{job_id:int}/graph.svg", page(self.graph_svg)),
            Route("/jobs/{job_id:int}/{action:str}", page(self.job_form), methods=["POST"]),
            Route("/cron", page(self.cron_page)),
            Route("/cron/{cron_id:int}/{action:str}", page(self.cron_form), methods=["POST"]),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/api/openapi.json", api(self.api_openapi)),
            Route("/api/overview", api(self.api_overview)),
            Route("/api/overview/stream", api(self.api_overview_stream)),
            Route("/api/counts", api(self.api_counts)),
            Route("/api/jobs", api(self.api_jobs)),
            Route("/api/jobs/bulk", api(self.api_bulk), methods=["POST"]),
            Route("/api/jobs/{job_id:int}", api(self.api_job)),
            Route("/api/jobs/{job_id:int}/events", api(self.api_events)),
            Route("/api/jobs/{job_id:int}/graph", api(self.api_graph)),
            Route("/api/jobs/{job_id:int}/stream", api(self.api_job_stream)),
            Route(
                "/api/jobs/{job_id:int}/{action:str}", api(self.api_job_action), methods=["POST"]
            ),
            Route("/api/cron", api(self.api_cron)),
            Route(
                "/api/cron/{cron_id:int}/{action:str}", api(self.api_cron_action), methods=["POST"]
            ),
            Route("/api/tokens/{token_id:str}", api(self.api_token)),
            Route(
                "/api/tokens/{token_id:str}/complete",
                api(self.api_token_complete),
                methods=["POST"],
            ),
            Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
        ]
        self.app = Starlette(routes=routes)
        self.asgi: ASGIApp = _Guard(self.app, security)

    # -- plumbing --------------------------------------------------------------------------
    def _page(
        self, fn: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except (BadRequest, DataQueueError) as exc:
                return self._render(request, "error.html", {"message": str(exc)}, status=400)

        return handler

    def _api(
        self, fn: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except (BadRequest, DataQueueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)

        return handler

    def _base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _render(
        self, request: Request, name: str, ctx: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        csrf = request.cookies.get(CSRF_COOKIE) or Security.new_csrf_token()
        context = {
            "base": self._base(request),
            "title": self.title,
            "csrf": csrf,
            "read_only": self.security.read_only,
            "refresh_ms": int(self.refresh * 1000),
            "backend": self.q.backend_name,
            "path": request.url.path,
            **ctx,
        }
        html = self.env.get_template(name).render(context)
        resp = HTMLResponse(html, status_code=status)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            resp.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/")
        return resp

    async def _form(self, request: Request) -> FormData:
        form = await request.form()
        if not Security.csrf_exempt(request) and not Security.csrf_ok(
            request, str(form.get("csrf_token") or "") or request.headers.get("x-csrf-token")
        ):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and retry")
        return form

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest(f"request body must be a JSON object, got {body!r}")
        return body

    async def _job_or_404(self, job_id: int) -> Any:
        job = await self.q.get_job(job_id)
        if job is None:
            raise HTTPException(404, f"job {job_id} not found")
        return job

    # -- pages -----------------------------------------------------------------------------
    async def overview_page(self, request: Request) -> Response:
        ov = await self.cache.get()
        return self._render(request, "overview.html", {"ov": ov, "chart": _chart(ov)})

    async def overview_partial(self, request: Request) -> Response:
        ov = await self.cache.get()
        return self._render(request, "_overview.html", {"ov": ov, "chart": _chart(ov)})

    async def jobs_page(self, request: Request) -> Response:
        search, limit, cursor = _parse_search(dict(request.query_params))
        page = await self.q._backend.search_jobs(search, limit, cursor, SCAN_LIMIT)
        params = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
        return self._render(
            request,
            "jobs.html",
            {
                "page": page,
                "jobs": page.jobs,
                "params": params,
                "statuses": [s.value for s in JobStatus],
                "tag_modes": [m.value for m in TagQueryMode],
                "next_url": _qs(params | {"cursor": page.next_cursor})
                if page.next_cursor
                else None,
                "filter_qs": _qs(params),
            },
        )

    async def job_page(self, request: Request) -> Response:
        job = await self._job_or_404(int(request.path_params["job_id"]))
        detail = await D.job_detail(self.q, job)
        return self._render(request, "job.html", {"job": job, "d": detail})

    async def graph_page(self, request: Request) -> Response:
        job = await self._job_or_404(int(request.path_params["job_id"]))
        collapse = _collapse_param(request.query_params.get("collapse"))
        g = await collect_graph(self.q, job.id, collapse=collapse)
        assert g is not None
        svg = render_svg(layout(g), link_prefix=self._base(request))
        why = await D.why_not_running(self.q, job)
        return self._render(
            request,
            "graph.html",
            {"job": job, "svg": Markup(svg), "graph": g, "why": why},
        )

    async def graph_svg(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        collapse = _collapse_param(request.query_params.get("collapse"))
        g = await collect_graph(self.q, job_id, collapse=collapse)
        if g is None:
            raise HTTPException(404, f"job {job_id} not found")
        css = (_HERE / "static" / "graph.css").read_text()
        svg = render_svg(layout(g), link_prefix=self._base(request))
        svg = svg.replace("<defs>", f"<style>{css}</style><defs>", 1)
        return Response(svg, media_type="image/svg+xml")

    async def cron_page(self, request: Request) -> Response:
        crons = await self.q.list_cron_jobs()
        return self._render(request, "cron.html", {"crons": crons})

    async def job_form(self, request: Request) -> Response:
        form = await self._form(request)
        job_id = int(request.path_params["job_id"])
        action = str(request.path_params["action"])
        values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        changed = await self._job_action(job_id, action, values)
        self.cache.invalidate()
        back = str(form.get("next") or "")
        target = back if back.startswith("/") and not back.startswith("//") else None
        url = self._base(request) + (target or f"/jobs/{job_id}")
        sep = "&" if "?" in url else "?"
        return RedirectResponse(f"{url}{sep}done={action}&changed={int(changed)}", 303)

    async def bulk_form(self, request: Request) -> Response:
        form = await self._form(request)
        action = str(form.get("action") or "")
        ids = [int(str(x)) for x in form.getlist("ids") if str(x).isdigit()]
        if form.get("all_matching"):
            params = {k: str(v) for k, v in form.items() if k.startswith("f_")}
            result = await self._bulk(action, None, {k[2:]: v for k, v in params.items()})
        else:
            result = await self._bulk(action, ids, None)
        self.cache.invalidate()
        back = str(form.get("next") or "/jobs")
        back = back if back.startswith("/") and not back.startswith("//") else "/jobs"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(
            f"{self._base(request)}{back}{sep}bulk={action}&changed={result['changed']}", 303
        )

    async def cron_form(self, request: Request) -> Response:
        await self._form(request)
        await self._cron_action(int(request.path_params["cron_id"]), request.path_params["action"])
        return RedirectResponse(f"{self._base(request)}/cron", 303)

    async def login(self, request: Request) -> Response:
        if not self.security.token:
            return RedirectResponse(f"{self._base(request)}/", 303)
        error = None
        if request.method == "POST":
            form = await self._form(request)
            if str(form.get("token") or "") == self.security.token:
                resp = RedirectResponse(f"{self._base(request)}/", 303)
                resp.set_cookie(
                    SESSION_COOKIE,
                    self.security.session_value(),
                    httponly=True,
                    samesite="strict",
                    path="/",
                )
                return resp
            error = "Wrong token."
        return self._render(request, "login.html", {"error": error}, status=401 if error else 200)

    # -- API -------------------------------------------------------------------------------
    async def api_openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_schema(self._base(request)))

    async def api_overview(self, request: Request) -> Response:
        return JSONResponse(await self.cache.get())

    async def api_counts(self, request: Request) -> Response:
        counts = await self.q._backend.count_jobs(D.COUNT_CAP)
        return JSONResponse({"cap": D.COUNT_CAP, "counts": D.to_json(counts)})

    async def api_jobs(self, request: Request) -> Response:
        search, limit, cursor = _parse_search(dict(request.query_params))
        page = await self.q._backend.search_jobs(search, limit, cursor, SCAN_LIMIT)
        return JSONResponse(
            {"jobs": D.to_json(page.jobs), "next_cursor": page.next_cursor, "scanned": page.scanned}
        )

    async def api_job(self, request: Request) -> Response:
        job = await self._job_or_404(int(request.path_params["job_id"]))
        return JSONResponse(await D.job_detail(self.q, job))

    async def api_events(self, request: Request) -> Response:
        job = await self._job_or_404(int(request.path_params["job_id"]))
        return JSONResponse({"events": D.to_json(await self.q.get_job_events(job.id))})

    async def api_graph(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        max_nodes = _int_param(request.query_params.get("max_nodes"), "max_nodes", 300, 1, 2000)
        g = await collect_graph(
            self.q,
            job_id,
            max_nodes=max_nodes,
            collapse=_collapse_param(request.query_params.get("collapse")),
        )
        if g is None:
            raise HTTPException(404, f"job {job_id} not found")
        return JSONResponse(layout(g).to_json())

    async def api_job_action(self, request: Request) -> Response:
        body = await self._json_body(request)
        changed = await self._job_action(
            int(request.path_params["job_id"]), str(request.path_params["action"]), body
        )
        self.cache.invalidate()
        return JSONResponse({"changed": changed})

    async def api_bulk(self, request: Request) -> Response:
        body = await self._json_body(request)
        ids = body.get("ids")
        flt = body.get("filter")
        if ids is not None and (
            not isinstance(ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        ):
            raise BadRequest(f"ids must be a list of job ids, got {ids!r}")
        if flt is not None and not isinstance(flt, dict):
            raise BadRequest(f"filter must be an object of jobs-list parameters, got {flt!r}")
        if ids is None and flt is None:
            raise BadRequest("give ids or filter")
        max_n = _int_param(body.get("max"), "max", BULK_MAX, 1, BULK_MAX)
        result = await self._bulk(
            str(body.get("action") or ""),
            ids,
            {k: str(v) for k, v in (flt or {}).items()} if flt is not None else None,
            max_n,
        )
        self.cache.invalidate()
        return JSONResponse(result)

    async def api_cron(self, request: Request) -> Response:
        return JSONResponse({"schedules": D.to_json(await self.q.list_cron_jobs())})

    async def api_cron_action(self, request: Request) -> Response:
        result = await self._cron_action(
            int(request.path_params["cron_id"]), str(request.path_params["action"])
        )
        return JSONResponse(result)

    async def api_token(self, request: Request) -> Response:
        token = await self.q.get_token(str(request.path_params["token_id"]))
        if token is None:
            raise HTTPException(404, f"token {request.path_params['token_id']} not found")
        return JSONResponse(D.to_json(token))

    async def api_token_complete(self, request: Request) -> Response:
        body = await self._json_body(request)
        changed = await self.q.complete_token(
            str(request.path_params["token_id"]), body.get("data")
        )
        return JSONResponse({"changed": changed})

    async def api_job_stream(self, request: Request) -> Response:
        job_id = int(request.path_params["job_id"])
        await self._job_or_404(job_id)

        async def events() -> AsyncIterator[dict[str, str]]:
            last: Any = None
            while True:
                job = await self.q.get_job(job_id)
                if job is None:
                    yield {"event": "gone", "data": json.dumps({"id": job_id})}
                    return
                state = {
                    "id": job.id,
                    "status": job.status.value,
                    "progress": job.progress,
                    "output": D.to_json(job.output),
                    "attempts": job.attempts,
                    "max_attempts": job.max_attempts,
                    "updated_at": job.updated_at.isoformat(),
                    "last_error": (job.error_history[-1] if job.error_history else None),
                }
                if state != last:
                    last = state
                    yield {"event": "job", "data": json.dumps(D.to_json(state))}
                if job.status in TERMINAL_STATUSES:
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(JOB_STREAM_INTERVAL)

        return EventSourceResponse(events(), ping=15)

    async def api_overview_stream(self, request: Request) -> Response:
        max_events = _int_param(request.query_params.get("max_events"), "max_events", 0, 0, 10**9)

        async def events() -> AsyncIterator[dict[str, str]]:
            sent = 0
            while True:
                ov = await self.cache.get()
                yield {"event": "overview", "data": json.dumps(ov)}
                sent += 1
                if max_events and sent >= max_events:
                    return
                await asyncio.sleep(self.refresh)
                if await request.is_disconnected():
                    return

        return EventSourceResponse(events(), ping=15)

    # -- actions ---------------------------------------------------------------------------
    async def _job_action(self, job_id: int, action: str, values: dict[str, Any]) -> bool:
        if action == "retry":
            return await self.q.retry_job(job_id)
        if action == "cancel":
            return await self.q.cancel_job(job_id)
        if action == "edit":
            updates: dict[str, Any] = {}
            if values.get("priority") not in (None, ""):
                p = values["priority"]
                if isinstance(p, str):
                    try:
                        p = int(p)
                    except ValueError:
                        raise BadRequest(f"priority must be an integer, got {p!r}") from None
                updates["priority"] = p
            if values.get("run_at") not in (None, ""):
                updates["run_at"] = _dt(values["run_at"], "run_at")
            if not updates:
                raise BadRequest("edit needs priority and/or run_at")
            return await self.q.edit_job(job_id, **updates)
        raise HTTPException(404, f"unknown job action {action!r}")

    async def _bulk(
        self, action: str, ids: list[int] | None, flt: dict[str, str] | None, max_n: int = BULK_MAX
    ) -> dict[str, Any]:
        if action not in ("cancel", "retry"):
            raise BadRequest(f"bulk action must be 'cancel' or 'retry', got {action!r}")
        fn = self.q.cancel_job if action == "cancel" else self.q.retry_job
        next_cursor: str | None = None
        if ids is None:
            search, _, cursor = _parse_search(dict(flt or {}))
            if not search.statuses:
                wanted = (
                    (JobStatus.PENDING, JobStatus.WAITING)
                    if action == "cancel"
                    else (JobStatus.FAILED,)
                )
                search = JobSearch(
                    search.filters,
                    wanted,
                    search.created_gte,
                    search.created_lt,
                    search.error_contains,
                )
            ids = []
            while len(ids) < max_n:
                page = await self.q._backend.search_jobs(
                    search, min(MAX_PAGE, max_n - len(ids)), cursor, SCAN_LIMIT
                )
                ids.extend(j.id for j in page.jobs)
                cursor = next_cursor = page.next_cursor
                if cursor is None:
                    break
        changed = 0
        for i in ids[:max_n]:
            if await fn(i):
                changed += 1
        return {
            "action": action,
            "matched": len(ids[:max_n]),
            "changed": changed,
            "next_cursor": next_cursor,
        }

    async def _cron_action(self, cron_id: int, action: str) -> dict[str, Any]:
        if action == "pause":
            return {"changed": await self.q.pause_cron_job(cron_id)}
        if action == "resume":
            return {"changed": await self.q.resume_cron_job(cron_id)}
        if action == "run":
            c = await self.q.get_cron_job(cron_id)
            if c is None:
                raise HTTPException(404, f"cron schedule {cron_id} not found")
            job_id = await self.q.add_job(
                c.job_type,
                c.payload,
                max_attempts=c.max_attempts,
                priority=c.priority,
                timeout_ms=c.timeout_ms,
                force_kill_on_timeout=c.force_kill_on_timeout,
                tags=list(c.tags) if c.tags else None,
                retry_delay=c.retry_delay,
                retry_backoff=c.retry_backoff,
                retry_delay_max=c.retry_delay_max,
                dead_letter_job_type=c.dead_letter_job_type,
            )
            self.cache.invalidate()
            return {"changed": True, "job_id": job_id}
        raise HTTPException(404, f"unknown cron action {action!r}")


class _Guard:
    """Authentication, read-only mode, CSRF on mutations, and security headers."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        root = str(scope.get("root_path", ""))
        path = str(scope["path"])
        if root and path.startswith(root):
            path = path[len(root) :]
        is_api = path.startswith("/api/")
        public = path == "/login" or path.startswith("/static/")
        response: Response | None = None
        if not public and not await self.security.authenticate(request):
            response = self._unauthorized(request, is_api)
        elif request.method in MUTATING and path != "/login":
            if self.security.read_only:
                response = _error(is_api, 403, "read-only dashboard: changes are disabled")
            elif not (
                Security.csrf_exempt(request)
                or Security.csrf_ok(request, request.headers.get("x-csrf-token"))
                or (_is_form(request) and not is_api)
            ):
                response = _error(is_api, 403, "CSRF check failed: send JSON or a CSRF token")
        if response is not None:
            await response(scope, receive, _with_headers(send))
            return
        await self.app(scope, receive, _with_headers(send))

    def _unauthorized(self, request: Request, is_api: bool) -> Response:
        sec = self.security
        if not sec.configured:
            return _error(
                is_api,
                403,
                "the dashboard serves loopback clients only unless authentication is configured",
            )
        headers = {"WWW-Authenticate": 'Basic realm="dataqueue"'} if sec.basic_auth else {}
        if not is_api and sec.token and not sec.basic_auth:
            base = str(request.scope.get("root_path", "")).rstrip("/")
            return RedirectResponse(f"{base}/login", 303)
        if is_api:
            return JSONResponse({"error": "authentication required"}, 401, headers=headers)
        return PlainTextResponse("authentication required", 401, headers=headers)


def _is_form(request: Request) -> bool:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return ctype in ("application/x-www-form-urlencoded", "multipart/form-data")


def _error(is_api: bool, status: int, message: str) -> Response:
    if is_api:
        return JSONResponse({"error": message}, status)
    return PlainTextResponse(message, status)


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers += [
                (b"content-security-policy", CSP.encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"),
                (b"x-frame-options", b"DENY"),
            ]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


# -- parameters ------------------------------------------------------------------------------
def _int_param(value: Any, name: str, default: int, lo: int, hi: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer, got {value!r}") from None
    if not lo <= n <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {n}")
    return n


def _dt(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{name} must be an ISO 8601 time, got {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _collapse_param(value: str | None) -> bool | None:
    if value in (None, "", "auto"):
        return None
    if value in ("1", "yes", "true"):
        return True
    if value in ("0", "no", "false"):
        return False
    raise BadRequest(f"collapse must be auto, yes or no, got {value!r}")


def _parse_search(p: dict[str, str]) -> tuple[JobSearch, int, str | None]:
    known = {
        "status",
        "job_type",
        "tags",
        "tag_mode",
        "created_gte",
        "created_lt",
        "run_at_gte",
        "run_at_lt",
        "error",
        "limit",
        "cursor",
        "priority",
        "done",
        "changed",
        "bulk",
    }
    unknown = sorted(set(p) - known)
    if unknown:
        raise BadRequest(f"unknown jobs-list parameter(s): {unknown}")
    statuses: list[JobStatus] = []
    for s in (p.get("status") or "").split(","):
        if s.strip():
            try:
                statuses.append(JobStatus(s.strip()))
            except ValueError:
                raise BadRequest(f"unknown status {s.strip()!r}") from None
    raw: dict[str, Any] = {}
    if p.get("job_type"):
        raw["job_type"] = p["job_type"]
    if p.get("priority"):
        raw["priority"] = _int_param(p["priority"], "priority", 0, -(2**31), 2**31 - 1)
    run_at: dict[str, datetime] = {}
    if p.get("run_at_gte"):
        run_at["gte"] = _dt(p["run_at_gte"], "run_at_gte")
    if p.get("run_at_lt"):
        run_at["lt"] = _dt(p["run_at_lt"], "run_at_lt")
    if run_at:
        raw["run_at"] = run_at
    if p.get("tags"):
        tags = [t.strip() for t in p["tags"].split(",") if t.strip()]
        mode = p.get("tag_mode") or "all"
        try:
            raw["tags"] = {"values": tags, "mode": TagQueryMode(mode).value}
        except ValueError:
            raise BadRequest(f"unknown tag_mode {mode!r}") from None
    filters = JobFilters.parse(raw)
    if filters.tags is not None and not isinstance(filters.tags, TagFilter):
        raise BadRequest("bad tags filter")
    search = JobSearch(
        filters,
        tuple(dict.fromkeys(statuses)),
        _dt(p["created_gte"], "created_gte") if p.get("created_gte") else None,
        _dt(p["created_lt"], "created_lt") if p.get("created_lt") else None,
        p.get("error") or None,
    )
    limit = _int_param(p.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    return search, limit, p.get("cursor") or None


def _qs(params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# -- template helpers ------------------------------------------------------------------------
def _pretty(value: Any) -> str:
    return json.dumps(D.to_json(value), indent=2, sort_keys=True, ensure_ascii=False)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else D.duration(seconds)


def _chart(ov: dict[str, Any]) -> Markup:
    """The last hour's completions (bars) and failures (red bars), one per minute, as SVG."""
    buckets = ov["throughput"]["buckets"]
    peak = max([b["completed"] + b["failed"] for b in buckets] + [1])
    w, h, bw = 600, 120, 600 / len(buckets)
    parts = [
        f'<svg class="dq-chart" viewBox="0 0 {w} {h + 18}" width="100%" height="{h + 18}" '
        'role="img" aria-label="jobs finished per minute, last hour">'
    ]
    for i, b in enumerate(buckets):
        ok_h = b["completed"] / peak * h
        fail_h = b["failed"] / peak * h
        x = i * bw
        parts.append(
            f'<rect class="ok" x="{x:.1f}" y="{h - ok_h - fail_h:.1f}" width="{bw - 1:.1f}" '
            f'height="{ok_h:.1f}"><title>{b["completed"]} completed, {b["failed"]} failed'
            f"</title></rect>"
        )
        if fail_h:
            parts.append(
                f'<rect class="fail" x="{x:.1f}" y="{h - fail_h:.1f}" width="{bw - 1:.1f}" '
                f'height="{fail_h:.1f}"/>'
            )
    parts.append(f'<text x="0" y="{h + 14}" class="axis">-60 min</text>')
    parts.append(f'<text x="{w}" y="{h + 14}" class="axis end">now (peak {peak}/min)</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
