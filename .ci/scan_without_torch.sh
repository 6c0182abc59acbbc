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
# The service runs on the same install: start it, upload the image over HTTP, wait for its verdict.
"$VENV/bin/python" - "$image" "$out/serve-data" <<'PY'
import json, socket, subprocess, sys, time, urllib.request
image, data = sys.argv[1], sys.argv[2]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "fakescope", "serve", "--port", str(port), "--data-dir", data])
base = f"http://127.0.0.1:{port}/api/v1"
try:
    for _ in range(300):
        try:
            if json.load(urllib.request.urlopen(base + "/health"))["workers_alive"] == 1:
                break
        except OSError:
            pass
        time.sleep(0.2)
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="0.jpg"\r\n\r\n'
            + open(image, "rb").read() + b"\r\n--B--\r\n")
    request = urllib.request.Request(base + "/jobs", data=body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    job = json.load(urllib.request.urlopen(request))
    for _ in range(600):
        job = json.load(urllib.request.urlopen(f"{base}/jobs/{job['id']}"))
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert (job["state"], job["status"]) == ("done", "ok"), job
    print(f"torch-free serve: 0.jpg P(fake) {job['score']:.3f} ({job['verdict']}), {len(job['files'])} picture(s)")
finally:
    server.terminate(); server.wait(20)
PY
echo "scan-only install: $(du -sm "$VENV" | cut -f1) MB in $VENV"
