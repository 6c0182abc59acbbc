"""`fakescope serve` in a subprocess, on a free 127.0.0.1 port, and a few HTTP calls to it.

Shared by tests/test_serve*.py and benchmarks/serve_load.py.
"""
from __future__ import annotations

import os
import signal
import statistics
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import requests

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`fakescope serve ARGS` until stopped; `url`, `headers` (with the first token) and helpers."""

    def __init__(self, data_dir: Path, *args: str, token: Optional[str] = None, port: Optional[int] = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.args = list(args) + (["--token", token] if token else [])
        self.process: Optional[subprocess.Popen] = None
        self.log = self.data_dir.parent / f"{self.data_dir.name}-serve-{self.port}.log"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout: float = 90.0) -> "ServerProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("FAKESCOPE_TOKEN", None)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fakescope", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), *self.args], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fakescope serve exited with {self.process.returncode}: {self.log.read_text()}")
            try:
                health = requests.get(self.url + API + "/health", headers=self.headers, timeout=2)
                if health.ok and health.json()["workers_alive"] == health.json()["workers"]:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"fakescope serve did not come up in {timeout} s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        self.process.kill()
        self.process.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ calls
    def submit(self, path: Path, name: Optional[str] = None, headers: Optional[dict] = None) -> requests.Response:
        with open(path, "rb") as handle:
            return requests.post(self.url + API + "/jobs", files={"file": (name or Path(path).name, handle)},
                                 headers=self.headers if headers is None else headers, timeout=60)

    def get(self, path: str, headers: Optional[dict] = None, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers=self.headers if headers is None else headers, timeout=30, **kwargs)

    def job(self, job_id: str) -> dict:
        response = self.get(f"{API}/jobs/{job_id}")
        response.raise_for_status()
        return response.json()

    def wait(self, job_id: str, timeout: float = 180.0, poll: float = 0.2) -> dict:
        """The job once it is done or failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(poll)
        raise TimeoutError(f"job {job_id} not finished in {timeout} s: {job}")


def worker_processes(data_dir: Path) -> list[int]:
    """PIDs of scan workers serving `data_dir` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"fakescope.serve.worker" in command and str(data_dir).encode() in command:
            try:
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
            except OSError:
                continue
            if state != "Z":
                pids.append(int(entry.name))
    return pids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run_load(server: ServerProcess, files: list[Path], poll: float = 0.1) -> dict:
    """Upload every file at once (one thread each), wait for all; the timings."""
    start = threading.Barrier(len(files))
    rows: list[dict] = [{} for _ in files]

    def client(i: int, path: Path) -> None:
        start.wait()
        began = time.perf_counter()
        response = server.submit(path)
        uploaded = time.perf_counter()
        if response.status_code != 201:
            rows[i] = {"file": path.name, "state": f"HTTP {response.status_code}", "detail": response.text[:200]}
            return
        job = server.wait(response.json()["id"], timeout=1800, poll=poll)
        rows[i] = {"file": path.name, "state": job["state"], "status": job["status"],
                   "upload_s": uploaded - began, "to_result_s": time.perf_counter() - began}

    threads = [threading.Thread(target=client, args=(i, p)) for i, p in enumerate(files)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    done = [r for r in rows if r.get("state") == "done"]
    times = [r["to_result_s"] for r in done]
    summary = {"uploads": len(files), "done": len(done), "wall_s": round(wall, 2),
               "jobs_per_s": round(len(done) / wall, 2) if wall else None}
    if times:
        summary.update(p50_s=round(statistics.median(times), 2), p95_s=round(percentile(times, 95), 2),
                       max_s=round(max(times), 2),
                       upload_p95_s=round(percentile([r["upload_s"] for r in done], 95), 3))
    return {"summary": summary, "rows": rows}


def picky_probe(path: str, limits: dict) -> tuple:
    """The upload probe, except that it crashes on a file name with "crash" and hangs on one with "hang"
    (what a hostile file could make a demuxer do)."""
    from fakescope.serve.probe import probe

    name = Path(path).name
    if "crash" in name:
        os._exit(3)
    if "hang" in name:
        time.sleep(600)
    return probe(path, limits)
