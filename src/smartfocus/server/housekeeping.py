"""Housekeeping now and then, so a server's disk stays bounded: every
`Settings.housekeeping_interval_s`, sessions unused for `Settings.session_ttl_s` are forgotten with
their videos, renders and jobs (never one with a job still queued or running). What a killed process
left behind is removed once, at start (`upload.remove_orphans`, `JobRunner.start`).
"""

from __future__ import annotations

import logging
import time

from smartfocus.server.previews import Previews
from smartfocus.server.settings import Settings
from smartfocus.server.store import Store
from smartfocus.server.upload import remove

log = logging.getLogger(__name__)


def expire_sessions(store: Store, settings: Settings, previews: Previews) -> list[str]:
    """Forget the sessions unused for `settings.session_ttl_s` and delete their files; the ids of
    the videos removed."""
    videos = store.expire_sessions(time.time() - settings.session_ttl_s)
    for video_id in videos:  # by id: a folder without a row may be an upload still streaming in
        previews.forget(video_id)
        remove(settings.videos_dir / video_id)
    if videos:
        log.info("expired %d videos of sessions unused for %g s", len(videos), settings.session_ttl_s)
    return videos
