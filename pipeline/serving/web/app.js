// Multilogue's page: upload a clip, watch its sentiment and emotions beside the video.
// No framework and no build step: the charts are SVG drawn here; everything talks to the same server's /api.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const state = { limits: null, history: [], current: null, busy: false };
const AUDIO_TYPES = [".wav", ".mp3", ".flac", ".m4a", ".ogg"];  // clips without a video stream, by their extension

// ------------------------------------------------------------------ helpers
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function fmt(x, digits = 2, sign = false) {
  if (x === null || x === undefined) return "–";
  const s = Number(x).toFixed(digits);
  return sign && Number(s) > 0 ? "+" + s : s;
}

function suffix(name) {
  const i = name.lastIndexOf(".");
  return i < 0 ? "" : name.slice(i).toLowerCase();
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function stem(name) {
  const i = name.lastIndexOf(".");
  return i > 0 ? name.slice(0, i) : name;
}

// emotion probabilities to draw: the 7-way model's, else the per-emotion models'
// what each modality says (7-way emotion models): words, voice, face, each {emotion, probs}
const READINGS = ["words", "voice", "face"];

function readingText(r) {
  return r ? `${r.emotion} ${fmt(r.probs[r.emotion])}` : "–";
}

function readingsOf(res) {
  return READINGS.filter((k) => res.utterances.some((u) => u.readings && u.readings[k]));
}

function bands(u) {
  return u.emotion_probs || u.emotions || {};
}

// ------------------------------------------------------------------ messages and progress
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function showProgress(text, percent) {
  $("progress").hidden = text === null;
  $("stage").textContent = text || "";
  const bar = $("bar");
  if (percent === null || percent === undefined) bar.removeAttribute("value");  // indeterminate
  else bar.value = percent;
}

// ------------------------------------------------------------------ models
async function loadModels() {
  try {
    const res = await fetch("/api/models");
    const info = await res.json();
    state.limits = info.limits;
    const names = info.models.map((m) => m.name).join(", ");
    $("models").textContent = `${info.models.length} model${info.models.length === 1 ? "" : "s"} loaded (${names}) from ` +
      `${info.checkpoint}; clips up to ${info.limits.max_upload_mb} MB.`;
    $("clip").setAttribute("accept", ["video/*", "audio/*", ...info.limits.clip_types].join(","));
  } catch (e) {
    $("models").textContent = "could not reach the server's /api/models: is it running?";
  }
}

// The server checks all of this too; checking here saves uploading a file that would be refused.
function checkFiles(clip, transcript) {
  if (!clip) return "choose a clip first";
  const limits = state.limits;
  if (clip.size === 0) return `${clip.name}: the file is empty (0 bytes); choose the clip again`;
  if (limits && !limits.clip_types.includes(suffix(clip.name)))
    return `${clip.name}: not a video or audio file by its extension; upload one of ${limits.clip_types.join(" ")}`;
  if (limits && clip.size > limits.max_upload_mb * 1048576)
    return `${clip.name}: ${(clip.size / 1048576).toFixed(1)} MB is over the server's limit of ${limits.max_upload_mb} MB; ` +
      "cut or compress the clip, or start the server with a larger --max-upload-mb";
  if (transcript && limits && !limits.transcript_types.includes(suffix(transcript.name)))
    return `${transcript.name}: not a transcript by its extension; use one of ${limits.transcript_types.join(" ")}, or none`;
  if (transcript && transcript.size === 0) return `${transcript.name}: the transcript is empty (0 bytes); choose it again, or none`;
  return null;
}

// ------------------------------------------------------------------ upload
function upload(event) {
  event.preventDefault();
  if (state.busy) return;
  const clip = $("clip").files[0];
  const transcript = $("transcript").files[0];
  const problem = checkFiles(clip, transcript);
  if (problem) { showError(problem); return; }
  showError("");
  const form = new FormData();
  form.append("clip", clip, clip.name);
  if (transcript) form.append("transcript", transcript, transcript.name);

  const xhr = new XMLHttpRequest();
  const started = performance.now();
  let timer = null;
  state.busy = true;
  $("submit").disabled = true;
  showProgress(`uploading ${clip.name}…`, 0);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) showProgress(`uploading ${clip.name}: ${Math.round((100 * e.loaded) / e.total)}%`, (100 * e.loaded) / e.total);
  };
  xhr.upload.onload = () => {
    let queue = "";
    const analysing = () => {
      const seconds = Math.round((performance.now() - started) / 1000);
      if (state.busy) showProgress(`analysing ${clip.name}: transcribing, extracting features, running the models… ${seconds} s${queue}`, null);
    };
    const tick = async () => {
      analysing();
      try {
        const h = await (await fetch("/api/health")).json();
        const n = h.queue.running + h.queue.waiting;
        queue = n > h.queue.workers ? ` (the server has ${n} clips in hand, this one included; ${h.queue.workers} at a time)` : "";
      } catch (e) { /* the result will say what happened */ }
    };
    tick();
    timer = setInterval(tick, 1000);
  };
  const finish = () => {
    clearInterval(timer);
    state.busy = false;
    $("submit").disabled = false;
    showProgress(null);
  };
  xhr.onload = () => {
    finish();
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status === 200 && body) {
      // raw: the server's own JSON text, posted back for the CSV (JSON.stringify would write 0.0 as 0)
      const entry = { name: clip.name, result: body, raw: xhr.responseText, file: clip, url: URL.createObjectURL(clip), when: new Date() };
      state.history.unshift(entry);
      show(entry);
      renderHistory();
    } else {
      const detail = body && body.detail ? body.detail : `the server answered ${xhr.status} ${xhr.statusText}`;
      showError(detail);
    }
  };
  xhr.onerror = () => { finish(); showError("the upload failed: the connection to the server was lost (is it still running?)"); };
  xhr.open("POST", "/api/predict");
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(form);
}

// ------------------------------------------------------------------ the result
function clipEnd(r) {
  return Math.max(r.duration || 0, 1, ...r.utterances.map((u) => u.end));
}

function show(entry) {
  state.current = entry;
  const r = entry.result;
  $("result").hidden = false;
  $("title").textContent = r.clip;
  $("meta").textContent = `${fmt(r.duration, 1)} s · ${r.utterances.length} utterance${r.utterances.length === 1 ? "" : "s"} · text from ` +
    `${r.transcript || "the whole clip"}` + (r.speakers ? ` · speakers: ${r.speakers}` : "");
  loadMedia(entry);
  drawTimeline(r);
  drawBands(r);
  drawTable(r);
  moveCursor(0);
}

function timelineValues(r) {
  const u = r.utterances;
  if (u.length && u.every((x) => x.sentiment !== null && x.sentiment !== undefined))
    return { values: u.map((x) => x.sentiment), lo: -3, hi: 3, zero: 0, label: "sentiment" };
  if (u.length && u.every((x) => x.positive_prob !== null && x.positive_prob !== undefined))
    return { values: u.map((x) => x.positive_prob), lo: 0, hi: 1, zero: 0.5, label: "P(positive)" };
  return { values: u.map(() => null), lo: -1, hi: 1, zero: 0, label: "utterances" };
}

function utteranceTitle(u) {
  const emo = Object.entries(bands(u)).map(([k, p]) => `${k} ${fmt(p)}`).join(", ");
  const said = READINGS.filter((k) => u.readings && u.readings[k]).map((k) => `${k}: ${readingText(u.readings[k])}`).join(", ");
  return `${fmt(u.start)}–${fmt(u.end)} s  ${u.speaker}: ${u.text}\nsentiment ${fmt(u.sentiment, 2, true)} (${u.label || "–"})` +
    (said ? `\n${said}` : "") + (emo ? `\n${emo}` : "") + (u.uncertain ? `\nuncertain: ${u.uncertain_why}` : "");
}

function seek(i) {
  const u = state.current.result.utterances[i];
  const player = $("player");
  player.currentTime = u.start;
  moveCursor(u.start);
}

function drawTimeline(r) {
  const svg = $("timeline");
  svg.replaceChildren();
  const W = svg.clientWidth || 800, H = 150, pad = 6;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const end = clipEnd(r);
  const { values, lo, hi, zero, label } = timelineValues(r);
  $("sentiment-label").textContent = label;
  const y = (v) => pad + ((hi - v) / (hi - lo)) * (H - 2 * pad);
  const x = (t) => (t / end) * W;
  for (const v of [lo, zero, hi]) {
    svg.append(svgEl("line", { x1: 0, x2: W, y1: y(v), y2: y(v), class: v === zero ? "zero" : "grid" }));
    const t = svgEl("text", { x: -6, y: y(v) + 3, "text-anchor": "end", class: "tick" });
    t.textContent = label === "sentiment" ? fmt(v, 0, true) : fmt(v, 1);
    svg.append(t);
  }
  r.utterances.forEach((u, i) => {
    const v = values[i];
    const top = v === null ? y(zero) - 8 : Math.min(y(v), y(zero));
    const height = v === null ? 16 : Math.max(2, Math.abs(y(v) - y(zero)));
    const cls = "utt " + (u.label || (v === null ? "neutral" : v >= zero ? "positive" : "negative"));
    const rect = svgEl("rect", { x: x(u.start), y: top, width: Math.max(2, x(u.end) - x(u.start)), height, class: cls, "data-index": i });
    const title = svgEl("title");
    title.textContent = utteranceTitle(u);
    rect.append(title);
    rect.addEventListener("click", () => seek(i));
    svg.append(rect);
  });
  drawSpeakers(svg, r, x, H, W);
  svg.append(svgEl("line", { class: "cursor", id: "cursor", x1: 0, x2: 0, y1: 0, y2: H }));
}

// One colour per speaker, in order of first appearance (green and red stay for sentiment): as predict's plot.
const SPEAKER_COLOURS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

function speakerColours(r) {
  const out = new Map();
  for (const u of r.utterances) if (!out.has(u.speaker)) out.set(u.speaker, SPEAKER_COLOURS[out.size % SPEAKER_COLOURS.length]);
  return out;
}

// Who speaks when: with several speakers, a lane along the timeline's foot and a legend in its top right corner.
function drawSpeakers(svg, r, x, H, W) {
  const colours = speakerColours(r);
  if (colours.size < 2) return;
  r.utterances.forEach((u, i) => {
    const rect = svgEl("rect", { x: x(u.start), y: H - 5, width: Math.max(2, x(u.end) - x(u.start)), height: 5, fill: colours.get(u.speaker),
      class: "speaker-lane", "data-speaker": u.speaker, "data-index": i });
    const title = svgEl("title");
    title.textContent = `${u.speaker}: ${fmt(u.start)}–${fmt(u.end)} s`;
    rect.append(title);
    svg.append(rect);
  });
  let right = W - 4;
  for (const [name, colour] of [...colours.entries()].reverse()) {
    const label = svgEl("text", { x: right, y: 11, "text-anchor": "end", class: "tick speaker-legend" });
    label.textContent = name;
    right -= 7 * name.length + 4;
    svg.append(label, svgEl("rect", { x: right - 9, y: 3, width: 9, height: 9, fill: colour, class: "speaker-key" }));
    right -= 16;
  }
}

function drawBands(r) {
  const svg = $("bands");
  svg.replaceChildren();
  const labels = $("band-labels");
  labels.replaceChildren();
  const names = r.utterances.length ? Object.keys(bands(r.utterances[0])) : [];
  const said = readingsOf(r);
  svg.parentElement.hidden = names.length === 0;
  if (!names.length) return;
  const W = svg.clientWidth || 800, row = 18, axis = 16, H = (said.length + names.length) * row + axis;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("height", H);
  const end = clipEnd(r);
  const x = (t) => (t / end) * W;
  // one row per modality's reading (its emotion, shaded by its probability), then the fused probabilities
  said.forEach((key, k) => {
    labels.append(el("div", { class: "band-label reading" }, key));
    r.utterances.forEach((u, i) => {
      const reading = u.readings && u.readings[key];
      if (!reading) return;
      const p = reading.probs[reading.emotion];
      const w = Math.max(2, x(u.end) - x(u.start));
      const rect = svgEl("rect", { x: x(u.start), y: k * row + 1, width: w, height: row - 2, class: "band reading",
        "fill-opacity": (0.06 + 0.94 * p).toFixed(3), "data-index": i });
      const title = svgEl("title");
      title.textContent = `${key} says ${readingText(reading)} — ${u.speaker}: ${u.text}`;
      rect.append(title);
      rect.addEventListener("click", () => seek(i));
      const label = svgEl("text", { x: x(u.start) + 3, y: k * row + row - 5, class: "reading-text" + (p > 0.55 ? " on-dark" : "") });
      label.textContent = w > 40 ? reading.emotion : "";
      svg.append(rect, label);
    });
  });
  names.forEach((name, j) => {
    const k = j + said.length;
    labels.append(el("div", { class: "band-label" }, name));
    r.utterances.forEach((u, i) => {
      const p = bands(u)[name] ?? 0;
      const rect = svgEl("rect", { x: x(u.start), y: k * row + 1, width: Math.max(2, x(u.end) - x(u.start)), height: row - 2,
        class: "band", "fill-opacity": (0.06 + 0.94 * p).toFixed(3), "data-index": i });
      const title = svgEl("title");
      title.textContent = `${name} ${fmt(p)}${u.uncertain ? " (uncertain: " + u.uncertain_why + ")" : ""} — ${u.speaker}: ${u.text}`;
      rect.append(title);
      rect.addEventListener("click", () => seek(i));
      svg.append(rect);
    });
  });
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => end / s <= 12) || 600;
  for (let t = 0; t <= end + 1e-9; t += step) {
    const label = svgEl("text", { x: Math.min(x(t) + 2, W - 24), y: H - 3, class: "tick" });
    label.textContent = `${t} s`;
    svg.append(label, svgEl("line", { x1: x(t), x2: x(t), y1: H - axis, y2: H - axis + 4, class: "grid" }));
  }
  labels.append(el("div", { class: "band-label axis" }, ""));
  svg.append(svgEl("line", { class: "cursor", id: "band-cursor", x1: 0, x2: 0, y1: 0, y2: H - axis }));
}

function tableColumns(r) {
  const has = (key) => r.utterances.some((u) => u[key] !== null && u[key] !== undefined);
  const cols = ["start", "end", "speaker", "text"];
  if (has("sentiment")) cols.push("sentiment");
  if (has("label")) cols.push("label");
  if (has("positive_prob")) cols.push("positive_prob");
  cols.push(...readingsOf(r));
  if (has("emotion")) cols.push("emotion");
  const emotions = r.utterances.length ? Object.keys(r.utterances[0].emotions || {}) : [];
  return cols.concat(emotions.map((e) => "emotions." + e));
}

function cell(u, col) {
  if (col.startsWith("emotions.")) return fmt(u.emotions[col.slice(9)]);
  if (READINGS.includes(col)) return readingText(u.readings && u.readings[col]);
  if (col === "emotion") return u.emotion_probs ? `${u.emotion} ${fmt(u.emotion_probs[u.emotion])}${u.uncertain ? " ?" : ""}` : u.emotion;
  if (col === "sentiment") return fmt(u.sentiment, 2, true);
  if (col === "start" || col === "end" || col === "positive_prob") return fmt(u[col]);
  return u[col] === null || u[col] === undefined ? "–" : String(u[col]);
}

function drawTable(r) {
  const cols = tableColumns(r);
  const head = el("tr");
  for (const c of cols) head.append(el("th", { scope: "col" }, c.replace("emotions.", "")));
  $("utterances").tHead.replaceChildren(head);
  const body = $("utterances").tBodies[0];
  body.replaceChildren();
  r.utterances.forEach((u, i) => {
    const tr = el("tr", { "data-index": i, tabindex: 0, class: u.label || "" });
    for (const c of cols) {
      const td = el("td", { class: "col-" + c.replace("emotions.", "emo-") }, cell(u, c));
      if (c === "emotion" && u.uncertain) td.title = "uncertain: " + u.uncertain_why;
      tr.append(td);
    }
    tr.addEventListener("click", () => seek(i));
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") seek(i); });
    body.append(tr);
  });
}

// the cursor follows playback; the utterance being spoken is highlighted
function moveCursor(t) {
  const r = state.current && state.current.result;
  if (!r) return;
  const end = clipEnd(r);
  for (const id of ["cursor", "band-cursor"]) {
    const line = $(id);
    if (!line) continue;
    const W = line.ownerSVGElement.viewBox.baseVal.width;
    const x = Math.min(W - 1, Math.max(1, (t / end) * W));
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }
  const now = r.utterances.findIndex((u) => t >= u.start && t < u.end);
  for (const node of document.querySelectorAll("[data-index]")) {
    node.classList.toggle("current", Number(node.dataset.index) === now);
  }
}

function followPlayback() {
  const player = $("player");
  moveCursor(player.currentTime);
  if (!player.paused && !player.ended) requestAnimationFrame(followPlayback);
}

// ------------------------------------------------------------------ playing the clip
// The original file plays when the browser can. When it cannot (an error, as for .flv or MPEG-1; or a video track it
// cannot decode, as MPEG-4 Part 2 or HEVC in an mp4, which plays as sound behind a black box: videoWidth stays 0),
// the server converts it to WebM (/api/preview), once per clip; its answer is audio/webm when the clip has no video.
function playerNote(text) {
  const note = $("player-note");
  note.textContent = text || "";
  note.hidden = !text;
}

function loadMedia(entry) {
  const player = $("player");
  player.classList.toggle("no-video", Boolean(entry.audioOnly));
  playerNote(entry.audioOnly ? `${entry.name} has no video: only its sound plays.` :
    entry.preview ? `This browser cannot play ${entry.name} as it is: this is a WebM copy the server made with ffmpeg.` : "");
  player.src = entry.preview || entry.url;
}

async function requestPreview(entry, why) {
  if (entry.preview || entry.previewing || !entry.file) return;
  entry.previewing = true;
  if (state.current === entry) playerNote(`${why}; the server is converting it for the page…`);
  const form = new FormData();
  form.append("clip", entry.file, entry.file.name);
  try {
    const res = await fetch("/api/preview", { method: "POST", body: form });
    if (!res.ok) {
      let detail = `the server answered ${res.status}`;
      try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
      entry.previewFailed = `${why}, and the server could not convert it: ${detail}`;
      if (state.current === entry) playerNote(entry.previewFailed);
      return;
    }
    entry.audioOnly = (res.headers.get("Content-Type") || "").startsWith("audio/");
    entry.preview = URL.createObjectURL(await res.blob());
    if (state.current === entry) loadMedia(entry);
  } catch (e) {
    if (state.current === entry) playerNote(`${why}, and the connection to the server was lost`);
  } finally {
    entry.previewing = false;
  }
}

function checkPlayable() {
  const entry = state.current;
  const player = $("player");
  if (!entry || entry.preview || entry.previewFailed || player.videoWidth > 0) return;
  if (AUDIO_TYPES.includes(suffix(entry.name))) {
    entry.audioOnly = true;
    player.classList.add("no-video");
    playerNote(`${entry.name} has no video: only its sound plays.`);
    return;
  }
  requestPreview(entry, `This browser plays only the sound of ${entry.name}`);  // the server knows whether it has video
}

// ------------------------------------------------------------------ history and downloads
function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  $("history-section").hidden = state.history.length === 0;
  state.history.forEach((entry) => {
    const r = entry.result;
    const item = el("li");
    const button = el("button", { type: "button", class: entry === state.current ? "link active" : "link" }, entry.name);
    button.addEventListener("click", () => { show(entry); renderHistory(); });
    item.append(button, el("span", { class: "muted" },
      ` ${entry.when.toLocaleTimeString()} · ${r.utterances.length} utterance${r.utterances.length === 1 ? "" : "s"}`));
    list.append(item);
  });
}

function downloadJson() {
  const r = state.current.result;
  save(new Blob([JSON.stringify(r, null, 2) + "\n"], { type: "application/json" }), stem(r.clip) + ".json");
}

async function downloadCsv() {
  const r = state.current.result;
  const body = state.current.raw || JSON.stringify(r);
  const res = await fetch("/api/csv", { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (!res.ok) { showError(`could not make the CSV: the server answered ${res.status}`); return; }
  save(await res.blob(), stem(r.clip) + ".csv");
}

// ------------------------------------------------------------------ wiring
document.addEventListener("DOMContentLoaded", () => {
  loadModels();
  $("form").addEventListener("submit", upload);
  $("download-json").addEventListener("click", downloadJson);
  $("download-csv").addEventListener("click", downloadCsv);
  const player = $("player");
  player.addEventListener("play", () => requestAnimationFrame(followPlayback));
  player.addEventListener("timeupdate", () => moveCursor(player.currentTime));
  player.addEventListener("seeked", () => moveCursor(player.currentTime));
  player.addEventListener("loadedmetadata", checkPlayable);
  player.addEventListener("error", () => {
    const entry = state.current;
    if (!entry || !player.getAttribute("src")) return;
    if (entry.preview || entry.previewFailed)
      playerNote(entry.previewFailed || "This browser cannot play the server's copy either; the charts and the table below are still its result.");
    else requestPreview(entry, `This browser cannot play ${entry.name}`);
  });
  let width = 0;
  new ResizeObserver(() => {
    const w = $("timeline").clientWidth;
    if (state.current && w !== width) { width = w; drawTimeline(state.current.result); drawBands(state.current.result); moveCursor(player.currentTime); }
  }).observe($("result"));
});
