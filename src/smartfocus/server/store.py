"""Sessions, videos (with their focus plans) and jobs in SQLite, so they survive a restart.

One connection guarded by a lock: the server's threads (request handlers, the job worker) all write
through here, and SQLite serialises writers anyway. Files (uploads, renders) live beside the database;
rows only name them by server-generated ids.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from smartfocus.focus.plan import FocusPlan
from smartfocus.media.output import OutputQuality

JobKind = Literal["analyse", "preview", "render", "plan", "select"]  # preview: the seek-friendly copy
# (media.proxy); select: a click whose subject is followed through the clip first
# plan: a PUT /plan whose subjects take long to follow, applied when they are
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(id), filename TEXT NOT NULL,
    source TEXT NOT NULL, info TEXT NOT NULL, plan TEXT NOT NULL, blur REAL NOT NULL,
    plan_version INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, video_id TEXT NOT NULL REFERENCES videos(id), session TEXT NOT NULL,
    kind TEXT NOT NULL, state TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
    error TEXT, note TEXT, plan TEXT, blur REAL, output TEXT, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_video ON jobs (video_id, created);
"""
# Columns added after the first release, for databases made before them: (table, column, type).
_ADDED_COLUMNS = (
    ("jobs", "started", "REAL"),
    ("sessions", "seen", "REAL"),
    ("jobs", "base_plan", "TEXT"),
    ("jobs", "mattes", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "click", "TEXT"),
    ("jobs", "result", "TEXT"),
    ("jobs", "output_quality", "TEXT NOT NULL DEFAULT 'standard'"),
    ("jobs", "output_height", "INTEGER"),
)


def new_id() -> str:
    """A server-generated id: 32 hex digits, safe as a file name, never chosen by a client."""
    return uuid.uuid4().hex


def is_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class VideoRecord:
    id: str
    session: str
    filename: str  # the uploader's name, for display and the download's name only
    source: Path
    info: dict[str, Any]
    plan: FocusPlan
    blur: float
    plan_version: int  # bumped on every plan change, so a page can key its preview cache on it


@dataclass(frozen=True)
class JobRecord:
    id: str
    video_id: str
    session: str
    kind: JobKind
    state: JobState
    done: int
    total: int
    error: str | None
    note: str | None
    plan: FocusPlan | None  # a render's plan, frozen when it was asked for
    blur: float | None
    output: Path | None
    created: float
    updated: float
    started: float | None  # when it last started running
    base_plan: FocusPlan | None  # a plan job's: the plan it replaces (it is applied only onto that one)
    mattes: bool  # a render's: it also exports its mattes (`mattes_zip`)
    click: dict[str, Any] | None  # a select job's click: frame, x, y, mode
    result: dict[str, Any] | None  # a finished select job's pick: label, track_id, frame, mask
    output_quality: OutputQuality  # a render's file: its quality and height (None: the source's)
    output_height: int | None

    @property
    def mattes_zip(self) -> Path | None:
        """Where a render that exports mattes leaves them: a zip of one PNG per frame."""
        return self.output.with_suffix(".mattes.zip") if self.output is not None and self.mattes else None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class Store:
    """The server's persistent state."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                names = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in names:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # sessions
    def new_session(self) -> str:
        token = secrets.token_hex(16)
        self._run("INSERT INTO sessions (id, created) VALUES (?, ?)", (token, time.time()))
        return token

    def touch_session(self, token: str, every_s: float) -> bool:
        """Note that `token` was used now, at most once every `every_s` (a no-op read otherwise);
        whether it was noted."""
        now = time.time()
        with self._lock:
            cursor = self._db.execute(
                "UPDATE sessions SET seen = ? WHERE id = ? AND COALESCE(seen, created) < ?",
                (now, token, now - every_s),
            )
            return cursor.rowcount > 0

    def expire_sessions(self, unused_since: float) -> list[str]:
        """Forget the sessions unused since then (none with a job queued or running), with their
        videos and jobs; the ids of the videos forgotten (their files are the caller's to remove)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            expired = [
                row["id"]
                for row in self._db.execute(
                    "SELECT id FROM sessions WHERE COALESCE(seen, created) < ? AND NOT EXISTS "
                    "(SELECT 1 FROM jobs WHERE jobs.session = sessions.id AND state IN ('queued', 'running'))",
                    (unused_since,),
                )
            ]
            videos: list[str] = []
            for token in expired:
                videos += [
                    r["id"] for r in self._db.execute("SELECT id FROM videos WHERE session = ?", (token,))
                ]
                self._db.execute("DELETE FROM jobs WHERE session = ?", (token,))
                self._db.execute("DELETE FROM videos WHERE session = ?", (token,))
                self._db.execute("DELETE FROM sessions WHERE id = ?", (token,))
            return videos

    def session_exists(self, token: str | None) -> bool:
        return (
            bool(token) and is_id(token) and bool(self._run("SELECT 1 FROM sessions WHERE id = ?", (token,)))
        )

    # videos
    def add_video(
        self, video_id: str, session: str, filename: str, source: Path, info: dict[str, Any], blur: float
    ) -> VideoRecord:
        self._run(
            "INSERT INTO videos (id, session, filename, source, info, plan, blur, created) VALUES (?,?,?,?,?,?,?,?)",
            (
                video_id,
                session,
                filename,
                str(source),
                json.dumps(info),
                FocusPlan().to_json(),
                blur,
                time.time(),
            ),
        )
        return self.video(video_id, session)  # type: ignore[return-value]

    def video(self, video_id: str, session: str) -> VideoRecord | None:
        """The video if it exists *and* belongs to `session`; another session's video does not exist."""
        rows = self._run("SELECT * FROM videos WHERE id = ? AND session = ?", (video_id, session))
        return _video(rows[0]) if rows else None

    def videos_of(self, session: str, limit: int) -> list[VideoRecord]:
        """The session's videos, the most recent first."""
        rows = self._run(
            "SELECT * FROM videos WHERE session = ? ORDER BY created DESC, rowid DESC LIMIT ?",
            (session, limit),
        )
        return [_video(row) for row in rows]

    def video_ids(self) -> set[str]:
        """Every stored video's id, whoever owns it (start-up housekeeping)."""
        return {row["id"] for row in self._run("SELECT id FROM videos")}

    def video_source(self, video_id: str) -> Path:
        """The stored upload of a video, for the job worker (which acts for whichever session)."""
        return Path(self._run("SELECT source FROM videos WHERE id = ?", (video_id,))[0]["source"])

    def set_plan(self, video_id: str, plan: FocusPlan, blur: float) -> None:
        self._run(
            "UPDATE videos SET plan = ?, blur = ?, plan_version = plan_version + 1 WHERE id = ?",
            (plan.to_json(), blur, video_id),
        )

    # jobs
    def add_job(
        self,
        video: VideoRecord,
        kind: JobKind,
        *,
        plan: FocusPlan | None = None,
        blur: float | None = None,
        output_dir: Path | None = None,
        base_plan: FocusPlan | None = None,
        mattes: bool = False,
        click: dict[str, Any] | None = None,
        output_quality: OutputQuality = "standard",
        output_height: int | None = None,
    ) -> JobRecord:
        """A queued job; a render's file will be `output_dir/<job id>.mp4`."""
        job_id, now = new_id(), time.time()
        output = output_dir / f"{job_id}.mp4" if output_dir else None
        self._run(
            "INSERT INTO jobs (id, video_id, session, kind, state, plan, blur, output, created, updated, base_plan,"
            " mattes, click, output_quality, output_height) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                video.id,
                video.session,
                kind,
                "queued",
                plan.to_json() if plan else None,
                blur,
                str(output) if output else None,
                now,
                now,
                base_plan.to_json() if base_plan else None,
                int(mattes),
                json.dumps(click) if click is not None else None,
                output_quality,
                output_height,
            ),
        )
        return self.job(job_id)  # type: ignore[return-value]

    def job(self, job_id: str, session: str | None = None) -> JobRecord | None:
        """A job by id; with `session`, only if it belongs to that session."""
        if session is None:
            rows = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,))
        else:
            rows = self._run("SELECT * FROM jobs WHERE id = ? AND session = ?", (job_id, session))
        return _job(rows[0]) if rows else None

    def latest_job(self, video_id: str, kind: JobKind, state: JobState | None = None) -> JobRecord | None:
        sql = "SELECT * FROM jobs WHERE video_id = ? AND kind = ?" + (" AND state = ?" if state else "")
        args = (video_id, kind, state) if state else (video_id, kind)
        rows = self._run(sql + " ORDER BY created DESC, rowid DESC LIMIT 1", args)
        return _job(rows[0]) if rows else None

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"state", "done", "total", "error", "note", "started", "result"}
        if not fields.keys() <= allowed:
            raise ValueError(f"cannot update {sorted(fields.keys() - allowed)}")
        if "result" in fields:
            fields["result"] = json.dumps(fields["result"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self._run(
            f"UPDATE jobs SET {assignments}, updated = ? WHERE id = ?",
            (*fields.values(), time.time(), job_id),
        )

    def interrupted_jobs(self) -> list[JobRecord]:
        """Jobs a previous server process accepted but did not finish, oldest first."""
        rows = self._run("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created, rowid")
        return [_job(row) for row in rows]


def _video(row: sqlite3.Row) -> VideoRecord:
    return VideoRecord(
        id=row["id"],
        session=row["session"],
        filename=row["filename"],
        source=Path(row["source"]),
        info=json.loads(row["info"]),
        plan=FocusPlan.from_json(row["plan"]),
        blur=row["blur"],
        plan_version=row["plan_version"],
    )


def _job(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        video_id=row["video_id"],
        session=row["session"],
        kind=row["kind"],
        state=row["state"],
        done=row["done"],
        total=row["total"],
        error=row["error"],
        note=row["note"],
        plan=FocusPlan.from_json(row["plan"]) if row["plan"] else None,
        blur=row["blur"],
        output=Path(row["output"]) if row["output"] else None,
        created=row["created"],
        updated=row["updated"],
        started=row["started"],
        base_plan=FocusPlan.from_json(row["base_plan"]) if row["base_plan"] else None,
        mattes=bool(row["mattes"]),
        click=json.loads(row["click"]) if row["click"] else None,
        result=json.loads(row["result"]) if row["result"] else None,
        output_quality=row["output_quality"],
        output_height=row["output_height"],
    )
