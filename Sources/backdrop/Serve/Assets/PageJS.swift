// The page's script: upload with progress, options, live job progress over Server-Sent Events,
// previews, downloads, the job list, cancel and delete. Plain browser JavaScript, no libraries.
extension ServeAssets {
  static let script = #"""
"use strict";
const $ = (id) => document.getElementById(id);
const state = { file: null, job: null, events: null, imageURL: null, background: "green" };
// Every percent the progress events brought, in order (the page's own record; tests read it too).
window.backdropProgress = [];

function showError(text) { const e = $("error"); e.textContent = text; e.hidden = !text; }

async function api(path, options = {}) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

async function loadModels() {
  const select = $("model");
  try {
    const data = await api("/api/models");
    for (const model of data.models) {
      if (!model.present) continue;
      const option = new Option(model.name, model.name, model.name === data.default, model.name === data.default);
      select.add(option);
    }
  } catch (error) { showError(`Cannot list the models: ${error.message}`); }
  if (!select.options.length) select.add(new Option("selfie", "selfie"));
}

function pickFile(file) {
  state.file = file || null;
  const size = file && (file.size >= 1e6 ? `${(file.size / 1e6).toFixed(1)} MB` : `${Math.ceil(file.size / 1e3)} kB`);
  $("drop-text").textContent = file ? `${file.name} (${size})` : "Drop a video here or choose a file";
  updateStart();
}

function updateStart() {
  const outputs = $("out-webm").checked || $("out-mp4").checked;
  const needsImage = $("out-mp4").checked && $("background").value === "image" && !$("image").files.length;
  $("start").disabled = !state.file || !outputs || needsImage;
}

function backgroundChoice() {
  const kind = $("background").value;
  if (kind === "color") return `color:${$("color").value}`;
  return kind;
}

function upload(url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.responseType = "json";
    request.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve(request.response);
      else reject(new Error((request.response && request.response.error) || `${request.status} ${request.statusText}`));
    };
    request.onerror = () => reject(new Error("the upload failed: the server closed the connection"));
    request.send(body);
  });
}

async function start() {
  showError("");
  $("start").disabled = true;
  window.backdropProgress = [];
  try {
    const outputs = [$("out-webm").checked ? "webm" : null, $("out-mp4").checked ? "mp4" : null].filter(Boolean);
    const params = new URLSearchParams({ name: state.file.name, model: $("model").value, matte: $("matte").value,
      outputs: outputs.join(","), background: backgroundChoice() });
    state.background = backgroundChoice();
    if (state.imageURL) { URL.revokeObjectURL(state.imageURL); state.imageURL = null; }
    if (outputs.includes("mp4") && $("background").value === "image") {
      const image = $("image").files[0];
      const stored = await upload(`/api/images?name=${encodeURIComponent(image.name)}`, image, () => {});
      params.set("image", stored.image);
      state.imageURL = URL.createObjectURL(image);
    }
    showCurrent({ name: state.file.name, state: "uploading", percent: 0 });
    const job = await upload(`/api/jobs?${params}`, state.file, (fraction) => {
      $("state").textContent = `uploading ${(fraction * 100).toFixed(0)} %`;
    });
    follow(job);
  } catch (error) {
    showError(error.message);
    $("current").hidden = true;
  } finally {
    updateStart();
    refreshJobs();
  }
}

function showCurrent(job) {
  $("current").hidden = false;
  $("current-title").textContent = job.name;
  const percent = Math.max(0, Math.min(100, job.percent || 0));
  $("bar-fill").style.width = `${percent}%`;
  $("percent").textContent = `${percent.toFixed(1)} %`;
  $("frames").textContent = job.frames ? `frame ${job.frames}${job.total_frames ? "/" + job.total_frames : ""}` : "";
  $("fps").textContent = job.fps ? `${job.fps.toFixed(1)} fps` : "";
  $("eta").textContent = job.state === "running" && job.eta_s != null ? `ETA ${formatTime(job.eta_s)}` : "";
  let text = job.state;
  if (job.state === "queued") text = `queued (${job.queue_position ? job.queue_position + " ahead" : "next"})`;
  if (job.message) text += `: ${job.message}`;
  $("state").textContent = text;
  $("state").className = `state-${job.state}`;
  $("cancel").hidden = !["queued", "running"].includes(job.state);
}

function formatTime(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function follow(job) {
  if (state.events) state.events.close();
  state.job = job;
  $("results").hidden = true;
  showCurrent(job);
  const events = new EventSource(`/api/jobs/${job.id}/events`);
  state.events = events;
  events.addEventListener("progress", (event) => {
    const update = JSON.parse(event.data);
    state.job = update;
    window.backdropProgress.push(update.percent);
    showCurrent(update);
  });
  events.addEventListener("end", (event) => {
    events.close();
    const update = JSON.parse(event.data);
    state.job = update;
    showCurrent(update);
    if (update.state === "done") showResults(update);
    refreshJobs();
  });
}

function showResults(job) {
  const has = (kind) => job.outputs.includes(kind);
  const url = (kind) => `/api/jobs/${job.id}/files/${kind}`;
  $("results").hidden = false;
  $("fig-checker").hidden = !has("webm");
  $("fig-backdrop").hidden = !has("webm") || job.options.background.startsWith("blur");
  $("fig-mp4").hidden = !has("mp4");
  if (has("webm")) {
    $("preview-alpha").src = url("webm");
    $("preview-over").src = url("webm");
    const stage = $("backdrop-stage");
    const background = job.options.background;
    stage.style.backgroundImage = "";
    stage.style.backgroundColor = background.startsWith("color:") ? background.slice(6) : "#00ff00";
    if (background === "image" && state.imageURL) stage.style.backgroundImage = `url("${state.imageURL}")`;
    $("preview-alpha").play().catch(() => {});
    $("preview-over").play().catch(() => {});
  }
  if (has("mp4")) { $("preview-mp4").src = url("mp4"); $("preview-mp4").play().catch(() => {}); }
  for (const kind of ["webm", "mp4"]) {
    const link = $(`download-${kind}`);
    link.hidden = !has(kind);
    link.href = `${url(kind)}?download=1`;
  }
}

async function refreshJobs() {
  let data;
  try { data = await api("/api/jobs"); } catch (_) { return; }
  const body = $("jobs").tBodies[0];
  body.replaceChildren();
  $("no-jobs").hidden = data.jobs.length > 0;
  for (const job of data.jobs) {
    const row = body.insertRow();
    row.dataset.id = job.id;
    const name = row.insertCell(); name.className = "name"; name.textContent = job.name; name.title = job.name;
    const status = row.insertCell(); status.textContent = job.state; status.className = `state-${job.state}`;
    if (job.message) status.title = job.message;
    row.insertCell().textContent = `${(job.percent || 0).toFixed(0)} %`;
    const files = row.insertCell();
    for (const kind of job.outputs) {
      const link = document.createElement("a");
      link.href = `/api/jobs/${job.id}/files/${kind}?download=1`;
      link.download = "";  // a download, not a navigation: a second click cannot cancel the first
      link.textContent = kind.toUpperCase();
      files.append(link);
    }
    const actions = row.insertCell();
    const open = button("Show", () => { follow(job); });
    const active = ["queued", "running"].includes(job.state);
    const remove = button(active ? "Cancel" : "Delete", async () => {
      try {
        if (active) await api(`/api/jobs/${job.id}/cancel`, { method: "POST" });
        else await api(`/api/jobs/${job.id}`, { method: "DELETE" }).catch((e) => { if (!/JSON|Unexpected/.test(e.message)) throw e; });
      } catch (error) { showError(error.message); }
      refreshJobs();
    });
    actions.append(open, " ", remove);
  }
}

function button(text, action) {
  const b = document.createElement("button");
  b.className = "secondary small";
  b.textContent = text;
  b.addEventListener("click", action);
  return b;
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", () => pickFile($("file").files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) pickFile(event.dataTransfer.files[0]);
  });
  $("background").addEventListener("change", () => {
    $("color-row").hidden = $("background").value !== "color";
    $("image-row").hidden = $("background").value !== "image";
    updateStart();
  });
  for (const id of ["out-webm", "out-mp4", "image"]) $(id).addEventListener("change", updateStart);
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", async () => {
    if (!state.job) return;
    try { await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" }); } catch (error) { showError(error.message); }
  });
  loadModels();
  refreshJobs();
  setInterval(refreshJobs, 3000);
}

document.addEventListener("DOMContentLoaded", init);
"""#
}
