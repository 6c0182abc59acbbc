"""`fakescope serve` end to end over HTTP: a real server process, real uploads of the shared
videos, results compared with `fakescope scan --json` on the same files."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from serve_helpers import API, ServerProcess, worker_processes

TOKEN = "analyst-one-token"
OTHER_TOKEN = "analyst-two-token"
FRAMES = "8"


@pytest.fixture(scope="module")
def videos(shared_dir):
    return [shared_dir / "data/ffpp-videos/real/004.mp4", shared_dir / "data/ffpp-videos/fake/004_982.mp4",
            shared_dir / "data/ffpp-videos/fake/519_515.mp4"]


@pytest.fixture(scope="module")
def photo(shared_dir):
    return shared_dir / "data/ciplab-faces/real/0.jpg"


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory, videos):
    """The first 40 KB of a real MP4: a download cut short."""
    path = tmp_path_factory.mktemp("bad") / "cut.mp4"
    path.write_bytes(videos[0].read_bytes()[:40_000])
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("serve") / "data"
    with ServerProcess(data, "--frames", FRAMES, "--token", OTHER_TOKEN, token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def scanned(server, videos, photo, bad_file):
    """Every shared video, a photo and the bad file, uploaded at once and waited for."""
    jobs = {}
    for path in [*videos, photo, bad_file]:
        response = server.submit(path)
        assert response.status_code == 201, response.text
        jobs[path.name] = response.json()
    return {name: server.wait(job["id"]) for name, job in jobs.items()}


@pytest.fixture(scope="module")
def cli_scan(videos, photo, bad_file, tmp_path_factory):
    target = tmp_path_factory.mktemp("cli") / "scan.json"
    subprocess.run([sys.executable, "-m", "fakescope", "scan", *map(str, videos), str(photo), str(bad_file), "--frames", FRAMES,
                    "--json", str(target), "--quiet"], check=False, capture_output=True, timeout=600)
    return {result["path"].rsplit("/", 1)[-1]: result for result in json.loads(target.read_text())["results"]}


COMPARED = ("status", "kind", "verdict", "frames_analysed", "faces_found")


def test_results_over_http_equal_scan_json(server, scanned, cli_scan):
    for name, job in scanned.items():
        assert job["state"] == "done", job
        result = server.get(f"{API}/jobs/{job['id']}/result").json()
        ours, cli = result["results"][0], cli_scan[name]
        assert ours["path"] == name  # the name it was uploaded under, not the server's path
        for key in COMPARED:
            assert ours[key] == cli[key], (name, key)
        if cli["status"] != "ok":
            continue
        assert ours["score"] == pytest.approx(cli["score"], abs=1e-6)
        assert [f["score"] for f in ours["faces"]] == pytest.approx([f["score"] for f in cli["faces"]], abs=1e-6)
        assert [f["box"] for f in ours["faces"]] == [f["box"] for f in cli["faces"]]
        assert [(t["track"], t["faces"], t["verdict"]) for t in ours["tracks"]] == \
            [(t["track"], t["faces"], t["verdict"]) for t in cli["tracks"]]
        assert result["model"]["name"] == "efficientnet-lite0-faces"
        frames = 1 if cli["kind"] == "image" else int(FRAMES)
        assert job["progress"]["frames_done"] == job["progress"]["frames_total"] == frames
        assert job["verdict"] == cli["verdict"] and job["score"] == pytest.approx(cli["score"], abs=1e-6)


def test_a_cut_off_video_ends_done_with_its_scan_status(scanned, server):
    job = scanned["cut.mp4"]
    assert (job["state"], job["status"]) == ("done", "corrupt")
    result = server.get(f"{API}/jobs/{job['id']}/result").json()["results"][0]
    assert result["status"] == "corrupt" and "cut.mp4" in result["message"]
    assert str(server.data_dir) not in json.dumps(result)  # no server paths in what users see


def test_pictures_view_and_report(scanned, server):
    job = scanned["004_982.mp4"]
    names = set(job["files"])
    faces = server.get(f"{API}/jobs/{job['id']}/result").json()["results"][0]["faces"]
    assert {"keyframe.jpg", "keyframe-map.jpg"} <= names
    assert {f"face-{i:04d}.png" for i in range(len(faces))} <= names
    assert {f"heatmap-{i:04d}.png" for i in range(len(faces))} <= names
    assert {f"mask-{i:04d}.png" for i in range(len(faces))} <= names
    assert faces[0]["mask"] == "files/mask-0000.png" and faces[0]["thumbnail"] == "files/face-0000.png"
    thumb = server.get(f"{API}/jobs/{job['id']}/files/face-0000.png")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert thumb.content[:8] == b"\x89PNG\r\n\x1a\n"
    key = server.get(f"{API}/jobs/{job['id']}/files/keyframe-map.jpg")
    assert key.headers["content-type"] == "image/jpeg" and key.content[:3] == b"\xff\xd8\xff"
    view = server.get(f"{API}/jobs/{job['id']}/view").text
    assert "<svg" in view and f"{API}/jobs/{job['id']}/files/keyframe-map.jpg" in view and "Model" in view
    report = server.get(f"{API}/jobs/{job['id']}/report")
    assert "attachment" in report.headers["content-disposition"]
    assert report.text.count("data:image/") >= len(faces) and f"{API}/" not in report.text  # self-contained


def test_an_image_is_shown_as_an_image(scanned, server):
    job = scanned["0.jpg"]
    assert (job["state"], job["kind"]) == ("done", "image")
    view = server.get(f"{API}/jobs/{job['id']}/view").text
    assert "<svg" not in view and "<th>frames</th>" not in view and "frame 0," not in view
    assert "an image of 330x434" in view and "keyframe.jpg" in view


def test_the_page_is_served_with_a_strict_policy(server):
    page = server.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-content-type-options"] == "nosniff"
    assert "http" not in page.text.replace(server.url, "")  # nothing from another origin (no CDN)


def test_jobs_list_with_progress_and_per_token_isolation(scanned, server):
    listed = server.get(f"{API}/jobs").json()
    assert {job["id"] for job in listed["jobs"]} >= {job["id"] for job in scanned.values()}
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    assert server.get(f"{API}/jobs", headers=other).json() == {"jobs": [], "total": 0}
    some = next(iter(scanned.values()))
    for path in (f"{API}/jobs/{some['id']}", f"{API}/jobs/{some['id']}/result", f"{API}/jobs/{some['id']}/files/face-0000.png"):
        assert server.get(path, headers=other).status_code == 404
    assert requests.delete(server.url + f"{API}/jobs/{some['id']}", headers=other, timeout=10).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-123"}, {"Authorization": TOKEN}])
def test_every_route_and_the_page_need_the_token(server, headers):
    for path in (f"{API}/health", f"{API}/jobs", "/", "/static/app.js", f"{API}/jobs/{'0' * 32}"):
        assert server.get(path, headers=headers).status_code == 401, path
    assert requests.post(server.url + f"{API}/jobs", headers=headers, files={"file": ("a.jpg", b"x")},
                         timeout=10).status_code == 401


def test_the_printed_link_logs_the_page_in_with_a_cookie(server):
    session = requests.Session()
    page = session.get(server.url + f"/?token={TOKEN}", timeout=10)
    assert page.status_code == 200 and "fakescope" in page.text and session.cookies.get("fakescope_token") == TOKEN
    assert session.get(server.url + "/static/app.js", timeout=10).status_code == 200
    assert session.get(server.url + f"{API}/jobs", timeout=10).status_code == 200


def test_traversal_and_listing_attempts_get_nothing(server, scanned):
    some = scanned["004.mp4"]["id"]
    for path in (f"{API}/jobs/{some}/files/..%2Fresult.json", f"{API}/jobs/{some}/files/..%2F..%2F..%2Fjobs.sqlite3",
                 f"{API}/jobs/{some}/files/input.mp4", f"{API}/jobs/{some}/files/", f"{API}/jobs/..%2F..%2Fjobs.sqlite3",
                 "/static/", "/static/..%2Fapp.py", "/static/index.html%00", "/jobs.sqlite3", "/jobs/", f"/jobs/{some}"):
        response = server.get(path)
        assert response.status_code in (404, 405, 422), (path, response.status_code)
        assert b"SQLite" not in response.content and b"import " not in response.content


def test_an_uploaded_name_never_becomes_a_path(server, videos, tmp_path):
    response = server.submit(videos[0], name="../../../escape.mp4")
    assert response.status_code == 201
    job = response.json()
    assert job["filename"] == "escape.mp4"
    assert not (server.data_dir.parent / "escape.mp4").exists() and not (server.data_dir / "escape.mp4").exists()
    assert sorted(p.name for p in (server.data_dir / "jobs" / job["id"]).iterdir())[:1] == ["input.mp4"]
    server.wait(job["id"])


def test_malformed_uploads_are_4xx(server):
    url = server.url + f"{API}/jobs"
    assert requests.post(url, headers=server.headers, data=b"raw bytes", timeout=10).status_code == 400
    assert requests.post(url, headers=server.headers, files={"other": ("a.jpg", b"x")}, timeout=10).status_code == 400
    cut = requests.post(url, headers={**server.headers, "Content-Type": "multipart/form-data; boundary=XX"},
                        data=b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\"\r\n\r\nabc",
                        timeout=10)
    assert cut.status_code == 400 and "ended" in cut.json()["detail"]


def test_deleting_a_job_removes_it_and_its_files(server, videos):
    job = server.wait(server.submit(videos[0]).json()["id"])
    folder = server.data_dir / "jobs" / job["id"]
    assert folder.is_dir()
    assert requests.delete(server.url + f"{API}/jobs/{job['id']}", headers=server.headers, timeout=10).status_code == 204
    assert server.get(f"{API}/jobs/{job['id']}").status_code == 404
    assert server.get(f"{API}/jobs/{job['id']}/files/face-0000.png").status_code == 404
    assert not folder.exists()


def test_deleting_a_running_job_stops_its_scan(server, videos):
    job = server.submit(videos[2]).json()
    deadline = time.monotonic() + 60
    while server.job(job["id"])["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests.delete(server.url + f"{API}/jobs/{job['id']}", headers=server.headers, timeout=10).status_code == 204
    time.sleep(3)  # the supervisor restarts the killed worker; nothing recreates the job
    assert not (server.data_dir / "jobs" / job["id"]).exists()
    assert len(worker_processes(server.data_dir)) == 1
    assert server.get(f"{API}/health").json()["workers_alive"] == 1


# ----------------------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    data = tmp_path_factory.mktemp("strict") / "data"
    # 32 frames of 720p take well over a second on CPU: a 0.5 s limit always cuts them off
    with ServerProcess(data, "--frames", "32", "--max-upload-mb", "3", "--max-duration", "20",
                       "--max-queue", "2", "--job-timeout", "0.5") as running:
        yield running


def test_upload_cap_is_413_before_the_file_is_stored(strict_server, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(4 * 2**20))  # 4 MB against 3
    response = strict_server.submit(big)
    assert response.status_code == 413
    assert "--max-upload-mb" in response.json()["detail"]
    assert list((strict_server.data_dir / "jobs").iterdir()) == []


def test_an_upload_without_a_length_is_cut_off_at_the_cap(strict_server):
    """Chunked (no Content-Length): the server counts bytes as they arrive and stops at the cap."""
    def body():
        yield b'--XX\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(64):  # 4 MB in 64 KB pieces
            yield bytes(64 * 1024)
        yield b"\r\n--XX--\r\n"

    try:
        response = requests.post(strict_server.url + f"{API}/jobs", data=body(), timeout=30,
                                 headers={"Content-Type": "multipart/form-data; boundary=XX"})
        assert response.status_code == 413
    except requests.ConnectionError:  # the server answered 413 and closed while we were still sending
        pass
    assert list((strict_server.data_dir / "jobs").iterdir()) == []
    assert strict_server.get(f"{API}/jobs").json()["total"] == 0


def test_file_limits_are_refused_at_upload(strict_server, videos, tmp_path):
    too_long = strict_server.submit(videos[2])  # 30 s against 20
    assert too_long.status_code == 413 and too_long.json()["status"] == "too_long"
    assert "519_515.mp4" in too_long.json()["detail"] and str(strict_server.data_dir) not in too_long.json()["detail"]
    from PIL import Image

    Image.new("RGB", (8000, 7000), (90, 120, 150)).save(tmp_path / "huge.png")  # 56 MP, over the default 50
    big_image = strict_server.submit(tmp_path / "huge.png")
    assert big_image.status_code == 413 and big_image.json()["status"] == "too_large"
    assert "--max-megapixels" in big_image.json()["detail"]
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert strict_server.submit(empty).status_code == 422
    assert list((strict_server.data_dir / "jobs").iterdir()) == []


def test_queue_cap_is_429_and_the_time_limit_fails_the_job(strict_server, videos):
    first = strict_server.submit(videos[1])
    second = strict_server.submit(videos[1])
    third = strict_server.submit(videos[1])
    assert (first.status_code, second.status_code) == (201, 201)
    assert third.status_code == 429 and third.headers["retry-after"]
    ended = [strict_server.wait(r.json()["id"], timeout=120) for r in (first, second)]
    assert [(job["state"], job["status"]) for job in ended] == [("failed", "time_limit")] * 2
    assert "--job-timeout" in ended[0]["message"]
    assert strict_server.get(f"{API}/jobs/{ended[0]['id']}/result").status_code == 409
    assert strict_server.submit(videos[1]).status_code == 201  # room again
