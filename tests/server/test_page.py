"""The page in a real browser (Debian's Chromium, headless) against a live server and the real model.

Screenshots go to out/screenshots/ (gitignored) to look at: before and after focusing, with two
keyframes, and after rendering.
"""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path
from typing import Any

import av
import pytest

from smartfocus.server.store import Store

pytest.importorskip("playwright.sync_api")

SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
WOMAN, DOG_30 = (360, 380), (620, 500)  # source pixels on frames 0 and 30
WOMAN_10 = (300.0, 300.0)  # on frame 10
EXCLUDED = (1200.0, 80.0)  # background on frame 0: not the woman
WALL = (1150.0, 120.0)  # no detection: a click there follows the region (seconds)


def click_source(page: Any, x: float, y: float, **options: Any) -> None:
    """Click where source pixel (x, y) is displayed, however the canvas is scaled."""
    box = page.locator("#view").bounding_box()
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / 1280, box["y"] + (y + 0.5) * box["height"] / 720, **options
    )


# every message the page's toast shows (errors the user would see), recorded from the page's start
RECORD_TOASTS = """document.addEventListener("DOMContentLoaded", () => {
  window.__toasts = [];
  const toast = document.getElementById("toast");
  new MutationObserver(() => { if (!toast.hidden) window.__toasts.push(toast.textContent); })
    .observe(toast, { attributes: true, childList: true, characterData: true, subtree: true });
});"""


def toasts(page: Any) -> list[str]:
    """What the page's toast said since the page (re)loaded: errors shown to the user."""
    return page.evaluate("window.__toasts")


def canvas_pixels(page: Any) -> list[int]:
    """A coarse sample of what the canvas shows (right third: background)."""
    return page.evaluate(
        """() => {
            const c = document.getElementById('view');
            const d = c.getContext('2d').getImageData(900, 100, 300, 500).data;
            const out = [];
            for (let i = 0; i < d.length; i += 4 * 97) out.push(d[i], d[i + 1], d[i + 2]);
            return out;
        }"""
    )


@pytest.mark.slow
def box_pixels(page: Any, box: tuple[float, float, float, float]) -> list[int]:
    """The grey values of the canvas inside `box` (source pixels), row by row."""
    return page.evaluate(
        """([x0, y0, x1, y1]) => {
            const c = document.getElementById('view');
            const w = Math.max(1, Math.round(x1 - x0)), h = Math.max(1, Math.round(y1 - y0));
            const d = c.getContext('2d').getImageData(Math.round(x0), Math.round(y0), w, h).data;
            const out = [w];
            for (let i = 0; i < d.length; i += 4) out.push((d[i] + d[i + 1] + d[i + 2]) / 3);
            return out;
        }""",
        list(box),
    )


def tint_at(page: Any, point: tuple[float, float]) -> dict[str, float]:
    """The mask view's tint: its alpha at source pixel `point`, and the share of the frame tinted."""
    return page.evaluate(
        """([x, y]) => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return { at: d[(Math.round(y) * c.width + Math.round(x)) * 4 + 3], area: n / (c.width * c.height) }; }""",
        list(point),
    )


def sharpness(pixels: list[int]) -> float:
    """Mean absolute difference between horizontal neighbours: high where the picture is sharp."""
    width, values = int(pixels[0]), pixels[1:]
    pairs = [(values[i], values[i + 1]) for i in range(len(values) - 1) if (i + 1) % width]
    return sum(abs(a - b) for a, b in pairs) / max(len(pairs), 1)


def test_upload_focus_keyframe_render_download(
    browser: Any, live_server: Any, short_clip: Path, tmp_path: Path
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # a high-DPI screen and a canvas shown smaller than its 1280x720 pixels: clicks must still land right
    context = browser.new_context(viewport={"width": 1120, "height": 760}, device_scale_factor=2)
    page = context.new_page()
    page.add_init_script(RECORD_TOASTS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url)
    page.screenshot(path=SHOTS / "00_start.png")

    page.set_input_files("#file-input", str(short_clip))
    page.wait_for_selector("#analysis-group.done", timeout=120_000)
    page.wait_for_function("document.getElementById('view').dataset.frame === '0'")
    css_width = page.locator("#view").bounding_box()["width"]
    assert css_width < 1000  # CSS-scaled (and 2 device pixels per CSS pixel)
    before = canvas_pixels(page)
    # hovering highlights what a click would pick
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + WOMAN[0] * box["width"] / 1280, box["y"] + WOMAN[1] * box["height"] / 720)
    page.wait_for_function("document.getElementById('view').title.startsWith('person')")
    page.screenshot(path=SHOTS / "01_before_focus_hover.png")

    click_source(page, *WOMAN)
    page.wait_for_function("(document.getElementById('view').dataset.url || '').includes('focused=1')")
    page.wait_for_selector(".marker img")
    page.screenshot(path=SHOTS / "02_after_focus.png")
    after = canvas_pixels(page)
    assert (
        sum(abs(a - b) for a, b in zip(before, after, strict=True)) / len(before) > 3
    )  # the preview changed
    video_id = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('v')")
    plan = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    ((x, y),) = plan["keyframes"][0]["points"]
    assert abs(x - WOMAN[0]) <= 2 and abs(y - WOMAN[1]) <= 2  # the click landed on the source pixel

    # arrows step frames; then rack focus to the dog at frame 30
    page.locator("#view").focus()
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('view').dataset.frame === '30'")
    click_source(page, *DOG_30)
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    page.wait_for_function(
        "[...document.querySelectorAll('.marker img')].every(i => i.complete && i.naturalWidth)"
    )
    page.screenshot(path=SHOTS / "03_two_keyframes.png")
    plan = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [(0, "focus"), (30, "focus")]

    # the track strip: one row per subject, coloured where it is found / estimated / lost; subjects
    # are named by number (their row, their thumbnail), with the class only where it is confident
    page.wait_for_function("document.querySelectorAll('#strips .strip').length === 2")
    states = page.evaluate("[...document.querySelectorAll('#strips .seg')].map(s => s.classList[1])")
    assert states and set(states) <= {"detected", "carried", "lost"} and "detected" in states
    page.wait_for_function(
        "[...document.querySelectorAll('#keyframe-list [data-keyframe]')].every(e => e.textContent.includes('subject'))"
    )
    names = page.evaluate(
        "[...document.querySelectorAll('#keyframe-list [data-keyframe]')].map(e => e.textContent)"
    )
    assert re.fullmatch(r"Focus · subject 1( \(person\))?", names[0]), names
    assert re.fullmatch(r"Focus · subject 2( \(dog\))?", names[1]), names
    rows = page.evaluate("[...document.querySelectorAll('#strips .strip')].map(r => r.title)")
    assert [row.split(" (")[0] for row in rows] == ["subject 1", "subject 2"], rows
    page.screenshot(path=SHOTS / "03b_track_strip.png")

    # a correction on a frame between the keyframes: "Fix: include" on the dog makes it part of the
    # woman's subject there (it was blurred), and Ctrl+Z takes it back
    dog = next(o for o in page.request.get(f"{live_server.url}/subjects?video_id={video_id}&frame=15").json()
               if o["label"] == "dog")  # fmt: skip
    x0, y0, x1, y1 = dog["box"]
    page.locator("#view").focus()
    for _ in range(15):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.getElementById('view').dataset.frame === '15'")
    page.wait_for_function("(document.getElementById('view').dataset.url || '').includes('focused=1')")
    blurred = box_pixels(page, (x0, y0, x1, y1))
    page.click("#mode-refine")
    with page.expect_response(lambda r: r.url.endswith("/select")) as answer:
        click_source(page, (x0 + x1) / 2, (y0 + y1) / 2)
    assert answer.value.ok, answer.value.text()  # 200, or 202 with the job following it
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 3")
    version = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()["version"]
    page.wait_for_function(f"document.getElementById('view').dataset.url.endsWith('&v={version}')")
    corrected = box_pixels(page, (x0, y0, x1, y1))
    page.screenshot(path=SHOTS / "03c_corrected.png")
    plan = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [
        (0, "focus"),
        (15, "refine"),
        (30, "focus"),
    ]
    assert sharpness(corrected) > 1.3 * sharpness(blurred)  # the dog is sharp now
    page.keyboard.press("Control+z")
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    plan = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [(0, "focus"), (30, "focus")]

    # "Fix: exclude" on a later frame cuts what is under the click out of the subject there: the mask
    # view's tint leaves that spot and shrinks; Ctrl+Z brings it back
    page.locator("#view").focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.getElementById('view').dataset.frame === '10'")
    page.check("#show-mask")
    page.wait_for_function("document.getElementById('overlay').dataset.matteFrame === '10'")
    whole = tint_at(page, WOMAN_10)
    assert whole["at"] > 0 and whole["area"] > 0.01, whole  # the woman, clicked where she is
    page.click("#mode-exclude")
    click_source(page, *WOMAN_10)
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 3")
    version = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()["version"]
    page.wait_for_function(f"document.getElementById('overlay').dataset.matteVersion === '{version}'")
    cut = tint_at(page, WOMAN_10)
    page.screenshot(path=SHOTS / "03c2_excluded_mask.png")
    assert cut["at"] == 0 and cut["area"] < 0.9 * whole["area"], (whole, cut)
    page.keyboard.press("Control+z")
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    version = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()["version"]
    page.wait_for_function(f"document.getElementById('overlay').dataset.matteVersion === '{version}'")
    assert tint_at(page, WOMAN_10)["at"] > 0  # undone: she is whole again
    page.uncheck("#show-mask")
    page.click("#mode-focus")

    # a click on something the detector does not know is followed through the clip (seconds): its
    # progress shows over the picture, and Cancel leaves the focus as it was
    before = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    click_source(page, *WALL)
    page.wait_for_selector("#work:not([hidden])")
    assert "Following" in page.inner_text("#work")
    page.screenshot(path=SHOTS / "03c3_click_progress.png")
    page.click("#work-cancel")
    page.wait_for_selector("#work", state="hidden")
    page.wait_for_function("document.getElementById('badge').textContent.startsWith('Cancelled')")
    assert page.request.get(f"{live_server.url}/plan?video_id={video_id}").json() == before

    # an exclude point (the API's exclude click) survives the page's own edits (a blur change keeps
    # the server's keyframes), and the render job gets it whole
    answer = page.request.post(
        f"{live_server.url}/select",
        data={"video_id": video_id, "frame": 0, "x": EXCLUDED[0], "y": EXCLUDED[1], "mode": "exclude"},
    )
    assert answer.ok, answer.text()
    assert toasts(page) == [], toasts(page)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    with page.expect_response(lambda r: r.url.endswith("/plan") and r.request.method == "PUT") as put:
        page.evaluate(
            "() => { const b = document.getElementById('blur'); b.value = '70';"
            " b.dispatchEvent(new Event('change')); }"
        )
    assert put.value.ok
    plan = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()
    assert plan["blur"] == 0.7 and plan["keyframes"][0]["exclude"] == [list(EXCLUDED)]

    # the rack focus into the dog's keyframe takes 1 s instead of the default (a plan job, on the badge)
    version = page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()["version"]
    page.select_option("#keyframe-list li:nth-child(2) select.transition", "1")
    deadline = time.monotonic() + 60
    while (plan := page.request.get(f"{live_server.url}/plan?video_id={video_id}").json())[
        "version"
    ] == version:
        assert time.monotonic() < deadline, "the transition was never saved"
        time.sleep(0.2)
    assert [k.get("transition") for k in plan["keyframes"]] == [None, 1.0]
    page.wait_for_function(  # the page shows the plan it saved
        "document.querySelector('#keyframe-list li:nth-child(2) select.transition').value === '1'"
    )
    page.screenshot(path=SHOTS / "03d_transition.png")
    page.check("#export-mattes")
    page.click("#render")
    page.wait_for_selector("#render-progress:not([hidden]), #download:not([hidden])")
    page.screenshot(path=SHOTS / "04_rendering.png")  # usually mid-render: the progress bar
    page.wait_for_selector("#download:not([hidden])", timeout=180_000)
    page.screenshot(path=SHOTS / "05_rendered.png")
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "rendered.mp4"
    download.value.save_as(saved)
    with av.open(str(saved)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 45
    with page.expect_download() as mattes:
        page.click("#download-mattes")
    mattes.value.save_as(tmp_path / "mattes.zip")
    with zipfile.ZipFile(tmp_path / "mattes.zip") as bundle:
        assert bundle.namelist() == [f"{i:05d}.png" for i in range(45)]
    store = Store(live_server.settings.database)
    rendered = store.latest_job(video_id, "render")
    store.close()
    assert rendered is not None and rendered.plan is not None
    assert rendered.plan.keyframes[0].exclude == (EXCLUDED,) and rendered.blur == 0.7

    # keys as in editors: End, Home, Delete removes the keyframe on the frame shown
    page.locator("#view").focus()
    page.keyboard.press("End")
    page.wait_for_function("document.getElementById('view').dataset.frame === '44'")
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('view').dataset.frame === '0'")
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("document.getElementById('view').dataset.frame === '30'")
    page.keyboard.press("Delete")
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 1")
    page.keyboard.press("Control+z")  # and back
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    assert page.evaluate("location.hash").endswith("&f=30")  # the frame is in the URL

    # a reload picks the same video, plan and frame up again (in the URL hash; state on the server)
    assert toasts(page) == [], toasts(page)
    page.reload()
    page.wait_for_function("document.getElementById('view').dataset.frame === '30'")
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    page.wait_for_function("(document.getElementById('view').dataset.url || '').includes('focused=1')")
    page.wait_for_selector("#download:not([hidden])")

    # hold B: the frame as shot (before); let go: focused again (after)
    page.locator("#view").focus()
    page.keyboard.down("b")
    page.wait_for_function("!document.getElementById('view').dataset.url.includes('focused=1')")
    page.keyboard.up("b")
    page.wait_for_function("document.getElementById('view').dataset.url.includes('focused=1')")
    # dragging the blur slider previews the frame at that blur before anything is saved
    page.evaluate(
        "() => { const b = document.getElementById('blur'); b.value = '20'; b.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function("document.getElementById('view').dataset.url.endsWith('&blur=0.2')")
    assert page.request.get(f"{live_server.url}/plan?video_id={video_id}").json()["blur"] == 0.7
    page.screenshot(path=SHOTS / "06_blur_dragged.png")
    # the mask view tints what the plan keeps sharp on the frame shown (the dog)
    page.check("#show-mask")
    page.wait_for_function("document.getElementById('overlay').dataset.matteFrame === '30'")
    tinted = page.evaluate(
        """() => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n / (c.width * c.height); }"""
    )
    assert 0.01 < tinted < 0.6, tinted  # some of the frame, not none of it nor all of it
    page.screenshot(path=SHOTS / "07_mask_view.png")
    page.uncheck("#show-mask")
    # space plays (also while a button has the keyboard focus, without pressing it)
    page.keyboard.press("Home")
    page.wait_for_function("document.getElementById('view').dataset.frame === '0'")
    page.focus("#mode-add")
    page.keyboard.press("Space")
    # playing, the focused preview comes at 640 px (said on the picture); paused, at full size again
    page.wait_for_function(
        "Number(document.getElementById('view').dataset.frame) > 3"
        " && document.getElementById('view').dataset.url.includes('&width=640&focused=1')",
        timeout=60_000,
    )
    assert "640×360" in page.inner_text("#badge")
    page.keyboard.press("Space")
    page.wait_for_function("!document.getElementById('view').dataset.url.includes('width=')")
    assert page.get_attribute("#mode-focus", "aria-checked") == "true"  # the focused button was not pressed
    # "New video" goes back to the start, where this session's videos are listed; one click reopens it
    page.click("#new-video")
    page.wait_for_selector("#recent:not([hidden])")
    assert "dog45.mp4" in page.inner_text("#recent-list") and "2 keyframes" in page.inner_text("#recent-list")
    page.screenshot(path=SHOTS / "08_recent.png")
    page.click("#recent-list a")
    page.wait_for_selector("#editor:not([hidden])")
    page.wait_for_function("document.querySelectorAll('#timeline .marker').length === 2")
    assert not errors, errors
    assert toasts(page) == [], toasts(page)
    assert page.request.get(f"{live_server.url}/favicon.ico").ok
    context.close()


def test_export_quality_and_size_are_sent_with_the_render(
    browser: Any, live_server: Any, short_clip: Path, tmp_path: Path
) -> None:
    """Without a plan the render is a plain transcode, at the quality and size the Export lists say;
    the Size list offers the video's own size and the usual heights below it."""
    page = browser.new_page()
    page.add_init_script(RECORD_TOASTS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server.url)
    page.set_input_files("#file-input", str(short_clip))
    page.wait_for_selector("#analysis-group.done", timeout=120_000)  # from the cache after the test above
    assert page.locator("#output-height option").all_text_contents() == ["720p (original)", "480p", "360p"]
    page.select_option("#output-height", "360")
    page.select_option("#output-quality", "small")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "06_export_options.png")
    assert toasts(page) == [], toasts(page)  # (once: a frame drawn after its cache was cleared)
    page.click("#render")
    page.wait_for_selector("#download:not([hidden])", timeout=120_000)
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "small.mp4"
    download.value.save_as(saved)
    with av.open(str(saved)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360)
        assert sum(1 for _ in container.decode(stream)) == 45
    store = Store(live_server.settings.database)
    rendered = store.job(page.get_attribute("#download", "href").split("job_id=")[1])
    store.close()
    assert rendered is not None and (rendered.output_quality, rendered.output_height) == ("small", 360)
    assert errors == []
    page.close()
