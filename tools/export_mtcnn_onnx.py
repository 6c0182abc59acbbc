"""Export facenet-pytorch's MTCNN nets (P-Net, R-Net, O-Net) to ONNX for the torch-free detector.

    python tools/export_mtcnn_onnx.py [--out src/fakescope/scan/weights] [--opset 17]

The weights are the ones that ship in facenet-pytorch's wheel (facenet_pytorch/data/*.pt), so the
ONNX cascade in `fakescope.scan.mtcnn_onnx` sees the same numbers as `facenet_pytorch.MTCNN`.
Batch is dynamic for all three nets and height/width for P-Net (it runs on every pyramid level).
Each exported net is checked against torch on random and real-looking inputs before it is kept;
the script exits non-zero if any output differs by more than --atol.

Needs torch, facenet-pytorch==2.5.3, onnx and onnxruntime (the dev extra); the export runs once,
by a maintainer, and the three files (~2 MB together) are committed.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "src" / "fakescope" / "scan" / "weights"

LICENSE_TEXT = """\
MTCNN weights: mtcnn_pnet.onnx, mtcnn_rnet.onnx, mtcnn_onet.onnx
================================================================

These three files are ONNX exports (made with tools/export_mtcnn_onnx.py) of the P-Net, R-Net and
O-Net weights that ship in facenet-pytorch 2.5.3 (facenet_pytorch/data/pnet.pt, rnet.pt, onet.pt).
The numbers are unchanged; only the file format differs.

Origin: the networks are MTCNN, from K. Zhang, Z. Zhang, Z. Li and Y. Qiao, "Joint Face Detection
and Alignment Using Multitask Cascaded Convolutional Networks", IEEE Signal Processing Letters
23(10), 2016. Their weights were converted from the authors' original MTCNN release through
davidsandberg/facenet (MIT License) into facenet-pytorch by Tim Esler.

facenet-pytorch is distributed under the MIT License:

MIT License

Copyright (c) 2019 Timothy Esler

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# name -> (input side or None for P-Net's free size, output names in the nets' own order)
NETS = {
    "pnet": (None, ["reg", "prob"]),
    "rnet": (24, ["reg", "prob"]),
    "onet": (48, ["reg", "landmarks", "prob"]),
}


def load_nets() -> dict:
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    return {"pnet": PNet().eval(), "rnet": RNet().eval(), "onet": ONet().eval()}


def export(net, name: str, path: Path, opset: int) -> None:
    import torch

    side, outputs = NETS[name]
    example = torch.zeros(2, 3, side or 64, side or 48)
    dynamic = {"input": {0: "batch"}} | {o: {0: "batch"} for o in outputs}
    if side is None:  # P-Net is fully convolutional: any size of at least 12 x 12
        dynamic = {"input": {0: "batch", 2: "height", 3: "width"}} | {
            o: {0: "batch", 2: "out_height", 3: "out_width"} for o in outputs
        }
    # The TorchScript exporter (dynamo=False) needs no onnxscript and gives small, plain graphs;
    # torch warns that it is the legacy one.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net, (example,), str(path), input_names=["input"], output_names=outputs,
            dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True,
        )


def parity(net, name: str, path: Path, atol: float, seed: int = 0) -> float:
    """Largest |torch - onnxruntime| over several batch sizes (and P-Net sizes), on inputs in
    MTCNN's normalised range [-1, 1)."""
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    side = NETS[name][0]
    shapes = [(1, 12, 12), (3, 97, 131), (2, 360, 640)] if side is None else [(1, side, side), (7, side, side), (600, side, side)]
    worst = 0.0
    for batch, h, w in shapes:
        # Pixel-like values, normalised as the cascade does: (x - 127.5) / 128.
        pixels = rng.integers(0, 256, size=(batch, 3, h, w)).astype(np.float32)
        x = ((pixels - 127.5) * 0.0078125).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in net(torch.from_numpy(x))]
        got = session.run(None, {"input": x})
        for e, g in zip(expected, got):
            if e.shape != g.shape:
                raise AssertionError(f"{name}: shape {g.shape} != torch's {e.shape} for input {x.shape}")
            worst = max(worst, float(np.abs(e - g).max()))
    if worst > atol:
        raise AssertionError(f"{name}: max |torch - onnx| = {worst:.3g} > {atol}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--atol", type=float, default=1e-5)
    args = parser.parse_args(argv)

    from importlib.metadata import version

    print(f"facenet-pytorch {version('facenet-pytorch')}")
    args.out.mkdir(parents=True, exist_ok=True)
    nets = load_nets()
    for name, net in nets.items():
        path = args.out / f"mtcnn_{name}.onnx"
        export(net, name, path, args.opset)
        worst = parity(net, name, path, args.atol)
        print(f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}: "
              f"{path.stat().st_size / 1e3:.0f} kB, max |torch - onnx| = {worst:.2e}")
    (args.out / "LICENSE.mtcnn").write_text(LICENSE_TEXT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
