"""The job store loses nothing: a server killed with SIGKILL mid-scan, then restarted, finishes
every job exactly once."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

from serve_helpers import API, ServerProcess, worker_processes


@pytest.mark.slow
def test_sigkill_mid_scan_then_restart_finishes_every_job_once(shared_dir, tmp_path):
    videos = [shared_dir / "data/ffpp-videos/real/004.mp4", shared_dir / "data/ffpp-videos/fake/004_982.mp4",
              shared_dir / "data/ffpp-videos/fake/519_515.mp4", shared_dir / "data/ciplab-faces/real/0.jpg"]
    data = tmp_path / "data"
    server = ServerProcess(data, "--frames", "32").start()
    ids = [server.submit(path).json()["id"] for path in videos]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the first job is part-way through its frames
        first = server.job(ids[0])
        if first["state"] == "running" and first["progress"]["frames_done"] > 0:
            break
        time.sleep(0.02)
    assert first["state"] == "running" and first["progress"]["frames_done"] < first["progress"]["frames_total"]
    workers = worker_processes(data)
    assert len(workers) == 1
    server.kill()

    deadline = time.monotonic() + 10
    while worker_processes(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_processes(data) == []  # the worker died with its server: no orphan scanning on
    with sqlite3.connect(data / "jobs.sqlite3") as db:
        states = dict(db.execute("SELECT id, state FROM jobs").fetchall())
    assert states[ids[0]] == "running" and all(states[i] == "queued" for i in ids[1:])

    restarted = ServerProcess(data, "--frames", "32", port=server.port).start()
    try:
        finished = [restarted.wait(job_id) for job_id in ids]
        listed = restarted.get(f"{API}/jobs").json()
    finally:
        restarted.stop()
    assert [job["state"] for job in finished] == ["done"] * len(ids)
    assert [job["status"] for job in finished] == ["ok"] * len(ids)
    assert finished[0]["attempts"] == 2 and [job["attempts"] for job in finished[1:]] == [1] * (len(ids) - 1)
    assert listed["total"] == len(ids) and sorted(job["id"] for job in listed["jobs"]) == sorted(ids)
    for job_id, job in zip(ids, finished):
        folder = data / "jobs" / job_id
        result = json.loads((folder / "result.json").read_text())
        assert len(result["results"]) == 1 and result["results"][0]["frames_analysed"] == job["progress"]["frames_total"]
        assert not list(folder.glob("run-*")) and not list(folder.glob("*.part"))  # nothing half-written left
    # the interrupted job's result is the same as an uninterrupted scan's
    from fakescope.scan.scanner import Scanner, ScanSettings

    again = Scanner(ScanSettings(frames=32)).scan_file(videos[0])
    assert finished[0]["score"] == pytest.approx(again.score, abs=1e-6)
