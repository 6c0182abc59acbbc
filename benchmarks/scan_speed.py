"""Scan speed against the decode floor, on the shared FF++ videos, with `fakescope bench`'s code.

    python benchmarks/scan_speed.py [--json runs/scan_speed.json] [--repeat 3] [--backend auto]
                                    [--model NAME] [--images N]

Per video: the decode floor (the sampled frames only), the scan, their ratio, faces/s and
the stages; the pipelined scan of all three; model throughput (face crops per second through
the default model at batch 32, crops already cut); and a folder of N images (the shared
CIPLAB faces, face detection included): images per second and cores kept busy.
Data: $FAKESCOPE_SHARED (default ../shared next to the repository).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fakescope import Scanner, ScanSettings
from fakescope.scan.bench import bench_file, bench_folder

ROOT = Path(__file__).resolve().parents[1]


def crops_per_second(scanner: Scanner, count: int = 256, repeat: int = 3) -> float:
    """Face crops per second through the predictor alone (normalise + forward), batch as set."""
    size = scanner.preprocess.input_size
    crops = list(np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8))
    scanner.predictor.predict_crops(crops[:32])  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        scanner.predictor.predict_crops(crops)
        times.append(time.perf_counter() - started)
    return count / statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--model", default=None)
    parser.add_argument("--images", type=int, default=200, help="images in the folder scan (0: skip)")
    args = parser.parse_args()

    shared = Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))
    videos = sorted((shared / "data/ffpp-videos").rglob("*.mp4"))
    if not videos:
        print(f"no videos under {shared / 'data/ffpp-videos'} (set FAKESCOPE_SHARED)", file=sys.stderr)
        return 2
    settings = ScanSettings(backend=args.backend, device="cpu", **({"model": args.model} if args.model else {}))
    scanner = Scanner(settings)
    summary: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                                 "backend": scanner.predictor.backend, "model": scanner.detector.name,
                                 "batch_size": settings.batch_size, "frames": settings.frames}}
    summary["videos"] = [bench_file(scanner, v, args.repeat) for v in videos]
    summary["videos_pipelined"] = bench_folder(scanner, videos)
    summary["crops_per_second"] = round(crops_per_second(scanner), 1)
    if args.images:
        images = sorted((shared / "data/ciplab-faces").rglob("*.jpg"))[: args.images]
        summary["images"] = bench_folder(scanner, images)
    print(f"{summary['machine']}\n")
    print("| video | decode floor s | scan s | ratio | faces/s | decode s | face detection s | model s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary["videos"]:
        s = r["stages_s"]
        print(f"| {Path(r['path']).relative_to(shared / 'data')} | {r['decode_floor_s']:.2f} | {r['scan_s']:.2f} | "
              f"{r['ratio']:.2f} | {r['faces_per_s']:.0f} | {s['decode']:.2f} | {s['face_detection']:.2f} | {s['model']:.2f} |")
    p = summary["videos_pipelined"]
    print(f"\nall videos in one scan: {p['seconds']:.2f} s, {p['cores_busy']:.2f} cores busy")
    print(f"face crops per second through the model (batch {settings.batch_size}): {summary['crops_per_second']:.0f}")
    if args.images:
        i = summary["images"]
        print(f"folder of {i['files']} images: {i['files_per_s']:.1f} images/s, {i['cores_busy']:.2f} cores busy")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
