"""A bounded load test of `fakescope serve`: N concurrent uploads against 127.0.0.1.

    python benchmarks/serve_load.py [--uploads 30] [--workers 2] [--media videos|images|mixed]
                                    [--frames 32] [--json runs/serve_load.json]

Starts a server in a subprocess on a free port with a fresh data folder, then N client threads
each upload one file at the same moment and poll their job until it is done. Reports, per upload,
the time from the start of the upload to the poll that saw the result (p50 / p95 / max), how long
the uploads alone took, the whole run's wall time and jobs per second. Every job must end `done`.
Media: the three shared FF++ videos (`videos`), shared CIPLAB face photos (`images`), or both.
Data: $FAKESCOPE_SHARED (default ../shared next to the repository).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_helpers import ServerProcess, run_load  # noqa: E402


def shared() -> Path:
    return Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))


def media_files(kind: str, count: int) -> list[Path]:
    videos = sorted((shared() / "data/ffpp-videos").rglob("*.mp4"))
    images = sorted((shared() / "data/ciplab-faces/real").glob("*.jpg"))[:count]
    pool = {"videos": videos, "images": images, "mixed": [p for pair in zip(videos * count, images) for p in pair]}[kind]
    if not pool:
        raise SystemExit(f"no shared {kind} under {shared()}")
    return [pool[i % len(pool)] for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--media", choices=("videos", "images", "mixed"), default="videos")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    files = media_files(args.media, args.uploads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fakescope-load-") as folder:
        with ServerProcess(Path(folder) / "data", "--workers", str(args.workers), "--frames", str(args.frames),
                           "--max-queue", str(max(100, args.uploads))) as server:
            result = run_load(server, files)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                         "workers": args.workers, "media": args.media, "frames": args.frames,
                         "load_average_before": load_before}
    print(json.dumps(result["summary"], indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["summary"]["done"] == result["summary"]["uploads"] else 1


if __name__ == "__main__":
    sys.exit(main())
