"""Training-free tampering localization (fakescope.tamper) on the CASIA v2 samples and on synthetic forgeries.

    python benchmarks/tamper_casia.py [--json runs/tamper_casia.json] [--methods copy_move_block,...]

Data: $FAKESCOPE_SHARED (default ../shared): data/image-forensics/casia2-samples (manifest.csv:
8 splicing + 9 copy-move, PNG masks, white = tampered), and synthetic forgeries made here from
CIPLAB photos (deterministic, the same ones tests/test_tamper.py checks):

- `synthetic-rotated`: a patch copied rotated 25 deg and scaled 1.2x (copy-move);
- `synthetic-translated`: a patch copied by a pure translation (copy-move);
- `synthetic-ghost`: a region saved at JPEG quality 60 pasted into a quality-95 image, saved at 95 (splicing);
- `synthetic-noise`: a region with Gaussian noise (sigma 6) added (splicing);
- `pristine`: untouched CIPLAB photos (5, or --pristine N) (found rate = false-alarm rate; no F1 / AUC, nothing to find).

Copy-move ground truth is source ∪ copy (the usual convention; CASIA's copy-move masks mark only the
pasted region, which caps a copy-move method's precision there near 0.5). Per method and group:
mean pixel F1 and IoU at mask >= 0.5, mean per-image pixel AUC (images whose map is constant count
0.5), image-level found rate, seconds per image.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

from fakescope.evaluate.tamper import markdown_table, read_rgb, read_samples, score_samples, summarise
from fakescope.tamper import TAMPER_METHODS

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))
CASIA = SHARED / "data/image-forensics/casia2-samples"
CIPLAB = SHARED / "data/ciplab-faces/real"
PRISTINE = 5  # untouched CIPLAB photos 0.jpg ... (--pristine N): their found rate is the false-alarm rate


# ----------------------------------------------------------------------------- synthetic forgeries

def textured_base(ciplab: Path = CIPLAB) -> np.ndarray:
    """Two textured CIPLAB photos side by side, 600x400 px RGB."""
    left = cv2.resize(read_rgb(ciplab / "0.jpg"), (300, 400), interpolation=cv2.INTER_AREA)
    right = cv2.resize(read_rgb(ciplab / "7.jpg"), (300, 400), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.concatenate([left, right], axis=1))


def rotated_copy(ciplab: Path = CIPLAB, angle: float = 25.0, scale: float = 1.2):
    """A disc of radius 50 around (450, 120) (wrinkles, an eye) copied, rotated by `angle` and scaled, to (150, 290).
    Returns the image and the ground truth (source disc ∪ pasted disc)."""
    image = textured_base(ciplab)
    h, w = image.shape[:2]
    src_c, dst_c, radius = (450.0, 120.0), (150.0, 290.0), 50
    M = cv2.getRotationMatrix2D(src_c, angle, scale)
    M[:, 2] += np.array(dst_c) - np.array(src_c)
    warped = cv2.warpAffine(image, M, (w, h), flags=cv2.INTER_LINEAR)
    source = np.zeros((h, w), np.uint8)
    cv2.circle(source, (int(src_c[0]), int(src_c[1])), radius, 1, -1)
    pasted = cv2.warpAffine(source, M, (w, h), flags=cv2.INTER_NEAREST) > 0
    out = image.copy()
    out[pasted] = warped[pasted]
    return out, (source > 0) | pasted


def translated_copy(ciplab: Path = CIPLAB, size: int = 90, src=(390, 20), dst=(40, 250)):
    """A size x size square at `src` (x, y) copied unchanged to `dst`; ground truth = both squares."""
    image = textured_base(ciplab)
    out = image.copy()
    (sx, sy), (dx, dy) = src, dst
    out[dy: dy + size, dx: dx + size] = image[sy: sy + size, sx: sx + size]
    truth = np.zeros(image.shape[:2], bool)
    truth[sy: sy + size, sx: sx + size] = True
    truth[dy: dy + size, dx: dx + size] = True
    return out, truth


def jpeg_roundtrip(image_rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def ghost_splice(ciplab: Path = CIPLAB, q1: int = 60, q2: int = 95, box=(304, 96, 176, 160)):
    """The base image saved at q2; a grid-aligned box (x, y, w, h) of it taken from a q1-compressed copy,
    pasted back, and the whole saved at q2 again."""
    base = textured_base(ciplab)
    background = jpeg_roundtrip(base, q2)
    donor = jpeg_roundtrip(base, q1)
    x, y, bw, bh = box
    out = background.copy()
    out[y: y + bh, x: x + bw] = donor[y: y + bh, x: x + bw]
    truth = np.zeros(base.shape[:2], bool)
    truth[y: y + bh, x: x + bw] = True
    return jpeg_roundtrip(out, q2), truth


def noise_splice(ciplab: Path = CIPLAB, sigma: float = 6.0, box=(60, 200, 128, 128), seed: int = 0):
    """Gaussian noise of `sigma` added inside a box (x, y, w, h) of one smooth CIPLAB photo (6.jpg, 340x442)."""
    base = read_rgb(ciplab / "6.jpg")
    x, y, bw, bh = box
    rng = np.random.default_rng(seed)
    out = base.astype(np.float32)
    out[y: y + bh, x: x + bw] += rng.normal(0, sigma, (bh, bw, 1)).astype(np.float32)
    truth = np.zeros(base.shape[:2], bool)
    truth[y: y + bh, x: x + bw] = True
    return np.clip(np.round(out), 0, 255).astype(np.uint8), truth


def samples(pristine: int = PRISTINE) -> list[dict]:
    """Every benchmark input: group, name, image, truth (None for pristine)."""
    out = read_samples(CASIA / "manifest.csv")
    for sample in out:
        sample["group"] = "casia-" + sample["group"].replace("-", "_")
        sample["name"] = Path(sample["name"]).name
    for group, make in (("synthetic-rotated", rotated_copy), ("synthetic-translated", translated_copy),
                        ("synthetic-ghost", ghost_splice), ("synthetic-noise", noise_splice)):
        image, truth = make()
        out.append({"group": group, "name": group, "image": image, "truth": truth})
    photos = sorted(CIPLAB.glob("*.jpg"), key=lambda p: (len(p.stem), p.stem))[:pristine]  # 0.jpg, 1.jpg, 2.jpg, ...
    for photo in photos:
        out.append({"group": "pristine", "name": f"ciplab/{photo.name}", "image": read_rgb(photo), "truth": None})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write per-image and summary results here")
    parser.add_argument("--methods", help="comma-separated method names (default: all)")
    parser.add_argument("--pristine", type=int, default=PRISTINE, help="untouched CIPLAB photos to count false alarms on")
    args = parser.parse_args(argv)
    names = args.methods.split(",") if args.methods else list(TAMPER_METHODS)
    rows = score_samples(samples(args.pristine), names)
    summary = summarise(rows)
    print(markdown_table(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"python": sys.version.split()[0], "opencv": cv2.__version__, "machine": platform.machine(),
                "cpus": os.cpu_count(), "threshold": 0.5}
        args.json.write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
