#!/usr/bin/env bash
# Scanning needs no PyTorch: install fakescope alone (no extras) into a fresh virtualenv, check
# that torch is absent, scan a shared video and image with the default model, and report the size.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${FAKESCOPE_SHARED:-../shared}"
VENV="${1:-.venv-scan}"

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet .
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
missing = [m for m in ("torch", "torchvision", "timm", "facenet_pytorch") if importlib.util.find_spec(m) is None]
assert len(missing) == 4, f"the scan-only install pulled in {set(['torch', 'torchvision', 'timm', 'facenet_pytorch']) - set(missing)}"
PY
out="$(mktemp -d)"
"$VENV/bin/fakescope" --version
"$VENV/bin/fakescope" models >/dev/null
image="$SHARED/data/ciplab-faces/real/0.jpg"  # a fixed file: `find | head` would end in SIGPIPE under pipefail
"$VENV/bin/fakescope" scan "$SHARED/data/ffpp-videos/real/004.mp4" "$image" --jsonl "$out/scan.jsonl" --json "$out/scan.json" -q || [ $? -eq 1 ]
"$VENV/bin/python" - "$out/scan.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["model"]["backend"] == "onnx", report["model"]
video = [r for r in report["results"] if r["path"].endswith("004.mp4")][0]
assert video["status"] == "ok" and video["faces_found"] >= 16, video["status"]
print(f"torch-free scan: {len(report['results'])} file(s), 004.mp4 P(fake) {video['score']:.3f} ({video['verdict']})")
PY
echo "scan-only install: $(du -sm "$VENV" | cut -f1) MB in $VENV"
