"""The app factory: `create_app(settings)` wires the store, the job worker, previews and the routers.

Adding a feature is one line in ROUTERS; nothing here is a module global, so tests can run several
apps (or restart one on the same data folder) in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from smartfocus import __version__
from smartfocus.cluster import Cluster
from smartfocus.server import upload
from smartfocus.server.deps import SESSION_COOKIE, Services
from smartfocus.server.edits import PlanEdits
from smartfocus.server.errors import error_response, install_error_handlers, storage_fault
from smartfocus.server.housekeeping import expire_sessions
from smartfocus.server.jobs import JobRunner
from smartfocus.server.previews import Previews
from smartfocus.server.routers import jobs, plan, videos, web
from smartfocus.server.settings import Settings
from smartfocus.server.store import Store
from smartfocus.server.webrtc import LiveService
from smartfocus.vision.model import SharedModel

log = logging.getLogger(__name__)
ROUTERS = (web.router, videos.router, plan.router, jobs.router)
SESSIONLESS = (
    "/health", "/docs", "/redoc", "/openapi.json", "/static-offline-docs/", "/web/", "/live", "/favicon.ico",
)  # fmt: skip


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refuse(request: Request, settings: Settings) -> tuple[int, str, str] | None:
    """(status, code, message) when `request` must be refused before it reaches a route, else None.

    Browsers send `Origin` (and `Sec-Fetch-Site`) with cross-site requests; programs (curl, httpx)
    send neither and are not what CSRF is about, so they pass.
    """
    host = request.headers.get("host", "")
    name = host[1 : host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
    if "*" not in settings.allowed_hosts and name not in LOOPBACK_HOSTS | set(settings.allowed_hosts):
        return (
            400,
            "invalid_host",
            f"this server does not answer to {name[:60]!r}; add it with --allowed-host",
        )
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{host}"
        foreign = origin is not None and origin != own and origin not in settings.cors_origins
        if foreign or (origin is None and request.headers.get("sec-fetch-site") == "cross-site"):
            return 403, "cross_origin", "requests that change state must come from this server's own page"
        if request.url.path != "/upload":
            if request.headers.get("transfer-encoding", "").lower() == "chunked":
                return 411, "length_required", "send JSON bodies with a Content-Length"
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > settings.max_json_bytes:
                return 413, "body_too_large", f"JSON bodies are limited to {settings.max_json_bytes} bytes"
    return None


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready-to-serve app; the job worker starts and stops with the app's lifespan."""
    settings = settings or Settings()
    settings.videos_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database)
    model = SharedModel(settings.model, settings.device)  # one detector for jobs, previews and /live
    edits = PlanEdits()  # the request handlers' and the plan jobs' edits, one at a time per video
    previews = Previews(settings, model)
    state = Services(
        settings, store, model, JobRunner(store, settings, model, edits, previews), previews, edits
    )
    live = LiveService(  # webcam over WebRTC: /live
        model, connect_timeout_s=settings.live_connect_timeout_s, max_sessions=settings.max_live_sessions
    )

    async def keep_house() -> None:
        while True:
            await asyncio.sleep(settings.housekeeping_interval_s)
            try:
                await run_in_threadpool(expire_sessions, store, settings, state.previews)
            except Exception:  # a full disk, say: try again next time
                log.exception("housekeeping failed")

    cluster = Cluster(settings.cluster) if settings.cluster else None  # analyses and renders run there

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        upload.remove_orphans(settings.videos_dir, store.video_ids())  # uploads cut off by a kill
        if cluster is not None:
            await run_in_threadpool(cluster.connect)
        state.jobs.start()
        housekeeping = asyncio.get_running_loop().create_task(keep_house())
        try:
            yield
        finally:
            housekeeping.cancel()
            await live.close()
            await run_in_threadpool(state.jobs.stop)
            if cluster is not None:
                await run_in_threadpool(cluster.close)
            state.previews.close()
            store.close()

    app = FastAPIOffline(  # /docs and /redoc from bundled files: nothing is fetched from a CDN
        title="smartfocus",
        version=__version__,
        summary="Click a subject in a video, keep it sharp, blur the rest like a lens.",
        lifespan=lifespan,
    )
    app.state.services = state
    install_error_handlers(app)

    @app.middleware("http")
    async def sessions(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every browser gets a server-issued session token (cookie) that owns its videos and jobs."""
        if request.url.path.startswith(SESSIONLESS):  # probes and static files: no session rows for them
            return await call_next(request)
        token = request.cookies.get(SESSION_COOKIE)
        issued = not store.session_exists(token)
        touched = False
        if not issued:
            with contextlib.suppress(sqlite3.OperationalError):  # a full disk must not fail a read
                touched = store.touch_session(token, min(3600.0, settings.session_ttl_s / 10))
        if issued and request.method in ("GET", "HEAD") and request.url.path != "/":
            # API reads need no session of their own (nothing is theirs yet): no row written, so
            # probes leave nothing behind and a full disk still answers them; the page gets its own
            request.state.session = ""
            return await call_next(request)
        if issued:
            try:
                token = store.new_session()
            except sqlite3.OperationalError as error:
                fault = storage_fault(error)
                assert fault is not None
                return error_response(fault.status, fault.code, fault.message)
        request.state.session = token
        response = await call_next(request)
        if issued or touched:  # the cookie lasts as long as the session: renewed as it is used
            response.set_cookie(
                SESSION_COOKIE, token, max_age=round(settings.session_ttl_s), httponly=True, samesite="strict"
            )
        return response

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Refuse, before any work: a foreign Host (DNS rebinding), a state-changing request from
        another site's page (CSRF), and JSON bodies over the limit."""
        refusal = refuse(request, settings)
        if refusal is not None:
            return error_response(*refusal)
        return await call_next(request)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    for router in (*ROUTERS, live.router):
        app.include_router(router)
    app.mount("/web", StaticFiles(directory=web.WEB_DIR), name="web")
    return app
