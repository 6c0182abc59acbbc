"""How close a scan runs to the speed of decoding: `fakescope bench FILE...`.

For each file: the decode floor (decoding exactly the frames a scan samples, nothing else),
the end-to-end scan time and its ratio to the floor, faces per second through the model,
and the split by stage. For a folder (or several files) also the whole scan's files per
second and how many cores it kept busy (process CPU seconds / wall seconds), since the next
file decodes while this one is scored.
"""
from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Sequence

from .media import load_media
from .scanner import Scanner, expand_inputs

STAGES = ("decode", "face_detection", "model")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def decode_floor(scanner: Scanner, path: Path, repeat: int) -> float:
    """Fastest of `repeat` decodes of the frames the scan samples."""
    settings = scanner.settings
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        load_media(path, settings.frames, settings.limits, run_length=settings.run_length)
        times.append(time.perf_counter() - started)
    return min(times)


def bench_file(scanner: Scanner, path: str | Path, repeat: int = 3) -> dict:
    """One file: floor, scan (median of `repeat`, after one warm-up), ratio, faces/s, stages."""
    path = Path(path)
    first = scanner.scan_file(path)  # warm-up: first-call allocations, file cache
    if first.status != "ok":
        return {"path": str(path), "status": first.status, "message": first.message}
    floor = decode_floor(scanner, path, repeat)
    runs = [scanner.scan_file(path) for _ in range(repeat)]
    total = statistics.median(r.seconds for r in runs)
    stages = {k: statistics.median(r.timings.get(k, 0.0) for r in runs) for k in STAGES}
    faces = runs[0].faces_found
    return {
        "path": str(path), "status": "ok", "kind": runs[0].kind, "frames": runs[0].frames_analysed, "faces": faces,
        "resolution": f"{runs[0].media.get('width')}x{runs[0].media.get('height')}",
        "decode_floor_s": round(floor, 4), "scan_s": round(total, 4), "ratio": round(total / floor, 2) if floor else None,
        "faces_per_s": round(faces / stages["model"], 1) if stages["model"] else None,
        "stages_s": {k: round(v, 4) for k, v in stages.items()},
    }


def bench_folder(scanner: Scanner, paths: Sequence[str | Path]) -> dict:
    """One pipelined scan over every input: files/s and the cores kept busy."""
    files = [p for p, ready in expand_inputs(paths) if ready is None]
    if not scanner.settings.crops:
        scanner.face_detector
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    report = scanner.scan(files)
    wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    return {
        "files": len(files), "scored": sum(r.ok for r in report.results), "seconds": round(wall, 3),
        "files_per_s": round(len(files) / wall, 2) if wall else None, "cores_busy": round(cpu / wall, 2) if wall else None,
    }
