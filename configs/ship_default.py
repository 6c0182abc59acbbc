"""Copy a trained checkpoint into the package as a shipped model and record it in zoo.json.

    python configs/ship_default.py RUN_DIR NAME [--trained-on TEXT] [--license TEXT]

RUN_DIR is a `fakescope train` output holding best.pt and the reports that step 4-5 of
configs/efficientnet_lite0_default.sh write (test.json, test_meso4_df.json,
scan_ffpp_videos.json); their numbers go into the entry's "measured". Paths in the
checkpoint's provenance are made relative to the repository, so no machine's
absolute paths ship.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src/fakescope/models/weights"


def _relative(value):
    """Absolute paths under the repository -> repository-relative; everything else as is."""
    if isinstance(value, dict):
        return {k: _relative(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        try:
            return str(Path(value).resolve().relative_to(ROOT))
        except ValueError:
            return Path(value).name
    return value


def _aucs(report: dict) -> dict:
    datasets = report["datasets"]
    ffpp, ciplab = datasets["ffpp-crops"], datasets["ciplab"]
    return {
        "ffpp_test_auc": round(ffpp["auc"], 4),
        "ffpp_test_auc_by_method": {m: round(v["auc"], 4) for m, v in sorted(ffpp["methods"].items())},
        "ffpp_test_rows": int(ffpp["n"]),
        "ciplab_test_auc": round(ciplab["auc"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--trained-on", default="")
    parser.add_argument("--license", default="")
    args = parser.parse_args()

    payload = torch.load(args.run_dir / "best.pt", map_location="cpu", weights_only=False)
    payload["provenance"] = _relative(payload["provenance"])
    target, sha256 = package_checkpoint(payload, args.name)

    report = json.loads((args.run_dir / "test.json").read_text())
    reference = json.loads((args.run_dir / "test_meso4_df.json").read_text())
    scans = json.loads((args.run_dir / "scan_ffpp_videos.json").read_text())
    prov = payload["provenance"]
    entry = {
        "file": target.name, "sha256": sha256, "arch": payload["arch"],
        "trained_on": args.trained_on, "license": args.license,
        "source": "bash configs/efficientnet_lite0_default.sh (fakescope train configs/efficientnet_lite0_default.yaml), "
                  f"epoch {prov['epoch']} of {prov['config']['train']['epochs']}, chosen on {prov['selected_on']}",
        "measured": {
            **_aucs(report),
            "meso4_df_same_rows": _aucs(reference),
            "ffpp_videos_scan": {Path(r["path"]).name: {"verdict": r["verdict"], "score": round(r["score"], 4)}
                                 for r in scans["results"]},
            "how": "fakescope evaluate on the test split of runs/data/default_split.csv (identity-held-out FF++ c23 "
                   "crops and CIPLAB test); fakescope scan ../shared/data/ffpp-videos (all three videos were in training)",
        },
    }
    write_zoo_entry(args.name, entry, target)


def package_checkpoint(payload: dict, name: str) -> tuple[Path, str]:
    """Write a checkpoint payload into the package's weights folder; (its path, its sha256)."""
    target = WEIGHTS / f"{name}.pt"
    torch.save(payload, target)
    return target, hashlib.sha256(target.read_bytes()).hexdigest()


def write_zoo_entry(name: str, entry: dict, target: Path) -> None:
    """Put `entry` first in zoo.json (replacing an older entry of that name)."""
    index_path = WEIGHTS / "zoo.json"
    index = json.loads(index_path.read_text())
    index = {name: entry, **{k: v for k, v in index.items() if k != name}}
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.1f} MB, sha256 {entry['sha256']}) and zoo.json")


if __name__ == "__main__":
    main()
