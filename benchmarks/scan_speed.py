"""Time `fakescope scan` on each shared FF++ video, split into its stages.

    python benchmarks/scan_speed.py [--frames 32] [--repeat 3] [--model NAME] [--device cpu]

Data: $FAKESCOPE_SHARED/data/ffpp-videos (default ../shared next to the repository).
Prints a Markdown table; the numbers in benchmarks/README.md come from it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from fakescope import Scanner, ScanSettings

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detection-max-side", type=int, default=640, help="100000: detect at full resolution")
    parser.add_argument("--min-face", type=int, default=64)
    args = parser.parse_args()

    shared = Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))
    videos = sorted((shared / "data/ffpp-videos").rglob("*.mp4"))
    if not videos:
        print(f"no videos under {shared / 'data/ffpp-videos'} (set FAKESCOPE_SHARED)", file=sys.stderr)
        return 2
    settings = ScanSettings(
        frames=args.frames, device=args.device, detection_max_side=args.detection_max_side,
        min_face_size=args.min_face, **({"model": args.model} if args.model else {}),
    )
    scanner = Scanner(settings)
    scanner.scan_file(videos[0])  # warm-up: builds MTCNN, first-call allocations

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {scanner.device}, model {scanner.detector.name}, "
          f"{args.frames} frames, detection at <= {args.detection_max_side} px, min face {args.min_face} px, "
          f"median of {args.repeat} runs\n")
    print("| video | resolution | duration | decode s | face detection s | model s | total s | frames/s |")
    print("|---|---|---|---|---|---|---|---|")
    for video in videos:
        runs = [scanner.scan_file(video) for _ in range(args.repeat)]
        if runs[0].status != "ok":
            print(f"| {video.relative_to(shared)} | {runs[0].status}: {runs[0].message} |")
            continue
        med = {k: statistics.median(r.timings[k] for r in runs) for k in ("decode", "face_detection", "model")}
        total = statistics.median(r.seconds for r in runs)
        media = runs[0].media
        print(f"| {video.relative_to(shared / 'data')} | {media['width']}x{media['height']} | {media['duration_s']:.1f} s "
              f"| {med['decode']:.2f} | {med['face_detection']:.2f} | {med['model']:.2f} | {total:.2f} "
              f"| {runs[0].frames_analysed / total:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
