"""Ship the default detector: copy the calibrated checkpoint into the package and record it in zoo.json.

    python configs/default_detector/ship.py RUN_DIR NAME --reframed runs/reframe --split SPLIT_CSV

RUN_DIR holds calibrated.pt and the reports of run.sh's steps 5-6. The checkpoint's provenance
gets repository-relative paths (no machine's absolute paths ship) and the fingerprints of every
train and val image, both the re-framed crop and the file it was cut from (what a user would
evaluate), so `fakescope evaluate` warns when asked to score them. The measured numbers go
into the zoo entry.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "configs"))
from ship_default import _relative, package_checkpoint, write_zoo_entry  # noqa: E402  (one way to ship every model)

from fakescope.data.fingerprints import file_fingerprint, pack  # noqa: E402
from fakescope.data.manifest import Manifest  # noqa: E402
from fakescope.data.reframe import reframed_origins  # noqa: E402

LICENSE = ("Apache-2.0 code; the weights were learnt from FaceForensics++ and DFDC (research-only terms) and the "
           "CIPLAB real/fake face set: research use only (see LICENSE.weights)")
TRAINED_ON = (
    "Re-framed face crops (MTCNN box x 0.7): DFDC faces (train families: 5,180 reals, 2,536 deepfakes), FF++ c23 "
    "faces (train folder less 15 % val by video: 1,453 reals, 1,515 fakes of 4 methods), CIPLAB train (733 real "
    "photos, 652 Photoshop fakes); each real also turned into SBI / Face X-ray fakes (dlib 68-point masks, p 0.35 "
    "an epoch); ImageNet EfficientNet-Lite0 init; calibrated on the val rows")


def _fingerprints(split: Path, reframed: Path) -> dict[str, str]:
    manifest = Manifest.read(split)
    origin = reframed_origins(reframed)
    parts: dict[str, set[str]] = {"train": set(), "val": set()}
    for sample in manifest:
        if sample.split in parts:
            crop = str(manifest.resolve(sample.path).resolve())
            parts[sample.split].add(file_fingerprint(crop))
            if crop in origin:
                parts[sample.split].add(file_fingerprint(origin[crop]))
    return {part: pack(values) for part, values in parts.items()}


def _summary(report: dict) -> dict:
    out = {}
    for name, d in report["datasets"].items():
        out[name] = {"auc": round(d["auc"], 4), "n": d["n"], "false_alarm": round(d["false_alarm"], 4),
                     "uncertain_share": round(d["uncertain_share"], 4), "acc_decided": round(d["acc_decided"], 4),
                     "ece": round(d["ece"], 4)}
        if d.get("methods"):
            out[name]["auc_by_method"] = {m: round(v["auc"], 4) for m, v in sorted(d["methods"].items())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--reframed", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    args = parser.parse_args()

    payload = torch.load(args.run_dir / "calibrated.pt", map_location="cpu", weights_only=True)
    provenance = _relative(payload["provenance"])
    provenance["data_fingerprints"] = _fingerprints(args.split, args.reframed)
    provenance["calibration_fitted_on"] = "val rows of " + str(_relative(str(args.split.resolve())))
    payload["provenance"] = provenance
    target, sha256 = package_checkpoint(payload, args.name)

    test = json.loads((args.run_dir / "test_calibrated.json").read_text())
    original = json.loads((args.run_dir / "test_original_calibrated.json").read_text())
    scans = json.loads((args.run_dir / "scan_ffpp_videos.json").read_text())
    entry = {
        "file": target.name, "sha256": sha256, "arch": payload["arch"], "trained_on": TRAINED_ON, "license": LICENSE,
        "source": "bash configs/default_detector/run.sh (fakescope train configs/default_detector/efficientnet_lite0.yaml, "
                  f"epoch {provenance['epoch']} of {provenance['config']['train']['epochs']}, chosen on "
                  f"{provenance['selected_on']}; fakescope calibrate on the val rows)",
        "calibration": payload["calibration"],
        "measured": {
            "test_reframed": _summary(test),
            "test_as_published": _summary(original),
            "ffpp_videos_scan": {Path(r["path"]).name: {"verdict": r["verdict"], "score": round(r["score"], 4)}
                                 for r in scans["results"] if r["score"] is not None},
            "how": "fakescope evaluate on the test rows of configs/default_detector/make_split.py's split (DFDC "
                   "families, FF++ c23 test folder, CIPLAB test, the 120 ffpp-crops), re-framed and as published; "
                   "fakescope scan ../shared/data/ffpp-videos (none of the three in training)",
        },
    }
    write_zoo_entry(args.name, entry, target)


if __name__ == "__main__":
    main()
