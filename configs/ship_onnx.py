"""Export shipped models to ONNX beside their checkpoints and record the files in zoo.json.

    python configs/ship_onnx.py [NAME ...]      (default: the default model and the MesoNets)

`scan` and `evaluate` then run these on ONNX Runtime on the CPU (`--backend auto`), and a
scan-only install needs no PyTorch. Each export is checked against PyTorch at export time
(`models/onnx.py`), and tests/test_onnx.py checks the shipped files on the shared videos.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fakescope.data.fingerprints import sha256_of
from fakescope.models.onnx import export_onnx
from fakescope.models.zoo import DEFAULT_MODEL, WEIGHTS_DIR, load_detector

SHIPPED_AS_ONNX = (DEFAULT_MODEL, "meso4-df", "meso4-f2f", "mesoinception4-df", "mesoinception4-f2f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(SHIPPED_AS_ONNX))
    args = parser.parse_args()
    index = WEIGHTS_DIR / "zoo.json"
    zoo = json.loads(index.read_text())
    for name in args.names:
        detector = load_detector(name)
        target = WEIGHTS_DIR / Path(zoo[name]["file"]).with_suffix(".onnx").name
        metadata = export_onnx(detector, target)
        zoo[name]["onnx_file"] = target.name
        zoo[name]["onnx_sha256"] = sha256_of(target)
        print(f"{name}: {target.name} {target.stat().st_size / 1e6:.1f} MB, parity vs PyTorch {metadata['parity']}")
    index.write_text(json.dumps(zoo, indent=2) + "\n")


if __name__ == "__main__":
    main()
