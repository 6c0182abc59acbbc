"""The page in a real browser: Debian's Chromium (apt-get install chromium) driven by Playwright,
offline. Upload a video, wait for the verdict, check the timeline and the faces, screenshot."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from serve_helpers import ServerProcess

TOKEN = "page-test-token-1"
SCREENSHOT_DIR = Path(os.environ.get("FAKESCOPE_SCREENSHOTS", Path(__file__).resolve().parents[1] / "runs"))


def chromium() -> str:
    found = os.environ.get("FAKESCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("FAKESCOPE_REQUIRE_BROWSER"):  # CI installs it: there a missing browser is a failure
            pytest.fail("chromium not found (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    return found


# flags for a headless browser in a container, with nothing reaching out to the network
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--disable-default-apps", "--disable-extensions"]


@pytest.mark.slow
def test_upload_a_video_and_see_the_verdict_timeline_and_faces(shared_dir, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    video = shared_dir / "data/ffpp-videos/real/004.mp4"
    with ServerProcess(tmp_path / "data", "--frames", "16", token=TOKEN) as server, \
            playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            failed_requests: list[str] = []
            page.on("requestfailed", lambda request: failed_requests.append(request.url))
            page.on("response", lambda r: r.status >= 400 and failed_requests.append(f"{r.status} {r.url}"))
            page.on("console", lambda m: m.type == "error" and failed_requests.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: failed_requests.append(f"page error: {e}"))
            page.goto(f"{server.url}/?token={TOKEN}")  # the link serve prints; the token moves to a cookie
            assert page.url == f"{server.url}/"
            page.set_input_files("#file-input", str(video))
            upload = page.locator(".upload").first
            upload.locator(".verdict .v").wait_for(timeout=120_000)
            verdict = upload.locator(".verdict .v").inner_text()
            assert verdict in ("REAL", "FAKE", "UNCERTAIN")
            page.locator("#result svg polyline").first.wait_for(timeout=30_000)  # the timeline, one line per person
            result = page.locator("#result")
            assert "004.mp4" in result.locator("h2").first.inner_text()
            assert result.locator(".v").first.inner_text() == verdict
            assert result.locator("table.people tr").count() >= 2  # header + one row per person
            assert result.locator("table.people img").count() >= 1  # the person's thumbnail
            faces = result.locator(".faces .face")
            assert faces.count() == 16  # one face in each of the 16 frames, with thumbnail and heatmap
            assert faces.first.locator("img").count() == 2
            images = result.locator("img")
            for _ in range(100):  # every picture loaded (polled: the page's CSP forbids wait_for_function's eval)
                if images.evaluate_all("all => all.every(i => i.complete && i.naturalWidth > 0)"):
                    break
                page.wait_for_timeout(100)
            assert images.evaluate_all("all => all.every(i => i.complete && i.naturalWidth > 0)")
            assert result.locator("img.key").count() == 2  # annotated key frame and its forgery map
            assert "efficientnet-lite0-faces" in result.inner_text()  # the model and its provenance
            page.locator("#jobs tbody tr").first.wait_for()
            assert "004.mp4" in page.locator("#jobs tbody tr").first.inner_text()
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT_DIR / "serve-page.png"), full_page=True)
            # a photo dropped on the page (drag and drop): its own row and progress bar, shown as an image
            photo = shared_dir / "data/ciplab-faces/real/0.jpg"
            transfer = page.evaluate_handle(
                "(b64) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));"
                " const dt = new DataTransfer(); dt.items.add(new File([bytes], '0.jpg', {type: 'image/jpeg'}));"
                " return dt; }", base64.b64encode(photo.read_bytes()).decode())
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
            page.locator(".upload").nth(1).wait_for()
            dropped = page.locator(".upload").first
            assert "0.jpg" in dropped.locator(".name").inner_text()
            dropped.locator(".verdict .v").wait_for(timeout=60_000)
            assert page.locator(".upload progress").count() == 2
            dropped.click()
            page.locator("#result h2", has_text="0.jpg").wait_for()
            assert result.locator("svg").count() == 0 and "an image of 330x434" in result.inner_text()
            page.locator("#jobs tbody tr").nth(1).wait_for()
            page.screenshot(path=str(SCREENSHOT_DIR / "serve-page-image.png"), full_page=True)
            assert not failed_requests, failed_requests
        finally:
            browser.close()
