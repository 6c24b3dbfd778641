"""Live webcam autofocus over WebRTC: the browser sends its camera, the server sends it back focused.

`LiveService.router` serves the page (`GET /live`) and the signalling and control endpoints:

    POST   /live/offer               SDP offer in, SDP answer and a session id out
    POST   /live/{session}/select    click (in the pixels of the picture the page shows) -> locked subject
    POST   /live/{session}/reset     unlock: the blur eases out
    POST   /live/{session}/blur      lens strength 0..1
    GET    /live/{session}/stats     frames processed / dropped, latency
    DELETE /live/{session}           hang up

Each session has its own `LiveEngine` (own tracker and subject lock) and one worker thread. The
browser's frames are read as they arrive and only the newest is processed (`FocusTrack.recv`), so a
slow machine lowers the frame rate, never the freshness. aiortc (not a hand-written stack) does the
ICE, DTLS, SRTP and VP8/H.264 work.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from smartfocus.errors import SelectionError
from smartfocus.live.engine import LiveEngine, LiveSettings
from smartfocus.server.errors import install_error_handlers
from smartfocus.vision.model import SharedModel

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


class Offer(BaseModel):
    sdp: str
    type: Literal["offer"]


class Answer(BaseModel):
    sdp: str
    type: str
    session: str = Field(description="id for the control endpoints of this stream")


class ClickIn(BaseModel):
    x: float = Field(description="pixels of the picture the click was made on")
    y: float
    width: int | None = Field(None, gt=0, description="that picture's width (the <video>'s videoWidth)")
    height: int | None = Field(None, gt=0)


class Selected(BaseModel):
    track_id: int
    class_name: str


class BlurIn(BaseModel):
    strength: float = Field(ge=0.0, le=1.0)


class LiveStatsOut(BaseModel):
    processed: int
    dropped: int
    latency_ms_median: float | None
    latency_ms_p95: float | None
    width: int | None
    height: int | None


@dataclass
class _Counters:
    processed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)  # the last few hundred, seconds


class FocusTrack(MediaStreamTrack):
    """The browser's video track, focused. Only the newest received frame is ever processed."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, engine: LiveEngine, executor: ThreadPoolExecutor) -> None:
        super().__init__()
        self.source = source
        self.engine = engine
        self.executor = executor
        self.counters = _Counters()
        self._newest: tuple[VideoFrame, float] | None = None
        self._arrived = asyncio.Event()
        self._ended = False
        self._reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        """Take the browser's frames as fast as they come; a frame not yet processed is replaced."""
        try:
            while True:
                frame = await self.source.recv()
                if self._newest is not None:
                    self.counters.dropped += 1
                self._newest = (frame, self.engine.clock())
                self._arrived.set()
        except MediaStreamError:
            self._ended = True
            self._arrived.set()

    async def recv(self) -> VideoFrame:
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())
        if self._newest is None and not self._ended:
            self._arrived.clear()
            await self._arrived.wait()
        if self._newest is None:  # the browser's track ended
            self.stop()
            raise MediaStreamError
        frame, captured = self._newest
        self._newest = None
        image = frame.to_ndarray(format="bgr24")
        loop = asyncio.get_running_loop()
        focused = await loop.run_in_executor(self.executor, self.engine.process, image, captured)
        counters = self.counters
        counters.processed += 1
        counters.latencies = [*counters.latencies[-299:], focused.latency]
        out = VideoFrame.from_ndarray(np.ascontiguousarray(focused.image), format="bgr24")
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        super().stop()


@dataclass
class _Session:
    pc: RTCPeerConnection
    engine: LiveEngine
    executor: ThreadPoolExecutor
    track: FocusTrack | None = None
    watchdog: asyncio.Task[None] | None = None  # hangs up a peer that is not connected in time


class LiveService:
    """The live sessions of one server and the router that reaches them.

    The detector is the process' `SharedModel` (the server's jobs use the same one), loaded on the
    first offer if nothing loaded it before; everything else is per session. Call `close()` on
    shutdown to hang up every peer.

    A peer that is not connected `connect_timeout_s` after its offer (it never completed the
    handshake, or it dropped and did not come back) is hung up, so abandoned offers do not hold a
    peer connection and a worker thread for ever; at most `max_sessions` run at once (503 beyond).
    """

    def __init__(
        self,
        model: SharedModel,
        settings: LiveSettings | None = None,
        *,
        connect_timeout_s: float = 30.0,
        max_sessions: int = 8,
    ) -> None:
        self.model = model
        self.settings = settings or LiveSettings()
        self.connect_timeout_s, self.max_sessions = connect_timeout_s, max_sessions
        self.sessions: dict[str, _Session] = {}
        self.router = self._routes()

    async def close(self) -> None:
        for session_id in list(self.sessions):
            await self._hang_up(session_id)

    async def _hang_up(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            if session.watchdog is not None and session.watchdog is not asyncio.current_task():
                session.watchdog.cancel()
            await session.pc.close()
            session.executor.shutdown(wait=False, cancel_futures=True)

    def _watch(self, session_id: str) -> None:
        """(Re)start the countdown that hangs the session up unless its peer is connected by then."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        if session.watchdog is not None:
            session.watchdog.cancel()

        async def hang_up_unless_connected() -> None:
            await asyncio.sleep(self.connect_timeout_s)
            if session.pc.connectionState != "connected":
                await self._hang_up(session_id)

        session.watchdog = asyncio.get_running_loop().create_task(hang_up_unless_connected())

    def _session(self, session_id: str) -> _Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise HTTPException(404, f"no live session {session_id!r}; it ended or never existed")
        return session

    async def offer(self, offer: Offer) -> Answer:
        if len(self.sessions) >= self.max_sessions:
            raise HTTPException(
                503, f"{self.max_sessions} live sessions are running, the most this server takes; try later"
            )
        engine = LiveEngine(await asyncio.to_thread(self.model.segmenter), self.settings)
        session_id = uuid.uuid4().hex
        pc = RTCPeerConnection()
        session = _Session(pc, engine, ThreadPoolExecutor(1, thread_name_prefix=f"live-{session_id[:8]}"))
        self.sessions[session_id] = session

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and session.track is None:
                session.track = FocusTrack(track, engine, session.executor)
                pc.addTrack(session.track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self._hang_up(session_id)
            elif pc.connectionState == "disconnected":  # it may come back: give it the same time
                self._watch(session_id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
            if session.track is None:
                raise HTTPException(400, "the offer has no video track; send the camera's track")
            await pc.setLocalDescription(await pc.createAnswer())
        except HTTPException:
            await self._hang_up(session_id)
            raise
        except ValueError as error:  # aiortc's answer to a malformed SDP
            await self._hang_up(session_id)
            raise HTTPException(400, f"not a usable SDP offer: {error}") from error
        self._watch(session_id)
        local = pc.localDescription
        return Answer(sdp=local.sdp, type=local.type, session=session_id)

    def _routes(self) -> APIRouter:
        router = APIRouter(prefix="/live", tags=["live"])

        @router.get("", include_in_schema=False)
        async def page() -> FileResponse:
            return FileResponse(WEB_DIR / "live.html", media_type="text/html")

        @router.get("/live.js", include_in_schema=False)
        async def script() -> FileResponse:
            return FileResponse(WEB_DIR / "live.js", media_type="text/javascript")

        @router.post("/offer", response_model=Answer)
        async def offer(body: Offer) -> Answer:
            """Start a live stream: the browser's SDP offer (with its camera track) in, the answer out."""
            return await self.offer(body)

        @router.post("/{session_id}/select", response_model=Selected, responses={422: {}})
        async def select(session_id: str, click: ClickIn) -> Selected:
            """Lock the subject under the click in the newest processed frame."""
            engine = self._session(session_id).engine
            size = (click.width, click.height) if click.width and click.height else None
            try:
                chosen = engine.select(click.x, click.y, size)
            except SelectionError as error:
                raise HTTPException(422, str(error)) from error
            return Selected(track_id=chosen.track_id, class_name=chosen.class_name)

        @router.post("/{session_id}/reset")
        async def reset(session_id: str) -> dict[str, bool]:
            self._session(session_id).engine.reset()
            return {"ok": True}

        @router.post("/{session_id}/blur", response_model=BlurIn)
        async def blur(session_id: str, body: BlurIn) -> BlurIn:
            self._session(session_id).engine.blur = body.strength
            return body

        @router.get("/{session_id}/stats", response_model=LiveStatsOut)
        async def stats(session_id: str) -> LiveStatsOut:
            session = self._session(session_id)
            counters = session.track.counters if session.track else _Counters()
            latencies = np.array(counters.latencies) * 1000
            size = session.engine.frame_size
            return LiveStatsOut(
                processed=counters.processed,
                dropped=counters.dropped,
                latency_ms_median=float(np.median(latencies)) if len(latencies) else None,
                latency_ms_p95=float(np.percentile(latencies, 95)) if len(latencies) else None,
                width=size[0] if size else None,
                height=size[1] if size else None,
            )

        @router.delete("/{session_id}")
        async def hang_up(session_id: str) -> dict[str, bool]:
            self._session(session_id)
            await self._hang_up(session_id)
            return {"ok": True}

        return router


def create_live_app(service: LiveService) -> FastAPI:
    """A server with only the live page, for `smartfocus serve`'s absence and for tests."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await service.close()

    app = FastAPI(title="smartfocus live", lifespan=lifespan)
    install_error_handlers(app)  # errors as {"error": {...}}, as on the full server
    app.include_router(service.router)
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")  # the page's stylesheet and icon
    return app
