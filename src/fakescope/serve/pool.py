"""The worker processes and the supervisor thread that keeps them honest.

Every half second the supervisor restarts a dead worker (re-queueing the job it died in,
up to `store.MAX_ATTEMPTS` runs), and kills the worker of a job over the per-job time limit
(the job fails with status `time_limit`). Workers are started from the supervisor's own thread,
which lives as long as the server: Linux's PR_SET_PDEATHSIG kills them when it ends.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Optional

from .store import MAX_ATTEMPTS, JobStore
from .worker import CANNOT_START, die_with_parent

log = logging.getLogger("fakescope.serve")

SUPERVISE_SECONDS = 0.5


class WorkerPool:
    def __init__(self, store: JobStore, workers: int, job_timeout_s: float, options: dict):
        self.store = store
        self.count = workers
        self.job_timeout_s = job_timeout_s
        self.options = options
        self._processes: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self.cannot_start: Optional[str] = None  # why workers are missing, for /health

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="fakescope-supervisor", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            for process in self._processes.values():
                process.kill()
            for process in self._processes.values():
                process.wait(timeout=10)
            self._processes.clear()

    def alive(self) -> int:
        with self._lock:
            return sum(process.poll() is None for process in self._processes.values())

    def stop_worker(self, index: Optional[int]) -> None:
        """Kill one worker (its job was deleted); the supervisor starts a fresh one."""
        if index is None:
            return
        with self._lock:
            process = self._processes.get(index)
            if process is not None and process.poll() is None:
                process.kill()

    # ------------------------------------------------------------------ supervisor thread
    def _spawn(self, index: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "fakescope.serve.worker", "--data-dir", str(self.store.data_dir),
                   "--index", str(index), "--options", json.dumps(self.options), "--parent", str(os.getpid())]
        # preexec_fn runs in the child before exec, on this (long-lived) thread's behalf
        return subprocess.Popen(command, preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)

    def _supervise(self) -> None:
        with self._lock:
            for index in range(self.count):
                self._processes[index] = self._spawn(index)
        self._ready.set()
        while not self._stop.wait(SUPERVISE_SECONDS):
            try:
                self._check()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bad check
                log.exception("supervisor check failed")

    def _check(self) -> None:
        now = time.time()
        running = {job.worker: job for job in self.store.running()}
        with self._lock:
            for index, process in list(self._processes.items()):
                job = running.get(index)
                if process.poll() is None and job is not None and job.started is not None \
                        and now - job.started > self.job_timeout_s:
                    process.kill()
                    process.wait(timeout=10)
                    self.store.fail(job.id, job.run_id, "time_limit",
                                    f"{job.filename}: the scan took longer than the server's per-job limit of "
                                    f"{self.job_timeout_s:g} s (fakescope serve --job-timeout)")
                if process.poll() is not None:
                    if job is not None:  # the worker died in this job (killed, crashed, out of memory)
                        if job.attempts >= MAX_ATTEMPTS:
                            self.store.fail(job.id, job.run_id, "internal_error",
                                            f"{job.filename}: the scan worker died {job.attempts} times on this file")
                        else:
                            self.store.requeue(job.id, job.run_id)
                    if process.returncode == CANNOT_START:
                        self.cannot_start = f"scan worker {index} could not load its model (see the server's log)"
                        log.error(self.cannot_start)
                        del self._processes[index]
                    elif not self._stop.is_set():
                        self._processes[index] = self._spawn(index)
