"""Upload checks in a separate process: the file's header against the scan limits.

The header is read by PyAV and Pillow. Run in the API's own process, a demuxer that crashes or
hangs on a hostile file would take the whole service down; here only the probe process goes,
and the upload is refused with a 4xx. One long-lived process (spawned: the API process has
threads) serves every upload; a crashed or stuck one is replaced.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from pathlib import Path
from typing import Optional

PROBE_TIMEOUT_S = 30.0


def probe(path: str, limits: dict) -> tuple:
    """("ok", MediaInfo fields) or ("error", status code, message)."""
    from ..errors import MediaError
    from ..scan.media import MediaLimits, probe_media

    try:
        return ("ok", asdict(probe_media(Path(path), MediaLimits(**limits))))
    except MediaError as exc:
        return ("error", exc.code, exc.message)


class Prober:
    def __init__(self, function=probe, timeout_s: float = PROBE_TIMEOUT_S):
        self._function = function  # a module-level function (it runs in the spawned process)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pool: Optional[ProcessPoolExecutor] = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            return self._pool

    def _discard(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):  # a hung probe: kill it
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)

    async def check(self, path: Path, limits: dict) -> tuple:
        """probe()'s answer, or ("crashed", None, why) when the probe process died or hung."""
        try:
            future = self._executor().submit(self._function, str(path), limits)
            return await asyncio.wait_for(asyncio.wrap_future(future), self._timeout_s)
        except (BrokenProcessPool, asyncio.TimeoutError) as exc:
            self._discard()
            why = "timed out" if isinstance(exc, asyncio.TimeoutError) else "crashed"
            return ("crashed", None, f"reading the file's header {why}")

    def close(self) -> None:
        self._discard()
