"""The job store: one SQLite file under --data-dir, each job's files in a folder beside it.

Every state change is one SQL statement, so a server killed at any moment leaves each job in
a state it can go on from: `queued` jobs wait, `running` jobs of a dead server are queued again
on start (`requeue_interrupted`), and a job is `done` only once its result file is complete
(written to a temporary name, then renamed, then marked). A run is identified by `run_id`: a
worker whose job was taken from it (time limit, deletion, restart) cannot mark it any more.

    data-dir/
      jobs.sqlite3
      jobs/<id>/input.<ext>     the upload, under a generated name (an uploaded name never becomes a path)
      jobs/<id>/result.json     the scan's JSON, as `fakescope scan --json` writes it
      jobs/<id>/files/          thumbnails, heatmaps, masks and key frames
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

# Job states. A scan that could not score its file (corrupt, no face, ...) still ends `done`,
# with that status in its result; `failed` is for jobs the server gave up on (time limit, crash).
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
MAX_ATTEMPTS = 2  # a job whose worker died this many times is failed, not retried forever

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    extension TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    kind TEXT,
    state TEXT NOT NULL,
    status TEXT,
    verdict TEXT,
    score REAL,
    message TEXT,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    worker INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, created);
"""


@dataclass
class Job:
    id: str
    owner: str
    filename: str
    extension: str
    size_bytes: int
    kind: Optional[str]
    state: str
    status: Optional[str]
    verdict: Optional[str]
    score: Optional[float]
    message: Optional[str]
    frames_done: int
    frames_total: int
    created: float
    started: Optional[float]
    finished: Optional[float]
    attempts: int
    run_id: Optional[str]
    worker: Optional[int]


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.jobs_dir = self.data_dir / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / "jobs.sqlite3"
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        # autocommit (isolation_level=None): each statement is its own transaction
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def _one(self, sql: str, args: tuple = ()) -> Optional[Job]:
        with closing(self._connect()) as db:
            row = db.execute(sql, args).fetchone()
        return Job(**dict(row)) if row is not None else None

    def _run(self, sql: str, args: tuple = ()) -> int:
        with closing(self._connect()) as db:
            return db.execute(sql, args).rowcount

    # ------------------------------------------------------------------ files
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def input_path(self, job: Job) -> Path:
        return self.job_dir(job.id) / f"input{job.extension}"

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.json"

    def files_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "files"

    # ------------------------------------------------------------------ the API's side
    def add(self, job_id: str, owner: str, filename: str, extension: str, size_bytes: int, kind: Optional[str],
            frames_total: int) -> Job:
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO jobs (id, owner, filename, extension, size_bytes, kind, state, frames_total, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, owner, filename, extension, size_bytes, kind, QUEUED, frames_total, time.time()))
        return self.get(job_id, owner)

    def get(self, job_id: str, owner: str) -> Optional[Job]:
        return self._one("SELECT * FROM jobs WHERE id = ? AND owner = ?", (job_id, owner))

    def list(self, owner: str, limit: int = 100, offset: int = 0) -> list[Job]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs WHERE owner = ? ORDER BY created DESC, rowid DESC LIMIT ? OFFSET ?",
                              (owner, limit, offset)).fetchall()
        return [Job(**dict(row)) for row in rows]

    def count(self, owner: str) -> int:
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE owner = ?", (owner,)).fetchone()[0]

    def waiting(self) -> int:
        """Jobs not finished yet (queued or running), all owners: what the queue cap counts."""
        with closing(self._connect()) as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)", (QUEUED, RUNNING)).fetchone()[0]

    def delete(self, job_id: str, owner: str) -> Optional[Job]:
        """Remove the job and its files; returns it (its `worker` is the one to stop if it was running)."""
        job = self.get(job_id, owner)
        if job is None:
            return None
        self._run("DELETE FROM jobs WHERE id = ? AND owner = ?", (job_id, owner))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return job

    # ------------------------------------------------------------------ the workers' side
    def claim(self, worker: int) -> Optional[Job]:
        """The oldest queued job, now running under a new run id: one statement, so two workers
        never take the same job."""
        return self._one(
            "UPDATE jobs SET state = ?, run_id = ?, worker = ?, started = ?, attempts = attempts + 1, frames_done = 0 "
            "WHERE id = (SELECT id FROM jobs WHERE state = ? ORDER BY created, rowid LIMIT 1) AND state = ? "
            "RETURNING *", (RUNNING, uuid.uuid4().hex, worker, time.time(), QUEUED, QUEUED))

    def progress(self, job_id: str, run_id: str, frames_done: int, frames_total: Optional[int] = None) -> bool:
        if frames_total is None:
            return self._run("UPDATE jobs SET frames_done = ? WHERE id = ? AND run_id = ? AND state = ?",
                             (frames_done, job_id, run_id, RUNNING)) == 1
        return self._run("UPDATE jobs SET frames_done = ?, frames_total = ? WHERE id = ? AND run_id = ? AND state = ?",
                         (frames_done, frames_total, job_id, run_id, RUNNING)) == 1

    def finish(self, job_id: str, run_id: str, result: dict[str, Any]) -> bool:
        """Write the result, then mark the job done (if this run still owns it). False: the job was
        deleted, timed out or taken over meanwhile, and the result is not kept."""
        target = self.result_path(job_id)
        if not target.parent.is_dir():
            return False
        partial = target.with_name(f"result.{run_id}.part")
        partial.write_text(json.dumps(result, indent=2), encoding="utf-8")
        partial.replace(target)  # atomic: a reader sees the old result or the whole new one
        file_result = result["results"][0]
        marked = self._run(
            "UPDATE jobs SET state = ?, status = ?, verdict = ?, score = ?, message = ?, frames_done = ?, "
            "frames_total = ?, finished = ? WHERE id = ? AND run_id = ? AND state = ?",
            (DONE, file_result["status"], file_result.get("verdict"), file_result.get("score"),
             file_result.get("message"), file_result.get("frames_analysed", 0),
             file_result.get("frames_analysed", 0), time.time(), job_id, run_id, RUNNING)) == 1
        if not marked and self._one("SELECT * FROM jobs WHERE id = ?", (job_id,)) is None:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)  # deleted while it ran
        return marked

    def fail(self, job_id: str, run_id: Optional[str], status: str, message: str) -> bool:
        """Give up on a running job (time limit, its worker crashed too often)."""
        return self._run(
            "UPDATE jobs SET state = ?, status = ?, message = ?, finished = ? WHERE id = ? AND run_id IS ? AND state = ?",
            (FAILED, status, message, time.time(), job_id, run_id, RUNNING)) == 1

    def requeue(self, job_id: str, run_id: Optional[str]) -> bool:
        return self._run("UPDATE jobs SET state = ?, run_id = NULL, worker = NULL WHERE id = ? AND run_id IS ? AND state = ?",
                         (QUEUED, job_id, run_id, RUNNING)) == 1

    def running(self) -> list[Job]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM jobs WHERE state = ?", (RUNNING,)).fetchall()
        return [Job(**dict(row)) for row in rows]

    def requeue_interrupted(self) -> int:
        """On start: jobs a previous server was running when it stopped run again (from scratch)."""
        return self._run("UPDATE jobs SET state = ?, run_id = NULL, worker = NULL WHERE state = ?", (QUEUED, RUNNING))
