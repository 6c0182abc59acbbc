"""The self-contained HTML report (`scan --html`, `fakescope report`) on real scans."""
from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.scan.report import render_html, write_html
from fakescope.scan.scanner import Scanner, ScanSettings


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(text: str) -> list[tuple[str, dict]]:
    parser = _Collect()
    parser.feed(text)
    return parser.tags


@pytest.fixture(scope="module")
def video_scan(shared_dir, tmp_path_factory):
    heatmaps = tmp_path_factory.mktemp("heatmaps")
    scanner = Scanner(ScanSettings(device="cpu", frames=8, heatmap_dir=str(heatmaps)))
    return scanner.scan([shared_dir / "data/ffpp-videos/real/004.mp4", shared_dir / "data/ciplab-faces/real/0.jpg"])


def test_report_shows_verdicts_people_timeline_key_frame_and_faces_offline(video_scan, tmp_path):
    target = write_html(video_scan.to_dict(), tmp_path / "report.html")
    text = target.read_text(encoding="utf-8")
    tags = _parse(text)
    video, image = video_scan.results
    assert video.verdict.upper() in text and image.verdict.upper() in text
    assert f"{video.score:.3f}" in text and f"{image.score:.3f}" in text
    # one timeline (the video only: an image is shown as an image), one line per person
    assert sum(tag == "svg" for tag, _ in tags) == 1
    assert sum(tag == "polyline" for tag, _ in tags) == len(video.tracks)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert sum(attrs.get("class") == "key" for attrs in images) == 2  # a key frame per file
    # thumbnails of every face, the heatmaps beside them, a thumbnail per person
    assert len(images) >= 2 + 2 * video.faces_found + len(video.tracks)
    # nothing is fetched from anywhere: every picture is embedded
    assert all(attrs["src"].startswith("data:image/") for attrs in images)
    assert not any(tag in ("script", "link") for tag, _ in tags)


def test_file_names_are_escaped(shared_dir, tmp_path):
    odd = tmp_path / "<b>odd<i> & 'name'.jpg"
    shutil.copy(shared_dir / "data/ciplab-faces/real/0.jpg", odd)
    report = Scanner(ScanSettings(device="cpu")).scan(odd)
    text = render_html(report.to_dict())
    assert "<b>odd" not in text and "&lt;b&gt;odd&lt;i&gt; &amp; &#x27;name&#x27;.jpg" in text


def test_report_from_json_when_the_media_has_moved(video_scan, tmp_path):
    data = video_scan.to_dict()
    data["results"][0]["path"] = str(tmp_path / "gone.mp4")
    source = tmp_path / "scan.json"
    source.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["report", str(source), "-o", str(tmp_path / "out.html")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert "not where the scan read it" in text
    assert sum(tag == "polyline" for tag, _ in _parse(text)) == len(video_scan.results[0].tracks)


def test_report_command_and_scan_html_refuse_bad_paths(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert CliRunner().invoke(app, ["report", str(bad), "-o", str(tmp_path / "r.html")]).exit_code == 2
    assert CliRunner().invoke(app, ["report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "r.html")]).exit_code == 2
    result = CliRunner().invoke(app, ["scan", str(bad), "--html", str(tmp_path)])
    assert result.exit_code == 2 and "--html" in result.output
