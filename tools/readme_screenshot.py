"""Make docs/serve-page.png, README's screenshot of `fakescope serve`'s page.

    python tools/readme_screenshot.py [--out docs/serve-page.png]

No FF++ or DFDC picture may enter the repository (research-only terms), so the page shows a
4-second clip made here from two of the sample faces MesoNet's authors publish under Apache-2.0
(`mesonet-samples`: one real, one deepfake), drifting side by side on a grey canvas: two people,
so two tracks on the timeline. The clip is uploaded through the page in Debian's Chromium (as
tests/test_serve_page.py does) and the page is captured once the verdict is in.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from serve_helpers import ServerProcess  # noqa: E402
from test_serve_page import CHROMIUM_FLAGS, chromium  # noqa: E402

TOKEN = "readme-screenshot"


def make_clip(shared: Path, target: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    faces = [Image.open(shared / "data/mesonet-samples" / name).convert("RGB").resize((220, 220))
             for name in ("real/real00240.jpg", "df/df01254.jpg")]
    faces = [np.asarray(face) for face in faces]
    with av.open(str(target), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.bit_rate = 4_000_000
        for i in range(int(seconds * fps)):
            canvas = np.full((360, 640, 3), 96, np.uint8)
            drift = int(12 * math.sin(2 * math.pi * i / (seconds * fps)))
            for face, left in zip(faces, (70, 350)):
                top = 70 + drift
                canvas[top:top + 220, left + drift:left + drift + 220] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/serve-page.png")
    parser.add_argument("--height", type=int, default=1700, help="crop the full-page capture to this many px")
    args = parser.parse_args()
    shared = Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="fakescope-shot-") as folder:
        clip = make_clip(shared, Path(folder) / "two-people.mp4")
        with ServerProcess(Path(folder) / "data", "--frames", "16", token=TOKEN) as server, sync_playwright() as driver:
            server.wait(server.submit(shared / "data/mesonet-samples/df/df00204.jpg").json()["id"])  # a past job
            browser = driver.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{server.url}/?token={TOKEN}")
            page.set_input_files("#file-input", str(clip))
            page.locator(".upload .verdict .v").first.wait_for(timeout=120_000)
            page.locator("#result svg polyline").first.wait_for(timeout=30_000)
            for _ in range(100):
                if page.locator("#result img").evaluate_all("all => all.every(i => i.complete)"):
                    break
                page.wait_for_timeout(100)
            capture = Path(folder) / "page.png"
            page.screenshot(path=str(capture), full_page=True)
            browser.close()
        image = Image.open(capture)
        image = image.crop((0, 0, image.width, min(image.height, args.height)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
