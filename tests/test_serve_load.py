"""A bounded load test: 30 uploads at once against 127.0.0.1, two workers; every one completes,
each job is run once, and the results are each file's own. (benchmarks/serve_load.py times it.)"""
from __future__ import annotations

import pytest

from serve_helpers import API, ServerProcess, run_load


@pytest.mark.slow
def test_thirty_concurrent_uploads_all_complete(shared_dir, tmp_path):
    images = sorted((shared_dir / "data/ciplab-faces/real").glob("*.jpg"))[:15]
    videos = [shared_dir / "data/ffpp-videos/real/004.mp4"] * 15
    files = [p for pair in zip(images, videos) for p in pair]
    with ServerProcess(tmp_path / "data", "--workers", "2", "--frames", "8") as server:
        load = run_load(server, files)
        jobs = server.get(f"{API}/jobs?limit=100").json()["jobs"]
    summary = load["summary"]
    assert summary["uploads"] == summary["done"] == 30, load["rows"]
    assert summary["p95_s"] >= summary["p50_s"] > 0
    assert len(jobs) == 30 and all(job["attempts"] == 1 for job in jobs)
    by_name = {}
    for job in jobs:
        by_name.setdefault(job["filename"], set()).add(round(job["score"], 6))
    assert len(by_name["004.mp4"]) == 1  # the same video gives the same score in every job and worker
    assert len(by_name) == 16 and all(job["status"] in ("ok", "no_face") for job in jobs)
