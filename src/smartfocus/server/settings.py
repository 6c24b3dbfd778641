"""Server settings: one frozen object built by the CLI (or a test) and injected into every route."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smartfocus.cluster import CLUSTER_ENV
from smartfocus.paths import smartfocus_home
from smartfocus.render.compositor import DEFAULT_BLUR

GIB = 1 << 30


@dataclass(frozen=True)
class Settings:
    """Args:
    data_dir: SQLite database, uploads, renders and the analysis and region caches live here: the
        server writes nowhere else.
    model: YOLOv8-seg weights (path or official name); None means `$SMARTFOCUS_MODEL`, else the default.
    device: inference device (None: CUDA when present, else CPU).
    max_upload_bytes: uploads larger than this are refused while they stream in.
    upload_idle_timeout_s: an upload that sends nothing for this long is dropped (408).
    max_frames, max_pixels, max_duration_s: an upload with more frames, more pixels per frame or a
        longer duration is refused (413) before any work starts on it; one job analyses it all.
    max_json_bytes: the largest JSON request body (uploads have their own limit).
    max_plan_keyframes: keyframes one plan may hold: each new subject is followed through the whole
        clip when the plan is applied (seconds each), so this bounds the work of one edit.
    job_workers: analyses and renders run at once; a free worker serves the session with the fewest
        jobs running first, so one session cannot starve the others.
    max_job_s: a job running longer than this is stopped and fails, keeping no output.
    select_wait_s: how long a click sent with `background` (the page's) waits for its work before
        it answers with the job doing it (202: progress and cancel); most clicks answer within it.
    session_ttl_s: a browser session unused this long is forgotten with its videos, renders and
        jobs (checked every `housekeeping_interval_s`); its cookie lasts as long.
    max_live_sessions, live_connect_timeout_s: webcam streams (/live) at once, and how long a peer
        may take to connect (or to come back after dropping) before it is hung up.
    cors_origins: origins allowed to call the API from another page; empty means CORS stays off.
    allowed_hosts: Host headers answered besides the loopback names and the bound address (a
        DNS-rebinding page reaches a local server under a foreign name: refused).
    cluster: where analyses and renders run: None in this process, else a Ray cluster address
        (`local`, `auto`, `HOST:PORT`, `ray://HOST:PORT`; see `smartfocus.cluster.Cluster`),
        connected while the app runs (default `$SMARTFOCUS_CLUSTER`). Its workers read uploads
        from `data_dir`, so on several machines that is a shared filesystem.
    """

    data_dir: Path = field(default_factory=lambda: smartfocus_home() / "server")
    model: str | None = field(default_factory=lambda: os.environ.get("SMARTFOCUS_MODEL"))
    device: str | None = None
    max_upload_bytes: int = 2 * GIB
    upload_idle_timeout_s: float = 30.0
    max_frames: int = 54_000  # 30 minutes at 30 frames/s
    max_pixels: int = 3840 * 2160
    max_duration_s: float = 3600.0
    max_json_bytes: int = 1 << 20
    max_plan_keyframes: int = 100
    job_workers: int = 2
    max_job_s: float = 4 * 3600.0
    select_wait_s: float = 1.0
    session_ttl_s: float = 30 * 24 * 3600.0
    housekeeping_interval_s: float = 600.0
    max_live_sessions: int = 8
    live_connect_timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    default_blur: float = DEFAULT_BLUR
    cluster: str | None = field(default_factory=lambda: os.environ.get(CLUSTER_ENV) or None)

    def __post_init__(self) -> None:
        if self.job_workers < 1:
            raise ValueError(f"job_workers must be at least 1, got {self.job_workers}")
        for name in (
            "upload_idle_timeout_s",
            "max_job_s",
            "select_wait_s",
            "session_ttl_s",
            "housekeeping_interval_s",
            "live_connect_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def database(self) -> Path:
        return self.data_dir / "smartfocus.sqlite3"

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    def preview_copy(self, video_id: str) -> Path:
        """The video's seek-friendly copy for previews (`media.proxy`), written by its preview job."""
        return self.videos_dir / video_id / "preview.mp4"

    @property
    def analyses_dir(self) -> Path:
        return self.data_dir / "analyses"

    @property
    def regions_dir(self) -> Path:
        """Followed subjects and clicked regions (`FocusSession.region`, `followed`)."""
        return self.data_dir / "regions"
