"""CPU (or GPU) time per face of every registered detector architecture.

For each architecture: build it with its default arguments (random weights: the
cost does not depend on them), put it in eval mode, and time forward passes on
random input at its default input size, at batch 1 and batch 32, after warm-up.
Reports the median over --repeat timed passes, in milliseconds per face, with the
parameter count and GFLOPs (`fakescope.models.profile`).

    python benchmarks/model_speed.py                       # every architecture, CPU
    python benchmarks/model_speed.py --arch resnet50 xception --batches 1 8
    python benchmarks/model_speed.py --json runs/model_speed.json --markdown runs/model_speed.md
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from fakescope.models import MODELS, build_model
from fakescope.models.profile import profile


def time_forward(model: torch.nn.Module, batch: int, size: int, device: torch.device, repeat: int, warmup: int,
                 channels_last: bool) -> float:
    """Median seconds of one forward pass of ``batch`` faces."""
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeat):
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="*", help="architectures (default: all registered)")
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 32])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per batch size (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC input and weights")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write a markdown table here")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    archs = args.arch or list(MODELS)
    unknown = [a for a in archs if a not in MODELS]
    if unknown:
        print(MODELS.unknown_message(unknown[0]), file=sys.stderr)
        return 2
    environment = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(device), "channels_last": args.channels_last,
    }
    print(json.dumps(environment), flush=True)
    rows = []
    for arch in archs:
        info = profile(arch)
        torch.manual_seed(0)
        model = build_model(arch).eval().to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        row = {"arch": arch, **info}
        for batch in args.batches:
            seconds = time_forward(model, batch, info["input_size"], device, args.repeat, args.warmup, args.channels_last)
            row[f"ms_per_face_b{batch}"] = 1000.0 * seconds / batch
        rows.append(row)
        print(json.dumps(row), flush=True)
        del model
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"environment": environment, "rows": rows}, indent=2))
    if args.markdown:
        header = ["arch", "parameters", "input", "GFLOPs"] + [f"ms/face b{b}" for b in args.batches]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in rows:
            gflops = "?" if r["gflops"] is None else f"{r['gflops']:.2f}"
            cells = [r["arch"], f"{r['parameters'] / 1e6:.2f} M", str(r["input_size"]), gflops]
            cells += [f"{r[f'ms_per_face_b{b}']:.1f}" for b in args.batches]
            lines.append("| " + " | ".join(cells) + " |")
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
