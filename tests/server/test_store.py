"""The server's SQLite store on a database an earlier release made: columns added since are migrated."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from smartfocus.focus.plan import FocusPlan
from smartfocus.server.store import Store

# The tables as the first release made them, before any of `store._ADDED_COLUMNS`.
FIRST_RELEASE = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE videos (
    id TEXT PRIMARY KEY, session TEXT NOT NULL REFERENCES sessions(id), filename TEXT NOT NULL,
    source TEXT NOT NULL, info TEXT NOT NULL, plan TEXT NOT NULL, blur REAL NOT NULL,
    plan_version INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, video_id TEXT NOT NULL REFERENCES videos(id), session TEXT NOT NULL,
    kind TEXT NOT NULL, state TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0,
    error TEXT, note TEXT, plan TEXT, blur REAL, output TEXT, created REAL NOT NULL, updated REAL NOT NULL
);
"""


def test_an_old_render_job_reads_as_standard_at_the_source_size_and_new_ones_keep_their_options(
    tmp_path: Path,
) -> None:
    path, now, plan = tmp_path / "state.db", time.time(), FocusPlan().to_json()
    with sqlite3.connect(path) as old:
        old.executescript(FIRST_RELEASE)
        old.execute("INSERT INTO sessions VALUES ('s', ?)", (now,))
        old.execute("INSERT INTO videos VALUES ('v', 's', 'a.mp4', '/x', '{}', ?, 0.5, 0, ?)", (plan, now))
        old.execute(
            "INSERT INTO jobs (id, video_id, session, kind, state, plan, output, created, updated) "
            "VALUES ('j', 'v', 's', 'render', 'done', ?, '/x/j.mp4', ?, ?)",
            (plan, now, now),
        )
    store = Store(path)
    try:
        old_job = store.job("j")
        assert old_job is not None and (old_job.output_quality, old_job.output_height) == ("standard", None)
        video = store.video("v", "s")
        assert video is not None
        new_job = store.add_job(
            video, "render", plan=FocusPlan(), output_dir=tmp_path, output_quality="small", output_height=480
        )
        assert (new_job.output_quality, new_job.output_height) == ("small", 480)
    finally:
        store.close()
    Store(path).close()  # opening a migrated database again changes nothing
