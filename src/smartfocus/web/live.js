// smartfocus live: send the camera over WebRTC, show the focused stream, click to focus.
"use strict";

const view = document.getElementById("view");
const statusLine = document.getElementById("status");
const statsLine = document.getElementById("stats");
const startButton = document.getElementById("start");
const resetButton = document.getElementById("reset");
const blurSlider = document.getElementById("blur");
const blurValue = document.getElementById("blur-value");
let session = null;
let pc = null;

function say(text) { statusLine.textContent = text; }

async function post(path, body) {
  const response = await fetch(`/live/${session}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(errorMessage(data));
  return data;
}

/** The server's `{"error": {"code", "message"}}` as one line. */
function errorMessage(data) {
  return data && data.error ? data.error.message : "the server refused the request";
}

async function start() {
  startButton.disabled = true;
  say("Connecting…");
  try {
    const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
    pc = new RTCPeerConnection();
    pc.addEventListener("track", (event) => { view.srcObject = event.streams[0] || new MediaStream([event.track]); });
    camera.getVideoTracks().forEach((track) => pc.addTrack(track, camera));
    await pc.setLocalDescription(await pc.createOffer());
    // aiortc does not trickle ICE: send the offer once every candidate is in it
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    });
    const response = await fetch("/live/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(errorMessage(answer));
    session = answer.session;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    resetButton.disabled = false;
    blurSlider.disabled = false;
    say("Live. Click a subject to focus.");
    setInterval(showStats, 1000);
  } catch (error) {
    say(`Could not start: ${error.message}`);
    startButton.disabled = false;
  }
}

// A click on the <video> in the pixels of the picture it shows. getBoundingClientRect and clientX are
// both in CSS pixels, so devicePixelRatio cancels out; object-fit: contain letterboxes the picture
// inside the element, so the offset and scale come from videoWidth/videoHeight, not the element box.
function pictureCoordinates(event) {
  const box = view.getBoundingClientRect();
  const width = view.videoWidth;
  const height = view.videoHeight;
  if (!width || !height) return null;
  const scale = Math.min(box.width / width, box.height / height);
  const left = box.left + (box.width - width * scale) / 2;
  const top = box.top + (box.height - height * scale) / 2;
  const x = (event.clientX - left) / scale;
  const y = (event.clientY - top) / scale;
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  return { x, y, width, height };
}

view.addEventListener("click", async (event) => {
  if (!session) return;
  const point = pictureCoordinates(event);
  if (!point) return;
  try {
    const chosen = await post("/select", point);
    say(`Focus on ${chosen.class_name} #${chosen.track_id}`);
  } catch (error) {
    say(error.message);
  }
});

resetButton.addEventListener("click", async () => {
  await post("/reset");
  say("Focus reset. Click a subject to focus.");
});

blurSlider.addEventListener("input", async () => {
  blurValue.textContent = `${Math.round(Number(blurSlider.value) * 100)}%`;  // the server takes 0..1
  if (session) await post("/blur", { strength: Number(blurSlider.value) });
});

async function showStats() {
  const response = await fetch(`/live/${session}/stats`);
  if (!response.ok) return;
  const stats = await response.json();
  const latency = stats.latency_ms_median == null ? "–" : `${stats.latency_ms_median.toFixed(0)} ms`;
  statsLine.textContent = `${stats.width}x${stats.height} · processed ${stats.processed} · dropped ${stats.dropped} · latency ${latency}`;
}

startButton.addEventListener("click", start);
window.addEventListener("beforeunload", () => { if (session) fetch(`/live/${session}`, { method: "DELETE", keepalive: true }); });
