"""Who may use the dashboard, and how mutations are protected.

- Authentication (any one configured method admits a request): a bearer token
  (``Authorization: Bearer …``, or the session cookie set by the login form), HTTP basic auth,
  or the host application's own ``auth`` hook. With none configured, only loopback clients
  (127.0.0.1 / ::1) are served.
- Read-only mode: every mutating request answers 403.
- CSRF: a mutating request must carry the per-browser CSRF token (form field ``csrf_token``
  or header ``X-CSRF-Token``, equal to the ``dq_csrf`` cookie), unless it is a JSON request
  (``Content-Type: application/json``, which a cross-site form cannot send) or carries an
  ``Authorization: Bearer`` header (not sent by browsers on their own).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "AuthHook", "Security"]

#: The host application's check: return True to admit the request.
AuthHook = Callable[[Request], "bool | Awaitable[bool]"]

SESSION_COOKIE: Final = "dq_session"
CSRF_COOKIE: Final = "dq_csrf"
MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Security:
    token: str | None = None
    basic_auth: tuple[str, str] | None = None
    auth: AuthHook | None = None
    read_only: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.token or self.basic_auth or self.auth)

    def session_value(self) -> str:
        """The session cookie's value: a digest of the token (the token never leaves)."""
        assert self.token
        return hashlib.sha256(b"dataqueue-dashboard:" + self.token.encode()).hexdigest()

    async def authenticate(self, request: Request) -> bool:
        if not self.configured:
            client = request.client.host if request.client else None
            return is_loopback(client)
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if self.token:
            if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), self.token):
                return True
            cookie = request.cookies.get(SESSION_COOKIE, "")
            if cookie and hmac.compare_digest(cookie, self.session_value()):
                return True
        if self.basic_auth and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            want_user, want_password = self.basic_auth
            ok_user = hmac.compare_digest(user.encode(), want_user.encode())
            ok_password = hmac.compare_digest(password.encode(), want_password.encode())
            if ok_user and ok_password:
                return True
        if self.auth is not None:
            result: Any = self.auth(request)
            if inspect.isawaitable(result):
                result = await result
            return bool(result)
        return False

    @staticmethod
    def csrf_exempt(request: Request) -> bool:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            return True
        return request.headers.get("authorization", "").lower().startswith("bearer ")

    @staticmethod
    def new_csrf_token() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def csrf_ok(request: Request, submitted: str | None) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return bool(cookie and submitted and hmac.compare_digest(cookie, submitted))
