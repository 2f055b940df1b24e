"""The web dashboard and job-status HTTP API (``pip install "dataqueue[dashboard]"``).

``create_app(q)`` returns an ASGI app for an :class:`~dataqueue.AsyncJobQueue`; serve it with
``dataqueue dashboard`` or mount it in your own ASGI app. See docs/dashboard.md and
docs/http-api.md.
"""

from __future__ import annotations

from dataqueue.dashboard.app import create_app

__all__ = ["create_app"]
