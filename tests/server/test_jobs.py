"""Job scheduling: several workers shared fairly between sessions, and a time limit per job."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from smartfocus.errors import SmartfocusError
from smartfocus.focus.plan import FocusPlan, Keyframe
from smartfocus.server import Settings, create_app
from smartfocus.server.edits import PlanEdits
from smartfocus.server.jobs import JobRunner
from smartfocus.server.previews import Previews
from smartfocus.server.store import JobRecord, Store, new_id
from smartfocus.vision.model import SharedModel


@pytest.fixture
def runner(tmp_path: Path, model_path: Path) -> JobRunner:
    """A runner over a real store whose workers are not started: the test picks jobs itself."""
    settings = Settings(data_dir=tmp_path, model=str(model_path), device="cpu")
    model = SharedModel(settings.model, "cpu")
    return JobRunner(Store(settings.database), settings, model, PlanEdits(), Previews(settings, model))


def queue_jobs(runner: JobRunner, source: Path, sessions: str) -> dict[str, str]:
    """One queued render per letter of `sessions` (the letter names the session), in that order;
    the jobs' names by id: the session's letter and the job's place in the queue, e.g. "a0"."""
    tokens: dict[str, str] = {}
    named = {}
    for place, letter in enumerate(sessions):
        token = tokens.setdefault(letter, runner.store.new_session())
        video = runner.store.add_video(new_id(), token, "clip.mp4", source, {}, 0.6)
        job = runner.store.add_job(video, "render")
        runner.submit(job)
        named[job.id] = f"{letter}{place}"
    return named


def names(named: dict[str, str], taken: list[JobRecord | None]) -> list[str]:
    return [named[job.id] if job else "-" for job in taken]


def test_one_worker_alternates_between_sessions(runner: JobRunner, short_clip: Path) -> None:
    """Session a queues three jobs before b queues one: b's runs second, not last."""
    jobs = queue_jobs(runner, short_clip, "aaab")
    order = []
    for _ in range(5):
        job = runner._take()
        order.append(job)
        if job is not None:
            runner._release(job)
    assert names(jobs, order) == ["a0", "b3", "a1", "a2", "-"]


def test_a_free_worker_serves_the_session_with_nothing_running(runner: JobRunner, short_clip: Path) -> None:
    """With a's long job on one worker and two of a's queued before c's, the second worker takes c's."""
    jobs = queue_jobs(runner, short_clip, "aabc")
    first, second, third = runner._take(), runner._take(), runner._take()
    assert names(jobs, [first, second, third]) == ["a0", "b2", "c3"]
    runner._release(second)  # b finished; a's first job still runs, c's too
    assert names(jobs, [runner._take()]) == ["a1"]


def test_a_cancelled_queued_job_is_never_started(runner: JobRunner, short_clip: Path) -> None:
    jobs = queue_jobs(runner, short_clip, "ab")
    first = runner.store.job(next(iter(jobs)))
    runner.cancel(first)
    assert runner.store.job(first.id).state == "cancelled"
    assert names(jobs, [runner._take(), runner._take()]) == ["b1", "-"]


def test_a_job_past_the_time_limit_fails_naming_the_limit_and_keeps_nothing(
    server_settings: Callable[..., Settings],
    dog_clip: Path,
    serve_app: Callable[[FastAPI], AbstractContextManager[str]],
) -> None:
    """The dog sample's 289 frames take far longer than 0.5 s to analyse on any machine."""
    settings = server_settings(max_job_s=0.5)
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        with dog_clip.open("rb") as file:
            answer = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["analysis"]["id"]
        deadline = time.monotonic() + 120
        while (job := client.get(f"/jobs/{job_id}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "failed" and "max_job_s" in job["error"], job
        assert not any(settings.analyses_dir.glob("*")), "a stopped analysis left a cache behind"
        video = client.get(f"/videos/{answer.json()['video_id']}").json()
        assert video["analysis"]["state"] == "failed"


def test_previews_come_from_the_seek_friendly_copy_once_its_job_is_done(
    server_settings: Callable[..., Settings],
    short_clip: Path,
    serve_app: Callable[[FastAPI], AbstractContextManager[str]],
) -> None:
    settings = server_settings()
    app = create_app(settings)
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        with short_clip.open("rb") as file:
            video_id = client.post("/upload", files={"file": ("clip.mp4", file, "video/mp4")}).json()[
                "video_id"
            ]
        deadline = time.monotonic() + 120
        while (video := client.get(f"/videos/{video_id}").json())["preview"]["state"] != "done":
            assert time.monotonic() < deadline and video["preview"]["state"] in ("queued", "running"), video
            time.sleep(0.2)
        assert video["preview"]["done"] == video["preview"]["total"] == 45
        frame = client.get("/frame", params={"video_id": video_id, "index": 30})
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
        services = app.state.services
        session = services.previews.session(
            services.store.video(video_id, services.store.job(video["analysis"]["id"]).session)
        )
        assert session.has_preview_copy
        assert np.abs(session.preview(30).astype(int) - session.read(30).astype(int)).mean() < 2.0


def test_plans_past_the_keyframe_limit_are_refused_and_change_nothing(
    server_settings: Callable[..., Settings],
    short_clip: Path,
    serve_app: Callable[[FastAPI], AbstractContextManager[str]],
) -> None:
    settings = server_settings(max_plan_keyframes=2)
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        with short_clip.open("rb") as file:
            answer = client.post("/upload", files={"file": ("clip.mp4", file, "video/mp4")}).json()
        video_id, job_id = answer["video_id"], answer["analysis"]["id"]
        deadline = time.monotonic() + 120
        while client.get(f"/jobs/{job_id}").json()["state"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        woman = {"video_id": video_id, "x": 360.0, "y": 380.0}
        for frame in (0, 20):
            assert client.post("/select", json={**woman, "frame": frame, "mode": "add"}).status_code == 200
        before = client.get("/plan", params={"video_id": video_id}).json()
        third = client.post("/select", json={**woman, "frame": 40, "mode": "add"})
        assert third.status_code == 413 and third.json()["error"]["code"] == "plan_too_large", third.text
        assert "max_plan_keyframes" in third.json()["error"]["message"]
        again = client.post("/select", json={**woman, "frame": 20, "mode": "focus"})  # replaces one: fine
        assert again.status_code == 200, again.text
        keyframes = [{"frame": f, "action": "add", "points": [[360, 380]]} for f in (0, 10, 20)]
        put = client.put("/plan", json={"video_id": video_id, "keyframes": keyframes})
        assert put.status_code == 413 and put.json()["error"]["code"] == "plan_too_large"
        after = client.get("/plan", params={"video_id": video_id}).json()
        assert len(after["keyframes"]) == len(before["keyframes"]) == 2


def test_a_plan_job_is_not_applied_over_keyframes_changed_meanwhile(
    runner: JobRunner, short_clip: Path
) -> None:
    """The click made while the plan was being prepared is kept; the job says why it did not apply."""
    store = runner.store
    video = store.add_video(new_id(), store.new_session(), "clip.mp4", short_clip, {}, 0.6)
    prepared = FocusPlan((Keyframe(frame=0, points=((360.0, 380.0),)),))
    job = store.add_job(video, "plan", plan=prepared, base_plan=video.plan)
    clicked = FocusPlan((Keyframe(frame=9, points=((100.0, 100.0),)),))
    store.set_plan(video.id, clicked, 0.6)  # a click while the job ran
    with pytest.raises(SmartfocusError, match="another edit changed the keyframes"):
        runner._apply_plan(store.job(job.id))
    assert store.video(video.id, video.session).plan == clicked
    store.set_plan(video.id, FocusPlan(), 0.3)  # the click undone: the base again; a blur change is fine
    runner._apply_plan(store.job(job.id))
    applied = store.video(video.id, video.session)
    assert applied.plan == prepared and applied.blur == 0.3


def test_a_click_interrupted_by_a_restart_is_cancelled_not_replayed(
    runner: JobRunner, short_clip: Path
) -> None:
    """A select job is the page's moment: after a restart it is cancelled (the page asks again),
    while an interrupted render is queued again."""
    store = runner.store
    video = store.add_video(new_id(), store.new_session(), "clip.mp4", short_clip, {}, 0.6)
    click = {"frame": 0, "x": 360.0, "y": 380.0, "mode": "focus"}
    plan = FocusPlan().focus(0, (360.0, 380.0))
    select = store.add_job(video, "select", plan=plan, base_plan=FocusPlan(), click=click)
    render = store.add_job(video, "render", plan=plan)
    for job in (select, render):
        store.update_job(job.id, state="running")
    runner.start()
    try:
        interrupted = store.job(select.id)
        assert interrupted is not None and interrupted.state == "cancelled", interrupted
        assert interrupted.note == "interrupted by a server restart" and interrupted.click == click
        assert store.video(video.id, video.session).plan == FocusPlan()  # its plan was not applied
        resumed = store.job(render.id)
        assert resumed is not None and resumed.note == "resumed after a server restart"
    finally:
        runner.cancel(store.job(render.id))
        runner.stop()
