"""The page's own playback speed in a real browser (headless Chromium through Playwright) against a
real server on a loopback port, and where a focused frame's time goes.

Uploads the clip through the page's file input, waits for the analysis (and the preview copy), clicks
the subject on the canvas, then plays: the frames/s the page actually draws (distinct `#view`
`data-frame` values per second, recorded by a MutationObserver) with the focused preview on, and
again with it off (`#show-focus` unchecked), against the clip's rate. Then, for the reason: the
browser's fetch of each frame during playback (resource timing: request to first byte, transfer,
size) and its decode (`createImageBitmap`, timed by a wrapper), whether frames waited in the page
after they arrived (the page's loop) or the page waited for them (the server); the server's time per
focused frame over HTTP (one at a time and 3 in flight, as the page's prefetch), and the same frame
split into decode, focus composite and JPEG encode inside the server process.

    python bench/page.py [--clip PATH] [--model PATH] [--click F:X,Y] [--frames N] [--device D]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx

from server import add_clip_arguments, percentiles, serving
from shared_data import parse_click

CHROMIUM = Path("/usr/bin/chromium")

# Before the page's scripts: keep every resource timing entry, and time each createImageBitmap
# (the page's decode of a fetched frame, frames.js) without touching the page's code.
INSTRUMENT = """
performance.setResourceTimingBufferSize(100000);
window.__decodes = [];
const createImageBitmapAsShipped = window.createImageBitmap.bind(window);
window.createImageBitmap = async (...args) => {
  const begin = performance.now();
  const bitmap = await createImageBitmapAsShipped(...args);
  window.__decodes.push([begin, performance.now(), args[0] && args[0].size]);
  return bitmap;
};
window.__drawn = [];
new MutationObserver(() => {
  const view = document.getElementById('view');
  if (view) window.__drawn.push([performance.now(), view.dataset.frame, view.dataset.url]);
}).observe(document, { attributes: true, attributeFilter: ['data-frame'], subtree: true });
"""

# What one playback leaves in the page: draws, frame fetches, decodes (times in ms, page clock).
COLLECT = """() => ({
  drawn: window.__drawn,
  decodes: window.__decodes,
  fetches: performance.getEntriesByType('resource')
    .filter((e) => new URL(e.name).pathname === '/frame')
    .map((e) => ({
      url: e.name, start: e.startTime, request: e.requestStart, first: e.responseStart,
      end: e.responseEnd, size: e.encodedBodySize,
    })),
})"""

RESET = """() => {
  window.__drawn = []; window.__decodes = []; performance.clearResourceTimings();
}"""

# A frame decoded and drawn on its own, one at a time (the page's decode without playback around it).
DECODE_ALONE = """async (urls) => {
  const canvas = document.createElement('canvas');
  canvas.width = 1280; canvas.height = 720;
  const context = canvas.getContext('2d');
  const decode = [], draw = [];
  for (const url of urls) {
    const blob = await (await fetch(url)).blob();
    let begin = performance.now();
    const bitmap = await createImageBitmap(blob);
    decode.push(performance.now() - begin);
    begin = performance.now();
    context.drawImage(bitmap, 0, 0, 1280, 720);
    context.getImageData(0, 0, 1, 1);  // the draw done, not only queued
    draw.push(performance.now() - begin);
    bitmap.close();
  }
  return { decode, draw };
}"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_clip_arguments(parser)
    parser.add_argument("--frames", type=int, default=0, help="frames played (default 0: to the end)")
    parser.add_argument("--server-frames", type=int, default=30, help="focused frames timed over HTTP (30)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        print(f"needs {CHROMIUM} (apt-get install chromium)")
        return 1

    from playwright.sync_api import sync_playwright

    from smartfocus.server import Settings

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), model=args.model, device=args.device)
        with serving(settings) as (url, app), sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                run(browser, url, app, args)
            finally:
                browser.close()
    return 0


def run(browser: Any, url: str, app: Any, args: argparse.Namespace) -> None:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    start = time.perf_counter()
    page.set_input_files("#file-input", str(args.clip))
    page.wait_for_selector("#analysis-group.done", timeout=600_000)
    video_id = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('v')")
    while (video := page.request.get(f"{url}/videos/{video_id}").json())["preview"]["state"] not in (
        "done",
        "failed",
    ):
        time.sleep(0.2)
    info = video["info"]
    width, height, fps, count = info["width"], info["height"], info["fps"], info["frame_count"]
    print(
        f"clip: {args.clip.name} {width}x{height} at {fps:.2f} fps, {count} frames; uploaded through the "
        f"page, analysed and the preview copy {video['preview']['state']} after {time.perf_counter() - start:.1f} s"
    )
    chromium = browser.version
    page.wait_for_function("document.getElementById('view').dataset.frame === '0'")

    frame, (x, y) = parse_click(args.click)
    if frame:
        page.evaluate(f"document.getElementById('scrubber').value = '{frame}'")
        page.dispatch_event("#scrubber", "input")
        page.wait_for_function(f"document.getElementById('view').dataset.frame === '{frame}'")
    begin = time.perf_counter()
    box = page.locator("#view").bounding_box()
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height
    )
    page.wait_for_function(
        "(document.getElementById('view').dataset.url || '').includes('focused=1')", timeout=600_000
    )
    print(
        f"click on {frame}:{x:g},{y:g} -> focused frame drawn in the page: "
        f"{(time.perf_counter() - begin) * 1000:.0f} ms (Chromium {chromium}, headless, canvas shown at "
        f"{box['width']:.0f}x{box['height']:.0f} CSS px)"
    )

    played = {}
    for focused in (True, False):
        if not focused:
            page.uncheck("#show-focus")
        page.wait_for_function(
            f"(document.getElementById('view').dataset.url || '').includes('focused=1') === {str(focused).lower()}"
        )
        played[focused] = playback(page, frame, args.frames or count, fps)
    page.check("#show-focus")

    for focused in (True, False):
        report_playback(played[focused], focused, fps)
    report_browser(played[True])

    cookies = {c["name"]: c["value"] for c in context.cookies()}
    report_server(url, app, video_id, cookies, frame, count, args.server_frames, fps)
    focused_urls = [f"{url}{u}" for u in dict.fromkeys(d[2] for d in played[True]["drawn"])][:20]
    alone = page.evaluate(DECODE_ALONE, focused_urls)
    print(
        f"browser, a focused frame on its own (cached blob, one at a time, {len(focused_urls)} frames): "
        f"createImageBitmap {percentiles(alone['decode'])} ms, drawImage on a 1280x720 canvas "
        f"{percentiles(alone['draw'])} ms"
    )
    if errors:
        print(f"page errors: {errors}")
    context.close()


def playback(page: Any, start: int, frames: int, fps: float) -> dict[str, Any]:
    """Play from `start` until `frames` frames are drawn (or the clip ends); what the page recorded."""
    page.evaluate(RESET)
    last = start + frames - 1
    page.click("#play")
    page.wait_for_function(
        f"""() => {{
            const playing = document.getElementById('play').classList.contains('playing');
            return !playing || Number(document.getElementById('view').dataset.frame) >= {last};
        }}""",
        timeout=round(frames / fps * 20_000) + 60_000,
        polling=50,
    )
    if page.evaluate("document.getElementById('play').classList.contains('playing')"):
        page.click("#play")  # pause
    page.wait_for_timeout(300)  # the prefetches still in flight land
    recorded = page.evaluate(COLLECT)
    page.evaluate(
        f"document.getElementById('scrubber').value = '{start}'; "
        "document.getElementById('scrubber').dispatchEvent(new Event('input'))"
    )
    page.wait_for_function(f"document.getElementById('view').dataset.frame === '{start}'")
    return recorded


def shown_fps(recorded: dict[str, Any]) -> tuple[float, int, float]:
    """Distinct frames drawn per second from the first draw to the last; frames; seconds."""
    drawn = recorded["drawn"]
    distinct = len({d[1] for d in drawn})
    seconds = (drawn[-1][0] - drawn[0][0]) / 1000 if len(drawn) > 1 else 0.0
    return ((distinct - 1) / seconds if seconds else 0.0), distinct, seconds


def report_playback(recorded: dict[str, Any], focused: bool, fps: float) -> None:
    rate, distinct, seconds = shown_fps(recorded)
    gaps = [(b[0] - a[0]) for a, b in zip(recorded["drawn"], recorded["drawn"][1:], strict=False)]
    late = sum(gap > 1000 / fps * 1.5 for gap in gaps)
    widths = {parse_qs(urlparse(f["url"]).query).get("width", ["full"])[0] for f in recorded["fetches"]}
    print(
        f"page playback, {'focused' if focused else 'plain'} preview at {'/'.join(sorted(widths))} px wide: "
        f"{rate:.1f} frames/s shown "
        f"= {rate / fps:.2f}x the clip's {fps:.2f} ({distinct} distinct frames drawn in {seconds:.1f} s; "
        f"gap between draws {percentiles(gaps)} ms, {late} gaps over 1.5 frame intervals)"
    )


def report_browser(recorded: dict[str, Any]) -> None:
    """Where a focused frame's time went in the browser while playing."""
    fetches = [f for f in recorded["fetches"] if "focused=1" in f["url"]]
    if not fetches:
        return
    waited = [f["first"] - f["request"] for f in fetches]
    transfer = [f["end"] - f["first"] for f in fetches]
    whole = [f["end"] - f["start"] for f in fetches]
    span = (max(f["end"] for f in fetches) - min(f["start"] for f in fetches)) / 1000
    decodes = [end - begin for begin, end, _ in recorded["decodes"]]
    sizes = [f["size"] for f in fetches if f["size"]]
    print(
        f"browser, focused frames while playing: {len(fetches)} fetched at {len(fetches) / span:.1f} frames/s "
        f"(3 in flight, frames.js); per fetch: request -> first byte {percentiles(waited)} ms, transfer "
        f"{percentiles(transfer)} ms, whole {percentiles(whole)} ms; JPEG {statistics.median(sizes) / 1024:.0f} KiB "
        f"median; createImageBitmap {percentiles(decodes)} ms"
    )
    # did the drawn frame wait in the page after it arrived (the loop's pacing), or the loop for it?
    ends = {f["url"].split("/frame", 1)[1]: f["end"] for f in fetches}
    held = []
    for at, _, url in recorded["drawn"]:
        arrived = ends.get(url.split("/frame", 1)[1])
        if arrived is not None:
            held.append(at - arrived)
    if held:
        print(
            f"browser, from a focused frame's last byte to its draw: {percentiles(held)} ms "
            f"({sum(h < 50 for h in held)} of {len(held)} drawn within 50 ms of arriving: the page waited "
            f"for the frame, not the frame for the page)"
        )


def report_server(
    url: str, app: Any, video_id: str, cookies: dict[str, str], start: int, count: int, n: int, fps: float
) -> None:
    """The server's time per focused frame: over HTTP one at a time and 3 in flight, then split."""
    from smartfocus.render.compositor import LensSettings
    from smartfocus.render.frame import focus_frame
    from smartfocus.server.deps import SESSION_COOKIE
    from smartfocus.server.previews import jpeg

    with httpx.Client(base_url=url, cookies=cookies, timeout=300) as client:
        version = client.get("/plan", params={"video_id": video_id}).json()["version"]
        indices = [start + k for k in range(min(n, count - start))]

        def fetch(index: int, tag: str) -> tuple[float, int]:
            begin = time.perf_counter()
            answer = client.get(
                "/frame",
                params={"video_id": video_id, "index": index, "focused": 1, "v": f"{version}-{tag}"},
            )
            answer.raise_for_status()
            return (time.perf_counter() - begin) * 1000, len(answer.content)

        sequential = [fetch(i, "seq") for i in indices]
        begin = time.perf_counter()
        with ThreadPoolExecutor(3) as pool:
            parallel = list(pool.map(lambda i: fetch(i, "par"), indices))
        rate = len(indices) / (time.perf_counter() - begin)
        plain = [fetch_plain(client, video_id, i) for i in indices]
    ms = [t for t, _ in sequential]
    print(
        f"server, GET /frame?focused=1 over HTTP (httpx, {len(indices)} frames): one at a time "
        f"{percentiles(ms)} ms = {1000 / statistics.mean(ms):.1f} frames/s; 3 in flight "
        f"{percentiles([t for t, _ in parallel])} ms each = {rate:.1f} frames/s; JPEG "
        f"{statistics.median(s for _, s in sequential) / 1024:.0f} KiB median; plain GET /frame one at "
        f"a time {percentiles(plain)} ms"
    )

    services = app.state.services
    record = services.store.video(video_id, cookies[SESSION_COOKIE])
    session = services.previews.session(record)
    lens = LensSettings(record.blur)
    decode, state, focus, unrefined, encode = [], [], [], [], []
    for index in indices:  # in order, as playback asks for them
        begin = time.perf_counter()
        image = session.preview(index)
        decode.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        focus_state = session.state(record.plan, index)
        state.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        focused = focus_frame(image, focus_state, lens, refine=True).image
        focus.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        focus_frame(image, focus_state, lens, refine=False)
        unrefined.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        jpeg(focused)
        encode.append((time.perf_counter() - begin) * 1000)
    mean = statistics.mean
    total = mean(decode) + mean(state) + mean(focus) + mean(encode)
    print(
        f"server, a focused frame inside the process, one at a time (mean ms): decode from the preview "
        f"copy {mean(decode):.1f}, timeline state {mean(state):.1f}, lens blur + refine {mean(focus):.1f} "
        f"(without refine {mean(unrefined):.1f}), JPEG encode {mean(encode):.1f}; {total:.1f} ms = "
        f"{1000 / total:.1f} frames/s on one thread ({fps:.2f} frames/s needs {1000 / fps:.1f} ms)"
    )
    # the preview decoders (session._FrameReaders) with 3 frames in flight, as the page asks for them
    later = [i + len(indices) for i in indices if i + len(indices) < count]
    begin = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(session.preview, later))
    alone = mean(decode)
    print(
        f"server, decoding consecutive frames from the preview copy: one at a time {1000 / alone:.0f} "
        f"frames/s, 3 in flight {len(later) / (time.perf_counter() - begin):.0f} frames/s"
    )


def fetch_plain(client: httpx.Client, video_id: str, index: int) -> float:
    begin = time.perf_counter()
    client.get("/frame", params={"video_id": video_id, "index": index, "v": "plain"}).raise_for_status()
    return (time.perf_counter() - begin) * 1000


if __name__ == "__main__":
    sys.exit(main())
