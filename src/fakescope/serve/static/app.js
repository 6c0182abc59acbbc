// fakescope's page: uploads with progress, job polling, the result view, past jobs.
// Plain JS, no build step and no CDN. The result view is HTML the server renders with the
// same code as the HTML report (GET /api/v1/jobs/{id}/view), so page and report never differ.
"use strict";

const API = "/api/v1";
const POLL_MS = 700;
const $ = (selector) => document.querySelector(selector);
let shownJob = null;        // the job whose result is on screen
let userChoseJob = false;   // once someone clicks a past job, new results do not replace it
let jobsTimer = null;       // the pending refresh of the past-jobs list

function text(value) {
  const span = document.createElement("span");
  span.textContent = value == null ? "" : String(value);
  return span.innerHTML;
}

function badge(job) {
  if (job.state === "done" && job.verdict) {
    return `<span class="v ${text(job.verdict)}">${text(job.verdict.toUpperCase())}</span>`;
  }
  const label = job.state === "done" || job.state === "failed" ? job.status : job.state;
  return `<span class="v none">${text(label)}</span>`;
}

async function call(path, options = {}) {
  const response = await fetch(API + path, { credentials: "same-origin", ...options });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}

// ------------------------------------------------------------------ uploads

function uploadRow(file) {
  const row = document.createElement("div");
  row.className = "upload";
  row.innerHTML = `<span class="name">${text(file.name)}</span><progress max="1" value="0"></progress>` +
    `<span class="state muted">uploading</span><span class="verdict"></span>`;
  $("#uploads").prepend(row);
  return row;
}

function upload(file) {
  const row = uploadRow(file);
  const bar = row.querySelector("progress");
  const state = row.querySelector(".state");
  const form = new FormData();
  form.append("file", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", API + "/jobs");
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      bar.value = event.loaded / event.total;
      state.textContent = `uploading ${Math.round(100 * event.loaded / event.total)}%`;
    }
  };
  request.onload = () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
    if (request.status !== 201) {
      row.classList.add("failed");
      state.innerHTML = `<span class="error">refused: ${text(body.detail || request.statusText)}</span>`;
      return;
    }
    row.dataset.job = body.id;
    follow(body.id, row);
    refreshJobs();
  };
  request.onerror = () => { state.innerHTML = '<span class="error">upload failed (connection)</span>'; };
  request.send(form);
}

function follow(id, row) {
  const bar = row.querySelector("progress");
  const state = row.querySelector(".state");
  const tick = async () => {
    let job;
    try { job = await (await call(`/jobs/${id}`)).json(); } catch (error) {
      state.innerHTML = `<span class="error">${text(error.message)}</span>`;
      return;
    }
    const { frames_done: done, frames_total: total } = job.progress;
    if (job.state === "queued") {
      bar.removeAttribute("value");
      state.textContent = "queued";
    } else if (job.state === "running") {
      bar.value = total ? done / total : 0;
      state.textContent = total ? `scanning: ${done} / ${total} frames` : "scanning";
    } else {
      bar.value = 1;
      state.textContent = job.state === "done" && job.status === "ok"
        ? `P(fake) ${job.score.toFixed(3)}` : (job.message || job.status);
      row.querySelector(".verdict").innerHTML = badge(job);
      row.classList.add("finished");
      row.onclick = () => { userChoseJob = true; show(job); };
      row.style.cursor = "pointer";
      refreshJobs();
      if (!userChoseJob) show(job);
      return;
    }
    setTimeout(tick, POLL_MS);
  };
  tick();
}

// ------------------------------------------------------------------ the result

async function show(job) {
  shownJob = job.id;
  const box = $("#result-box");
  box.hidden = false;
  $("#result-json").href = `${API}/jobs/${job.id}/result`;
  $("#result-report").href = `${API}/jobs/${job.id}/report`;
  if (job.state !== "done") {
    $("#result").innerHTML = `<h2>${text(job.filename)}</h2><p>${badge(job)} ${text(job.message || job.state)}</p>`;
  } else {
    try {
      $("#result").innerHTML = await (await call(`/jobs/${job.id}/view`)).text();
    } catch (error) {
      $("#result").innerHTML = `<p class="error">${text(error.message)}</p>`;
    }
  }
  document.querySelectorAll("#jobs tbody tr").forEach((tr) => tr.classList.toggle("shown", tr.dataset.job === job.id));
}

$("#result-delete").onclick = async () => {
  if (!shownJob || !confirm("Delete this job, its upload and its result?")) return;
  try { await call(`/jobs/${shownJob}`, { method: "DELETE" }); } catch (error) { alert(error.message); return; }
  $("#result-box").hidden = true;
  document.querySelectorAll(`.upload[data-job="${shownJob}"]`).forEach((row) => row.remove());
  shownJob = null;
  refreshJobs();
};

// ------------------------------------------------------------------ past jobs

async function refreshJobs() {
  let list;
  try { list = await (await call("/jobs?limit=100")).json(); } catch (error) {
    $("#service").innerHTML = `<span class="error">${text(error.message)}</span>`;
    return;
  }
  const body = $("#jobs tbody");
  body.innerHTML = "";
  for (const job of list.jobs) {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    const score = job.score == null ? "" : job.score.toFixed(3);
    tr.innerHTML = `<td>${text(job.filename)}</td><td>${text(job.state)}</td><td>${badge(job)}</td>` +
      `<td>${score}</td><td>${text(new Date(job.created).toLocaleString())}</td>`;
    tr.classList.toggle("shown", job.id === shownJob);
    tr.onclick = () => { userChoseJob = true; show(job); };
    body.append(tr);
  }
  $("#no-jobs").hidden = list.jobs.length > 0;
  // jobs still queued or running (from another tab, or before a reload): look again soon
  if (!jobsTimer && list.jobs.some((job) => job.state === "queued" || job.state === "running")) {
    jobsTimer = setTimeout(() => { jobsTimer = null; refreshJobs(); }, 2000);
  }
}

async function describeService() {
  try {
    const health = await (await call("/health")).json();
    $("#service").textContent = `model ${health.model}, ${health.frames} frames a video, ` +
      `uploads up to ${health.limits.max_upload_mb} MB, ${health.workers} worker(s); ` +
      `${health.queue.waiting} job(s) waiting. fakescope ${health.version}.`;
  } catch (error) {
    $("#service").innerHTML = `<span class="error">${text(error.message)}</span>`;
  }
}

// ------------------------------------------------------------------ drag and drop

const drop = $("#drop");
["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
  event.preventDefault();
  drop.classList.add("over");
}));
["dragleave", "drop"].forEach((name) => drop.addEventListener(name, (event) => {
  event.preventDefault();
  drop.classList.remove("over");
}));
drop.addEventListener("drop", (event) => [...event.dataTransfer.files].forEach(upload));
$("#file-input").addEventListener("change", (event) => {
  [...event.target.files].forEach(upload);
  event.target.value = "";
});

describeService();
refreshJobs();
