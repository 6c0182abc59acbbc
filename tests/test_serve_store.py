"""The job store on its own: concurrent claims never share a job, and a run that lost its job
(timed out, taken over, deleted) cannot mark it."""
from __future__ import annotations

import threading

from fakescope.serve.store import DONE, FAILED, RUNNING, JobStore, new_job_id


def _add(store: JobStore, count: int) -> list[str]:
    ids = []
    for i in range(count):
        job_id = new_job_id()
        store.job_dir(job_id).mkdir(parents=True)
        store.add(job_id, "owner", f"clip{i}.mp4", ".mp4", 100, "video", 32)
        ids.append(job_id)
    return ids


def test_concurrent_claims_never_share_a_job(tmp_path):
    store = JobStore(tmp_path)
    ids = _add(store, 60)
    claimed: list[list[str]] = [[] for _ in range(4)]

    def worker(index: int) -> None:
        while (job := store.claim(index)) is not None:
            claimed[index].append(job.id)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [job_id for run in claimed for job_id in run]
    assert sorted(everything) == sorted(ids)  # each job once, none lost
    assert [store.get(job_id, "owner").state for job_id in ids] == [RUNNING] * 60


def test_a_run_that_lost_its_job_cannot_finish_it(tmp_path):
    store = JobStore(tmp_path)
    job_id = _add(store, 1)[0]
    first = store.claim(0)
    assert store.fail(job_id, first.run_id, "time_limit", "too slow")
    result = {"results": [{"status": "ok", "verdict": "real", "score": 0.1, "frames_analysed": 32}]}
    assert not store.finish(job_id, first.run_id, result)  # the time limit won
    assert store.get(job_id, "owner").state == FAILED

    second_id = _add(store, 1)[0]
    stale = store.claim(1)
    assert store.requeue_interrupted() == 1  # a restart: the job runs again under a new run id
    fresh = store.claim(2)
    assert fresh.id == second_id and fresh.run_id != stale.run_id and fresh.attempts == 2
    assert not store.progress(second_id, stale.run_id, 5)
    assert store.finish(second_id, fresh.run_id, result) and store.get(second_id, "owner").state == DONE
    assert store.get(second_id, "other owner") is None and store.list("other owner") == []


def test_a_job_deleted_while_running_leaves_nothing(tmp_path):
    store = JobStore(tmp_path)
    job_id = _add(store, 1)[0]
    run = store.claim(0)
    assert store.delete(job_id, "owner").state == RUNNING
    assert not store.finish(job_id, run.run_id, {"results": [{"status": "ok"}]})
    assert not store.job_dir(job_id).exists() and store.waiting() == 0
    assert store.list("owner") == [] and store.count("owner") == 0


def test_a_probe_that_crashes_or_hangs_is_replaced_and_the_upload_refused(shared_dir, tmp_path):
    """The header probe runs in its own process: a crash or a hang there answers "crashed" and the
    next upload gets a fresh probe process."""
    import asyncio
    import shutil
    from dataclasses import asdict

    from fakescope.scan.media import MediaLimits
    from fakescope.serve.probe import Prober
    from serve_helpers import picky_probe

    photo = shared_dir / "data/ciplab-faces/real/0.jpg"
    crash, hang = tmp_path / "crash.jpg", tmp_path / "hang.jpg"
    shutil.copy(photo, crash)
    shutil.copy(photo, hang)
    limits = asdict(MediaLimits())
    prober = Prober(picky_probe, timeout_s=5)

    async def run():
        return [await prober.check(path, limits) for path in (photo, crash, photo, hang, photo)]

    try:
        answers = asyncio.run(run())
    finally:
        prober.close()
    assert [a[0] for a in answers] == ["ok", "crashed", "ok", "crashed", "ok"]
    assert answers[0][1]["width"] == 330 and "crashed" in answers[1][2] and "timed out" in answers[3][2]
