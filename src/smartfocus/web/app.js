// smartfocus page: upload, click-to-focus preview, focus timeline, render, download.
// Plain ES module, no build step. All state lives in `state`; the server owns the truth (plan, jobs)
// and the page re-reads it after every change.

import { api, ApiError, followJob, uploadFile } from "./api.js";
import { FrameCache } from "./frames.js";

const $ = (id) => document.getElementById(id);
const el = {
  start: $("start"), editor: $("editor"), drop: $("drop"), fileInput: $("file-input"),
  uploadProgress: $("upload-progress"), uploadFill: $("upload-fill"), uploadPercent: $("upload-percent"),
  fileName: $("file-name"), newVideo: $("new-video"), stage: $("stage"), view: $("view"), overlay: $("overlay"),
  badge: $("badge"), play: $("play"), back: $("step-back"), forward: $("step-forward"), scrubber: $("scrubber"),
  timeline: $("timeline"), clock: $("clock"), analysisGroup: $("analysis-group"), analysisText: $("analysis-text"),
  analysisPercent: $("analysis-percent"), analysisFill: $("analysis-fill"), modeFocus: $("mode-focus"),
  modeAdd: $("mode-add"), modeRefine: $("mode-refine"), modeExclude: $("mode-exclude"), undo: $("undo"),
  redo: $("redo"), strips: $("strips"), hint: $("hint"), keyframeList: $("keyframe-list"), showFocus: $("show-focus"),
  showMask: $("show-mask"), exportMattes: $("export-mattes"), downloadMattes: $("download-mattes"), recent: $("recent"), recentList: $("recent-list"),
  blur: $("blur"), blurValue: $("blur-value"), reset: $("reset"), render: $("render"),
  renderProgress: $("render-progress"), renderText: $("render-text"), renderPercent: $("render-percent"),
  renderFill: $("render-fill"), cancelRender: $("cancel-render"), download: $("download"), toast: $("toast"),
  work: $("work"), workText: $("work-text"), workFill: $("work-fill"), workCancel: $("work-cancel"),
  outputQuality: $("output-quality"), outputHeight: $("output-height"),
};

const state = {
  videoId: null, info: null, plan: null, analysed: false, frame: 0, playing: false,
  mode: "focus", renderJob: null, shown: null, highlight: null, undo: [], redo: [],
  before: false, // B held: the frame as shot, to compare
  previewBlur: null, // the blur slider's value while it is dragged, previewed before it is sent
  matte: null, // {frame, version, image}: the mask view's matte of the frame shown
  strips: [], // GET /plan/strips of the plan shown: each subject's runs, label and keyframes
};
const frames = new FrameCache();

// ---------- helpers ----------

function toast(message) {
  el.toast.textContent = message;
  el.toast.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.toast.hidden = true), 6000);
}

function setProgress(fill, percentEl, fraction, box) {
  fill.style.width = `${Math.round(fraction * 100)}%`;
  if (percentEl) percentEl.textContent = `${Math.round(fraction * 100)}%`;
  if (box) box.classList.remove("done", "failed");
}

function focusedView() {
  return state.analysed && el.showFocus.checked && !state.before && state.plan && state.plan.keyframes.length > 0;
}

// Playing, frames come at this width: a focused 720p frame costs the server ~40 ms on two cores
// (past a 30 fps clip's 33 ms), one at 640 px a quarter of that (bench/page.py measures it); plain
// frames get cheaper to encode and send too.
const PLAYBACK_WIDTH = 640;

function playbackWidth() {
  return state.playing && state.info.width > PLAYBACK_WIDTH ? PLAYBACK_WIDTH : null;
}

function frameUrl(index) {
  const width = playbackWidth() ? `&width=${PLAYBACK_WIDTH}` : "";
  const base = `/frame?video_id=${state.videoId}&index=${index}${width}`;
  if (!focusedView()) return base;
  const blur = state.previewBlur === null ? "" : `&blur=${state.previewBlur}`;
  return `${base}&focused=1&v=${state.plan.version}${blur}`;
}

/** The source pixel under a pointer event, whatever the canvas' CSS size and the devicePixelRatio. */
export function sourcePoint(event, canvas, info) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * info.width;
  const y = ((event.clientY - rect.top) / rect.height) * info.height;
  return {
    x: Math.min(Math.max(x, 0), info.width - 1),
    y: Math.min(Math.max(y, 0), info.height - 1),
  };
}

// ---------- video loading ----------

async function openVideo(videoId, frame = 0) {
  const video = await api(`/videos/${videoId}`);
  state.videoId = video.video_id;
  state.info = video.info;
  state.plan = video.plan;
  state.frame = 0;
  frames.clear();
  location.hash = `v=${video.video_id}`;
  el.view.width = el.overlay.width = video.info.width;
  el.view.height = el.overlay.height = video.info.height;
  el.scrubber.max = String(video.info.frame_count - 1);
  el.fileName.textContent = `${video.info.filename} · ${video.info.width}×${video.info.height} · ${video.info.fps.toFixed(2)} fps`;
  el.start.hidden = true;
  el.editor.hidden = false;
  el.newVideo.hidden = false;
  el.blur.value = String(Math.round(video.plan.blur * 100));
  el.blurValue.textContent = `${el.blur.value}%`;
  state.undo = [];
  state.redo = [];
  updateHistory();
  trackAnalysis(video.analysis); // first: whether frames can be shown focused (and strips drawn)
  trackPreview(video.preview);
  fillOutputHeights();
  renderPlan();
  await show(frame);
  if (video.render) trackRender(video.render);
}

/** " · 1:05 left" from a running job's ETA (the server's, from its pace so far), else "". */
function timeLeft(job) {
  if (job.eta_s === null || job.eta_s === undefined) return "";
  const seconds = Math.max(0, Math.round(job.eta_s));
  const clock = seconds >= 60 ? `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}` : `${seconds} s`;
  return ` · ${clock} left`;
}

/** The preview copy's job: scrubbing gets faster when it is done; a damaged file is said here. */
function trackPreview(job) {
  if (!job) return;
  const report = (update) => {
    if (update.state === "failed" && update.error) toast(update.error);
  };
  if (job.state.match(/done|failed|cancelled/)) report(job);
  else followJob(job.id, report).catch(() => {});
}

function trackAnalysis(job) {
  state.analysed = job === null || job.state === "done";
  updateAnalysis(job);
  if (job && !job.state.match(/done|failed|cancelled/)) {
    followJob(job.id, updateAnalysis).catch((error) => toast(error.message));
  }
}

function updateAnalysis(job) {
  const box = el.analysisGroup;
  if (!job) return;
  setProgress(el.analysisFill, el.analysisPercent, job.progress, box);
  if (job.state === "done") {
    el.analysisText.textContent = `Analysed ${job.total} frames`;
    box.classList.add("done");
    if (!state.analysed) {
      state.analysed = true;
      frames.clear();
      show(state.frame);
    }
  } else if (job.state === "failed" || job.state === "cancelled") {
    el.analysisText.textContent = job.error || `Analysis ${job.state}`;
    box.classList.add("failed");
  } else {
    el.analysisText.textContent = job.state === "queued" ? "Queued…"
      : job.total ? `Finding subjects… ${job.done}/${job.total}${timeLeft(job)}` : "Loading the model…";
  }
  el.render.disabled = !state.analysed;
  el.view.style.cursor = state.analysed ? "crosshair" : "progress";
}

// ---------- upload ----------

async function upload(file) {
  el.uploadProgress.hidden = false;
  setProgress(el.uploadFill, el.uploadPercent, 0);
  try {
    const answer = await uploadFile(file, (fraction) => setProgress(el.uploadFill, el.uploadPercent, fraction));
    await openVideo(answer.video_id);
  } catch (error) {
    toast(error.message);
  } finally {
    el.uploadProgress.hidden = true;
    el.fileInput.value = "";
  }
}

el.fileInput.addEventListener("change", () => el.fileInput.files[0] && upload(el.fileInput.files[0]));
el.drop.addEventListener("dragover", (event) => { event.preventDefault(); el.drop.classList.add("over"); });
el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
el.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  el.drop.classList.remove("over");
  if (event.dataTransfer.files[0]) upload(event.dataTransfer.files[0]);
});
el.newVideo.addEventListener("click", () => {
  pause();
  history.replaceState(null, "", location.pathname);
  state.videoId = null;
  el.editor.hidden = true;
  el.start.hidden = false;
  el.newVideo.hidden = true;
  el.fileName.textContent = "";
  listRecent();
});

/** This session's earlier videos on the start screen (GET /videos), each opening where it was. */
async function listRecent() {
  const videos = await api("/videos").catch(() => []);
  el.recentList.replaceChildren(...videos.map((video) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#v=${video.video_id}`;
    link.textContent = video.info.filename;
    const facts = document.createElement("span");
    const seconds = video.info.duration.toFixed(1);
    const focus = video.keyframes ? `${video.keyframes} keyframe${video.keyframes > 1 ? "s" : ""}` : "no focus yet";
    facts.textContent = ` · ${seconds} s · ${focus}${video.analysis === "failed" ? " · analysis failed" : ""}`;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openVideo(video.video_id).catch((error) => toast(error.message));
    });
    item.append(link, facts);
    return item;
  }));
  el.recent.hidden = videos.length === 0;
}

// ---------- frames and playback ----------

async function show(index) {
  index = Math.min(Math.max(index, 0), state.info.frame_count - 1);
  state.frame = index;
  el.scrubber.value = String(index);
  updateClock();
  const url = frameUrl(index);
  const loading = setTimeout(() => el.stage.classList.add("loading"), 150);  // the old frame stays meanwhile
  const fetchFrame = () => frames.get(url).catch((error) => { toast(error.message); return null; });
  let bitmap = await fetchFrame();
  if (bitmap && !bitmap.width) bitmap = await fetchFrame();  // closed by a cache clear meanwhile
  clearTimeout(loading);
  if (state.frame === index) el.stage.classList.remove("loading");
  if (bitmap && state.frame === index && frameUrl(index) === url) {
    el.view.getContext("2d").drawImage(bitmap, 0, 0, state.info.width, state.info.height);
    state.shown = url;
    el.view.dataset.frame = String(index);
    el.view.dataset.url = url;
    if (!state.playing) history.replaceState(null, "", `#v=${state.videoId}&f=${index}`);  // a reload returns here
    drawHighlight();
    if (el.showMask.checked && !state.playing) loadMatte(index);
  }
}

/** The mask view: what the plan keeps sharp on frame `index`, tinted over it (GET /frame/matte). */
async function loadMatte(index) {
  if (!state.analysed || !state.plan.keyframes.length) { state.matte = null; drawHighlight(); return; }
  const version = state.plan.version;
  if (state.matte && state.matte.frame === index && state.matte.version === version) return;
  const response = await fetch(`/frame/matte?video_id=${state.videoId}&index=${index}&v=${version}`);
  if (!response.ok || state.frame !== index) return;
  const image = await createImageBitmap(await response.blob());
  state.matte = { frame: index, version, image };
  el.overlay.dataset.matteFrame = String(index);
  el.overlay.dataset.matteVersion = String(version);
  drawHighlight();
}

/** Where frame `index` sits on the timeline strip (markers are 44 px wide and stay inside it). */
function along(index) {
  const fraction = state.info.frame_count > 1 ? index / (state.info.frame_count - 1) : 0;
  return `calc(22px + (100% - 44px) * ${fraction})`;
}

function updateClock() {
  const seconds = state.frame / state.info.fps;
  el.clock.textContent = `${state.frame + 1} / ${state.info.frame_count}`;
  el.clock.title = `${seconds.toFixed(2)} s`;
  const head = el.timeline.querySelector(".playhead");
  if (head) head.style.left = along(state.frame);
}

function play() {
  if (state.playing) return;
  if (state.frame >= state.info.frame_count - 1) state.frame = 0;
  state.playing = true;
  el.play.classList.add("playing");
  el.play.setAttribute("aria-label", "Pause");
  if (playbackWidth()) {
    const height = Math.round((state.info.height * PLAYBACK_WIDTH) / state.info.width / 2) * 2;
    badge(`Playing a ${PLAYBACK_WIDTH}×${height} preview; pause for full size`, { sticky: true });
  }
  loop();
}

function pause() {
  if (!state.playing) return;
  state.playing = false;
  el.play.classList.remove("playing");
  el.play.setAttribute("aria-label", "Play");
  if (state.videoId) history.replaceState(null, "", `#v=${state.videoId}&f=${state.frame}`);
  if (state.shown !== frameUrl(state.frame)) {  // the playback preview: the frame at full size
    el.badge.hidden = true;
    show(state.frame);
  }
}

/** Play on the clip's clock: each frame when it is due, prefetched ahead; a frame that cannot
 * arrive in time is skipped (real time at fewer frames, never slow motion). */
async function loop() {
  const interval = 1000 / state.info.fps;
  const start = performance.now();
  const first = state.frame;
  const due = (index) => start + (index - first) * interval;
  while (state.playing) {
    const clock = first + Math.floor((performance.now() - start) / interval);  // the frame due now
    const next = Math.max(state.frame + 1, clock);
    if (next >= state.info.frame_count) { pause(); break; }
    frames.prefetch(Array.from({ length: 8 }, (_, k) => next + k).filter((i) => i < state.info.frame_count).map(frameUrl));
    await frames.get(frameUrl(next)).catch(() => null);
    const wait = due(next) - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (!state.playing) break;
    await show(next);
  }
}

el.play.addEventListener("click", () => (state.playing ? pause() : play()));
el.back.addEventListener("click", () => { pause(); show(state.frame - 1); });
el.forward.addEventListener("click", () => { pause(); show(state.frame + 1); });
el.scrubber.addEventListener("input", () => { pause(); show(Number(el.scrubber.value)); });
el.showFocus.addEventListener("change", () => show(state.frame));
el.timeline.addEventListener("click", (event) => {
  if (event.target !== el.timeline && !event.target.classList.contains("span")) return;
  const rect = el.timeline.getBoundingClientRect();
  const fraction = (event.clientX - rect.left - 22) / Math.max(rect.width - 44, 1);
  pause();
  show(Math.round(Math.min(Math.max(fraction, 0), 1) * (state.info.frame_count - 1)));
});

function typing(target) {
  return target instanceof HTMLInputElement && target.type !== "range" && target.type !== "checkbox";
}

// space must not also "press" whichever button has focus (buttons activate on keyup)
document.addEventListener("keyup", (event) => {
  if (event.code === "Space" && !el.editor.hidden && !typing(event.target)) event.preventDefault();
});

document.addEventListener("keydown", (event) => {
  if (!state.videoId || el.editor.hidden || typing(event.target)) return;
  if (event.code === "Space") {
    event.preventDefault();
    state.playing ? pause() : play();
  } else if (event.key === "Escape" && !el.work.hidden) {
    el.workCancel.click();
  } else if (event.key === "Home" || event.key === "End") {
    event.preventDefault();
    pause();
    show(event.key === "Home" ? 0 : state.info.frame_count - 1);
  } else if (!event.ctrlKey && !event.metaKey && ["j", "k", "l"].includes(event.key.toLowerCase())) {
    const key = event.key.toLowerCase();  // as in editors: J back a second, K pause, L play
    pause();
    if (key === "j") show(state.frame - Math.round(state.info.fps));
    if (key === "l") play();
  } else if (event.key === "Delete" || event.key === "Backspace") {
    const index = state.plan.keyframes.findIndex((k) => k.frame === state.frame);
    if (index >= 0) { event.preventDefault(); removeKeyframe(index); }  // the keyframe shown here
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    event.shiftKey ? redo() : undo();
  } else if (event.key.toLowerCase() === "b" && !event.ctrlKey && !event.metaKey) {
    if (!state.before) { state.before = true; show(state.frame); }  // before: as shot, while held
  } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
    event.preventDefault();
    pause();
    const step = (event.key === "ArrowLeft" ? -1 : 1) * (event.shiftKey ? 10 : 1);
    show(state.frame + step);
  }
});

document.addEventListener("keyup", (event) => {
  if (event.key.toLowerCase() === "b" && state.before) { state.before = false; show(state.frame); }
});

el.showMask.addEventListener("change", () => {
  if (el.showMask.checked) loadMatte(state.frame);
  else drawHighlight();
});

// ---------- clicking subjects ----------

// Plan edits (clicks, removals, reset, blur) run one after the other, each on the plan the one before
// left: a quick second click waits for the first instead of racing it (the server serialises too).
let edits = Promise.resolve();
function edit(change) {
  const run = edits.then(change, change);
  edits = run.catch(() => {});
  return run;
}

el.view.addEventListener("click", (event) => {
  if (!state.analysed) { toast("The video is still being analysed; clicks work once it is done."); return; }
  pause();
  const point = sourcePoint(event, el.view, state.info);
  const mode = event.shiftKey ? "add" : state.mode;
  const frame = state.frame;
  edit(() => select(frame, point, mode));
});

async function select(frame, point, mode) {
  const before = state.plan;
  el.stage.classList.add("loading");
  try {
    // A click the server cannot answer within a second (a region, a correction: its subject is
    // followed through the clip) comes back as a job: its progress shows, and Cancel (Esc) stops it.
    let answer = await api("/select", {
      method: "POST",
      body: { video_id: state.videoId, frame, x: point.x, y: point.y, mode, background: true },
    });
    if (answer.kind === "select") {
      el.stage.classList.remove("loading");
      const job = await waitForWork(answer, mode === "refine" || mode === "exclude"
        ? "Correcting the subject through the clip…" : "Following what you clicked through the clip…");
      if (job.state === "cancelled") { badge("Cancelled: the focus is as it was"); return; }
      if (job.state !== "done") throw new Error(job.error || `the click ${job.state}`);
      answer = { subject: job.selection, plan: await api(`/plan?video_id=${state.videoId}`) };
    }
    state.plan = answer.plan;
    remember(before);
    await setHighlight(answer.subject.mask);
    const drawn = renderPlan();
    await show(state.frame);
    await drawn;
    const verb = { add: "Added", refine: "Corrected: more of", exclude: "Corrected: less of" }[mode] || "Focus on";
    const index = state.plan.keyframes.findIndex((k) => k.frame === frame && (k.action === "refine") === (mode === "refine" || mode === "exclude"));
    badge(`${verb} ${keyframeName(index) || "the subject"}`);
  } catch (error) {
    el.badge.hidden = true;
    toast(error.message);
  } finally {
    el.stage.classList.remove("loading");
  }
}

/** Show a job the page waits on (a click's, a plan's) over the picture: progress, time left, and
 * a Cancel that stops it (the server then leaves the plan as it was). Resolves to the final job. */
async function waitForWork(job, text) {
  el.workText.textContent = text;
  setProgress(el.workFill, null, 0);
  el.workCancel.disabled = false;
  el.workCancel.onclick = () => {
    el.workCancel.disabled = true;
    api(`/jobs/${job.id}/cancel`, { method: "POST" }).catch((error) => toast(error.message));
  };
  el.work.hidden = false;
  try {
    return await followJob(job.id, (update) => {
      setProgress(el.workFill, null, update.progress);
      el.workText.textContent = `${text} ${Math.round(update.progress * 100)}%${timeLeft(update)}`;
    });
  } finally {
    el.work.hidden = true;
    el.workCancel.onclick = null;
  }
}

async function setHighlight(maskUrl) {
  const image = new Image();
  image.src = maskUrl;
  await image.decode();
  state.highlight = { image, frame: state.frame, until: performance.now() + 1800 };
  drawHighlight();
  setTimeout(drawHighlight, 1850);
}

/** Tint the picked subject's mask (scaled from the analysis grid to the frame) for a moment. */
function drawHighlight() {
  const context = el.overlay.getContext("2d");
  context.clearRect(0, 0, el.overlay.width, el.overlay.height);
  const picked = state.highlight;
  const matte = state.matte;
  if (el.showMask.checked) {  // the matte alone: what a click or the pointer picks would hide it
    if (matte && matte.frame === state.frame && matte.version === state.plan.version) {
      tint(context, matte.image, "rgba(255, 128, 64, 0.5)");
    }
  } else if (picked && picked.frame === state.frame && performance.now() <= picked.until) {
    tint(context, picked.image, "rgba(79, 140, 255, 0.45)");
  } else if (state.hover && state.hover.frame === state.frame && !state.playing) {
    tint(context, state.hover.image, "rgba(140, 180, 255, 0.32)");
  }
}

/** Draw a mask PNG (alpha = the object) scaled onto the frame, filled with one colour. */
function tint(context, image, colour) {
  const { width, height } = el.overlay;
  context.save();
  context.imageSmoothingEnabled = true;
  context.drawImage(image, 0, 0, width, height);
  context.globalCompositeOperation = "source-in";
  context.fillStyle = colour;
  context.fillRect(0, 0, width, height);
  context.restore();
}

// ---------- hovering: show what a click would pick ----------

const subjectCache = new Map(); // "videoId:frame" -> Promise<[{label, track_id, image, alpha, area}]>

function subjectsOn(frame) {
  const key = `${state.videoId}:${frame}`;
  if (!subjectCache.has(key)) {
    if (subjectCache.size > 48) subjectCache.delete(subjectCache.keys().next().value);
    const load = api(`/subjects?video_id=${state.videoId}&frame=${frame}`).then((list) =>
      Promise.all(list.map(async (subject) => {
        const image = new Image();
        image.src = subject.mask;
        await image.decode();
        const canvas = new OffscreenCanvas(image.width, image.height);
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const alpha = context.getImageData(0, 0, image.width, image.height);
        let area = 0;
        for (let i = 3; i < alpha.data.length; i += 4) area += alpha.data[i] > 127;
        return { ...subject, image, alpha, area };
      })));
    load.catch(() => subjectCache.delete(key));
    subjectCache.set(key, load);
  }
  return subjectCache.get(key);
}

/** The smallest object whose mask covers the point (what /select would pick), or null. */
function subjectAt(subjects, point) {
  let best = null;
  for (const subject of subjects) {
    const { width, height, data } = subject.alpha;
    const gx = Math.min(Math.floor((point.x * width) / state.info.width), width - 1);
    const gy = Math.min(Math.floor((point.y * height) / state.info.height), height - 1);
    if (data[(gy * width + gx) * 4 + 3] > 127 && (!best || subject.area < best.area)) best = subject;
  }
  return best;
}

let hoverQueued = null;
el.view.addEventListener("mousemove", (event) => {
  if (!state.analysed || state.playing) return;
  const pending = hoverQueued;
  hoverQueued = { point: sourcePoint(event, el.view, state.info), frame: state.frame };
  if (pending) return; // one lookup per animation frame
  requestAnimationFrame(async () => {
    const { point, frame } = hoverQueued;
    const subjects = await subjectsOn(frame).catch(() => []);
    hoverQueued = null;
    const subject = frame === state.frame ? subjectAt(subjects, point) : null;
    const previous = state.hover;
    state.hover = subject ? { image: subject.image, frame, label: subject.label, track: subject.track_id } : null;
    el.view.title = subject ? `${subject.label.split(" #")[0]}: click to focus on it` : "";  // the class, no tracker id
    if (previous?.image !== state.hover?.image) drawHighlight();
  });
});
el.view.addEventListener("mouseleave", () => {
  state.hover = null;
  el.view.title = "";
  drawHighlight();
});

function badge(text, { sticky = false } = {}) {
  el.badge.textContent = text;
  el.badge.hidden = false;
  clearTimeout(badge.timer);
  if (!sticky) badge.timer = setTimeout(() => (el.badge.hidden = true), 2500);
}

const MODES = { focus: el.modeFocus, add: el.modeAdd, refine: el.modeRefine, exclude: el.modeExclude };
function setMode(mode) {
  state.mode = mode;
  for (const [name, button] of Object.entries(MODES)) {
    button.classList.toggle("on", name === mode);
    button.setAttribute("aria-checked", String(name === mode));
  }
}
for (const [name, button] of Object.entries(MODES)) button.addEventListener("click", () => setMode(name));

// ---------- the plan: keyframes, blur ----------

function thumbnailUrl(index) {
  return `/plan/keyframes/${index}/thumbnail?video_id=${state.videoId}&v=${state.plan.version}`;
}

// ---------- undo / redo: every plan edit, back to the keyframes before it ----------

function remember(before) {
  state.undo.push(before.keyframes);
  state.redo = [];
  updateHistory();
}

function updateHistory() {
  el.undo.disabled = state.undo.length === 0;
  el.redo.disabled = state.redo.length === 0;
}

function restore(from, to) {
  return edit(async () => {
    if (!from.length) return;
    const keyframes = from.pop();
    try {
      const current = state.plan;
      state.plan = await putKeyframes(keyframes, current.version);
      to.push(current.keyframes);
      state.highlight = null;
      renderPlan();
      await show(state.frame);
    } catch (error) {
      from.push(keyframes);
      toast(error.message);
    }
    updateHistory();
  });
}
/** PUT /plan with new keyframes; the plan it leaves. A plan whose subjects the server has not
 * followed lately comes back as a job (202): its progress shows over the picture until it is
 * applied, and a cancel leaves the plan as it was (an error, so the edit is not recorded). */
async function putKeyframes(keyframes, version) {
  const answer = await api("/plan", { method: "PUT", body: { video_id: state.videoId, keyframes, version } });
  if (answer.kind !== "plan") return answer;
  const job = await waitForWork(answer, "Preparing the focus…");
  if (job.state === "cancelled") throw new Error("Cancelled: the focus is as it was.");
  if (job.state !== "done") throw new Error(job.error || `preparing the focus ${job.state}`);
  return api(`/plan?video_id=${state.videoId}`);
}

const undo = () => restore(state.undo, state.redo);
const redo = () => restore(state.redo, state.undo);
el.undo.addEventListener("click", undo);
el.redo.addEventListener("click", redo);

// ---------- the track strip: where each subject is found, estimated, or lost ----------

/** What a person can check a subject by: its number (the strip's row, the thumbnail) and the
 * detector's class only where the server says it is confident ("object" / "region" otherwise). */
function subjectName(strip) {
  const kind = strip.label.split(" #")[0];
  return kind === "object" || kind === "region" ? `subject ${strip.subject + 1}` : `subject ${strip.subject + 1} (${kind})`;
}

/** The subjects keyframe `index` picks or corrects, by name; null before the strips are known. */
function keyframeName(index) {
  const named = state.strips.filter((strip) => strip.keyframes.includes(index)).map(subjectName);
  return named.length ? named.join(" + ") : null;
}

async function renderStrips() {
  const version = state.plan.version;
  const strips = state.plan.keyframes.length && state.analysed
    ? await api(`/plan/strips?video_id=${state.videoId}`).catch(() => [])
    : [];
  if (state.plan.version !== version) return;  // another edit came meanwhile: its call draws
  state.strips = strips;
  el.strips.replaceChildren();
  const names = { detected: "found", carried: "estimated (not detected)", lost: "not found: the blur eases out" };
  for (const strip of strips) {
    const row = document.createElement("div");
    row.className = "strip";
    row.dataset.subject = String(strip.subject);
    row.title = subjectName(strip);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${strip.subject + 1}`;
    row.append(name);
    for (const run of strip.runs) {
      const seg = document.createElement("div");
      seg.className = `seg ${run.state}`;
      seg.style.left = along(run.first);
      seg.style.right = `calc(100% - ${along(run.last)})`;
      seg.title = `${subjectName(strip)}: ${names[run.state]}, frames ${run.first + 1}–${run.last + 1}`;
      seg.addEventListener("click", () => { pause(); show(run.first); });
      row.append(seg);
    }
    el.strips.append(row);
  }
  for (const label of el.keyframeList.querySelectorAll("[data-keyframe]")) {
    const who = keyframeName(Number(label.dataset.keyframe));
    if (who) label.textContent = `${label.dataset.action} · ${who}`;
  }
}

const TRANSITIONS = [null, 0.2, 0.5, 1, 2]; // seconds; null: the default (0.4 s)

/** How long the rack focus into keyframe `index` takes: its own `transition`, saved with the plan. */
function transitionPicker(index, keyframe) {
  const picker = document.createElement("select");
  picker.className = "transition";
  picker.title = "How long the focus takes to pull to this keyframe";
  picker.setAttribute("aria-label", `Transition into the keyframe at frame ${keyframe.frame + 1}`);
  const current = keyframe.transition ?? null;
  for (const seconds of TRANSITIONS.includes(current) ? TRANSITIONS : [...TRANSITIONS, current]) {
    const option = document.createElement("option");
    option.value = seconds === null ? "" : String(seconds);
    option.textContent = seconds === null ? "ease 0.4 s (default)" : `ease ${seconds} s`;
    option.selected = seconds === current;
    picker.append(option);
  }
  picker.addEventListener("change", () => edit(async () => {
    const before = state.plan;
    const keyframes = before.keyframes.map((k, i) =>
      i === index ? { ...k, transition: picker.value === "" ? null : Number(picker.value) } : k);
    try {
      state.plan = await putKeyframes(keyframes, before.version);
      remember(before);
      renderPlan();
      await show(state.frame);
    } catch (error) {
      toast(error.message);
      renderPlan();
    }
  }));
  return picker;
}

/** Draw the plan: timeline markers, the keyframe list, and (once fetched: the promise) the strips. */
function renderPlan() {
  const { keyframes } = state.plan;
  el.timeline.replaceChildren();
  el.keyframeList.replaceChildren();
  keyframes.forEach((keyframe, index) => {
    const nextFrame = index + 1 < keyframes.length ? keyframes[index + 1].frame : state.info.frame_count - 1;
    if (keyframe.action !== "clear") {
      const span = document.createElement("div");
      span.className = "span";
      span.style.left = along(keyframe.frame);
      span.style.right = index + 1 < keyframes.length ? `calc(100% - ${along(nextFrame)})` : "0";
      el.timeline.append(span);
    }
    const marker = document.createElement("button");
    marker.className = `marker ${keyframe.action}`;
    marker.style.left = along(keyframe.frame);
    marker.title = `Frame ${keyframe.frame + 1}: ${keyframe.action}`;
    marker.dataset.frame = String(keyframe.frame);
    const image = document.createElement("img");
    image.alt = `keyframe at frame ${keyframe.frame + 1}`;
    image.src = thumbnailUrl(index);
    const remove = document.createElement("span");
    remove.className = "remove";
    remove.textContent = "×";
    remove.title = "Remove keyframe";
    remove.addEventListener("click", (event) => { event.stopPropagation(); removeKeyframe(index); });
    marker.append(image, remove);
    marker.addEventListener("click", () => { pause(); show(keyframe.frame); });
    el.timeline.append(marker);

    const item = document.createElement("li");
    const thumb = image.cloneNode();
    const what = document.createElement("div");
    what.className = "what";
    const names = { add: "Add", clear: "No focus", refine: "Correction", focus: "Focus" };
    const title = document.createElement("div");
    title.textContent = names[keyframe.action] || "Focus";
    if (keyframe.action !== "clear") Object.assign(title.dataset, { keyframe: String(index), action: title.textContent });
    what.append(title);
    const when = document.createElement("div");
    when.className = "when";
    when.textContent = `from frame ${keyframe.frame + 1} · ${(keyframe.frame / state.info.fps).toFixed(2)}s`;
    what.append(when);
    if (keyframe.frame > 0 && keyframe.action !== "refine") what.append(transitionPicker(index, keyframe));
    const del = document.createElement("button");
    del.textContent = "×";
    del.title = "Remove keyframe";
    del.setAttribute("aria-label", `Remove keyframe at frame ${keyframe.frame + 1}`);
    del.addEventListener("click", () => removeKeyframe(index));
    item.append(thumb, what, del);
    el.keyframeList.append(item);
  });
  const head = document.createElement("div");
  head.className = "playhead";
  el.timeline.append(head);
  el.hint.textContent = keyframes.length
    ? "Move to another moment and click to rack focus there (it pulls over the 0.4 s before the click); “Add subject” keeps several sharp."
    : "Click a subject in the video to keep it sharp. Move to another moment and click again to rack focus.";
  updateClock();
  return renderStrips();
}

function removeKeyframe(index) {
  return edit(async () => {
    try {
      const before = state.plan;
      state.plan = await api(`/plan/keyframes/${index}?video_id=${state.videoId}`, { method: "DELETE" });
      remember(before);
      state.highlight = null;
      renderPlan();
      await show(state.frame);
    } catch (error) {
      toast(error.message);
    }
  });
}

el.reset.addEventListener("click", () => edit(async () => {
  const before = state.plan;
  state.plan = await api("/reset", { method: "POST", body: { video_id: state.videoId } });
  remember(before);  // "Clear focus" is one Ctrl+Z away from undone
  state.highlight = null;
  renderPlan();
  await show(state.frame);
}));

el.blur.addEventListener("input", () => {
  el.blurValue.textContent = `${el.blur.value}%`;
  state.previewBlur = Number(el.blur.value) / 100; // previewed while dragging, sent on release
  clearTimeout(el.blur.timer);
  el.blur.timer = setTimeout(() => show(state.frame), 60);
});
el.blur.addEventListener("change", () => edit(async () => {
  try {
    // only the blur: the keyframes stay as the server has them (never this page's older copy)
    state.plan = await api("/plan", {
      method: "PUT",
      body: { video_id: state.videoId, blur: Number(el.blur.value) / 100 },
    });
    state.previewBlur = null; // the plan has it now
    await show(state.frame);
  } catch (error) {
    state.previewBlur = null;
    toast(error.message);
  }
}));

// ---------- render and download ----------

const OUTPUT_HEIGHTS = [2160, 1440, 1080, 720, 480, 360]; // the server takes any even height from 64

/** The Size choices for the video open now: its own size, then the usual heights below it (the
 * server only scales down), keeping the choice where it still fits. */
function fillOutputHeights() {
  const info = state.info;
  const select = el.outputHeight;
  if (!info || select.dataset.video === state.videoId) return;
  const kept = select.value;
  select.replaceChildren(new Option(`${info.height}p (original)`, ""));
  for (const height of OUTPUT_HEIGHTS.filter((h) => h < info.height)) {
    select.append(new Option(`${height}p`, String(height)));
  }
  select.value = [...select.options].some((option) => option.value === kept) ? kept : "";
  select.dataset.video = state.videoId;
}

el.render.addEventListener("click", async () => {
  try {
    const body = {
      video_id: state.videoId,
      mattes: el.exportMattes.checked,
      output_quality: el.outputQuality.value,
      output_height: el.outputHeight.value ? Number(el.outputHeight.value) : null,
    };
    trackRender(await api("/render", { method: "POST", body }));
  } catch (error) {
    toast(error.message);
  }
});

el.cancelRender.addEventListener("click", async () => {
  if (state.renderJob) await api(`/jobs/${state.renderJob}/cancel`, { method: "POST" }).catch((e) => toast(e.message));
});

function trackRender(job) {
  state.renderJob = job.id;
  updateRender(job);
  if (!job.state.match(/done|failed|cancelled/)) {
    followJob(job.id, updateRender).catch((error) => toast(error.message));
  }
}

function updateRender(job) {
  if (job.id !== state.renderJob) return;
  const running = job.state === "queued" || job.state === "running";
  el.renderProgress.hidden = !running && job.state !== "failed";
  el.cancelRender.hidden = !running;
  el.render.disabled = running || !state.analysed;
  setProgress(el.renderFill, el.renderPercent, job.progress, el.renderProgress);
  el.renderText.textContent = job.state === "queued" ? "Waiting…" : job.state === "failed" ? job.error
    : job.total ? `Rendering ${job.done}/${job.total}${timeLeft(job)}` : "Starting…";
  if (job.state === "failed") el.renderProgress.classList.add("failed");
  if (job.state === "cancelled") toast("Render cancelled.");
  el.download.hidden = job.state !== "done";
  el.downloadMattes.hidden = !(job.state === "done" && job.mattes_url);
  if (job.mattes_url) el.downloadMattes.href = job.mattes_url;
  if (job.state === "done") {
    el.download.href = job.download_url;
    el.render.textContent = "Render again";
  }
}

// ---------- start ----------

window.addEventListener("resize", drawHighlight);
const hash = new URLSearchParams(location.hash.slice(1));
const fromHash = hash.get("v");
if (fromHash) {
  openVideo(fromHash, Number(hash.get("f")) || 0).catch((error) => {
    history.replaceState(null, "", location.pathname);
    if (!(error instanceof ApiError && error.status === 404)) toast(error.message);
    listRecent();
  });
} else {
  listRecent();
}
