"""Bad inputs never crash a scan: each becomes a FileResult with a status code
(errors.STATUS_CODES) and a one-line message, and a folder scan goes on past them.

Every input is made here, in tmp_path (see media_factory.py); only the "good"
face images and the real truncated video come from the shared data.
"""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fakescope
import media_factory as mf
from fakescope import MediaLimits, Scanner, ScanSettings
from fakescope.errors import STATUS_CODES
from fakescope.scan.results import EXIT_ALL_SCORED, EXIT_NOTHING_SCORED, EXIT_SOME_FAILED, EXIT_USAGE


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def crops_scanner():
    """No face detection (inputs are taken as face crops): cheap, and enough for
    everything that fails before the faces stage."""
    return Scanner(ScanSettings(crops=True, frames=8, device="cpu"))


def scanner_with(base: Scanner, **changes) -> Scanner:
    """Another scanner sharing `base`'s loaded model (no second checkpoint load)."""
    return Scanner(dataclasses.replace(base.settings, **changes), detector=base.detector)


def assert_failed(result, status: str, path: Path | None = None) -> None:
    """A failure result: the status expected, a one-line message, nothing scored."""
    assert status in STATUS_CODES
    assert result.status == status, f"{result.status}: {result.message}"
    assert not result.ok
    assert isinstance(result.message, str) and result.message.strip()
    assert "\n" not in result.message and "Traceback" not in result.message
    if path is not None:
        assert result.path == str(path)
        assert path.name in result.message  # the message says which file
    assert result.score is None and result.verdict is None
    assert result.faces == [] and result.faces_found == 0


def scan_one(scanner: Scanner, path: Path):
    report = scanner.scan(path)  # must not raise, whatever the file
    assert len(report.results) == 1
    return report.results[0]


def real_face_images(shared_dir: Path) -> list[Path]:
    images = sorted((shared_dir / "data/mesonet-samples/real").glob("*.jpg"))
    if not images:
        pytest.skip(f"no face images in {shared_dir / 'data/mesonet-samples/real'}")
    return images


# ----------------------------------------------------------------------------- one bad file each
# name -> (function making the file in tmp_path, status expected)


def _text(tmp: Path) -> Path:  # FFmpeg's 'tty' demuxer would "open" this as a video
    path = tmp / "notes.txt"
    path.write_text("This is not a video.\nJust some lines of text.\n" * 20)
    return path


def _random_bin(tmp: Path) -> Path:
    path = tmp / "random.bin"
    path.write_bytes(np.random.default_rng(1234).bytes(8192))
    return path


def _random_mp4(tmp: Path) -> Path:  # junk with a video extension: damaged, not "not media"
    path = tmp / "random.mp4"
    path.write_bytes(np.random.default_rng(99).bytes(8192))
    return path


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.mp4"
    path.write_bytes(b"")
    return path


def _half_mp4(tmp: Path) -> Path:  # PyAV writes the index at the end: the half has none
    return mf.truncated(mf.encode_video(tmp / "whole.mp4", frames=30), tmp / "half.mp4")


def _mp4_cut_in_header(tmp: Path) -> Path:  # a web-style MP4 cut inside its 'moov' index
    whole = mf.faststart_mp4(tmp / "whole.mp4")
    return mf.cut_at(whole, tmp / "cut_in_header.mp4", mf.mp4_boxes(whole)[b"moov"][0] + 40)


def _mp4_cut_before_frames(tmp: Path) -> Path:  # index intact, frame data gone
    whole = mf.faststart_mp4(tmp / "whole.mp4")
    return mf.cut_at(whole, tmp / "cut_before_frames.mp4", mf.mp4_boxes(whole)[b"mdat"][0] + 16)


def _half_jpeg(tmp: Path) -> Path:
    return mf.truncated(mf.noise_jpeg(tmp / "whole.jpg"), tmp / "half.jpg")


def _half_png(tmp: Path) -> Path:
    return mf.truncated(mf.noise_png(tmp / "whole.png", size=128), tmp / "half.png")


def _text_as_jpeg(tmp: Path) -> Path:
    path = tmp / "text.jpg"
    path.write_text("not a picture\n" * 10)
    return path


def _unknown_codec(tmp: Path) -> Path:
    return mf.avi_unknown_codec(tmp / "zzzz.avi", fourcc=b"ZZZZ")


def _wav(tmp: Path) -> Path:
    return mf.wav_audio(tmp / "tone.wav")


def _audio_with_cover(tmp: Path) -> Path:  # the cover picture is no video stream
    return mf.audio_with_cover_art(tmp / "podcast.mp4")


CASES = {
    "text file": (_text, "not_media"),
    "random bytes .bin": (_random_bin, "not_media"),
    "random bytes .mp4": (_random_mp4, "corrupt"),
    "0-byte file": (_empty, "empty_file"),
    "first half of an mp4": (_half_mp4, "corrupt"),
    "mp4 cut inside its header": (_mp4_cut_in_header, "corrupt"),
    "mp4 cut before its frames": (_mp4_cut_before_frames, "corrupt"),
    "truncated jpeg": (_half_jpeg, "corrupt"),
    "truncated png": (_half_png, "corrupt"),
    "text named .jpg": (_text_as_jpeg, "corrupt"),
    "avi with unknown fourcc": (_unknown_codec, "unsupported_codec"),
    "wav audio": (_wav, "no_video_stream"),
    "audio mp4 with cover art": (_audio_with_cover, "no_video_stream"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_gets_a_status_not_an_exception(case, tmp_path, crops_scanner):
    make, status = CASES[case]
    path = make(tmp_path)
    assert_failed(scan_one(crops_scanner, path), status, path)


def test_missing_path_is_not_found(tmp_path, crops_scanner):
    path = tmp_path / "no" / "such" / "clip.mp4"
    assert_failed(scan_one(crops_scanner, path), "not_found", path)


def test_public_scan_function_reports_a_missing_path(tmp_path):
    report = fakescope.scan(tmp_path / "missing.jpg", crops=True, device="cpu")
    assert_failed(report.results[0], "not_found", tmp_path / "missing.jpg")
    assert report.exit_code == EXIT_NOTHING_SCORED


def test_folder_without_media_is_no_media(tmp_path, crops_scanner):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "readme.txt").write_text("nothing to see")
    (folder / "sub" / "data.bin").write_bytes(b"\x00\x01\x02")
    result = scan_one(crops_scanner, folder)
    assert_failed(result, "no_media", folder)


def test_truncated_real_video_is_corrupt(shared_dir, tmp_path, crops_scanner):
    source = shared_dir / "data/ffpp-videos/real/004.mp4"
    if not source.is_file():
        pytest.skip(f"{source} is missing")
    path = mf.truncated(source, tmp_path / "004_half.mp4")
    assert_failed(scan_one(crops_scanner, path), "corrupt", path)


# ----------------------------------------------------------------------------- limits


def _rss_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def test_web_mp4_cut_in_its_frame_data_is_scored_with_a_warning(tmp_path, crops_scanner):
    """Index up front, second half of the frames gone: what decodes is scored, and the
    result says the file is truncated rather than passing silently."""
    whole = mf.faststart_mp4(tmp_path / "whole.mp4", frames=100)
    start, end = mf.mp4_boxes(whole)[b"mdat"]
    cut = mf.cut_at(whole, tmp_path / "cut.mp4", start + (end - start) // 2)
    result = scan_one(crops_scanner, cut)
    assert result.status == "ok"
    assert result.frames_analysed < crops_scanner.settings.frames
    assert result.warnings and "truncated" in result.warnings[0]
    assert "truncated" in result.message


def test_image_bomb_is_refused_from_its_header(tmp_path, crops_scanner):
    path = mf.png_bomb(tmp_path / "bomb.png", 30000, 30000)
    assert path.stat().st_size < 1024
    peak_before, started = _rss_peak_mb(), time.perf_counter()
    result = scan_one(crops_scanner, path)
    elapsed, grown = time.perf_counter() - started, _rss_peak_mb() - peak_before
    assert_failed(result, "too_large", path)
    assert "30000x30000" in result.message
    assert elapsed < 2.0, f"took {elapsed:.1f} s: the bomb was decoded?"
    assert grown < 200, f"peak memory grew {grown:.0f} MB: the bomb was decoded?"  # decoding needs 2.7 GB


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_hours_long_video_is_refused_from_its_header(suffix, tmp_path, crops_scanner):
    path = mf.long_video(tmp_path / f"three_hours{suffix}", hours=3.0)
    assert path.stat().st_size < 50_000
    started = time.perf_counter()
    result = scan_one(crops_scanner, path)
    assert_failed(result, "too_long", path)
    assert "3:00:00" in result.message
    assert result.frames_analysed == 0
    assert time.perf_counter() - started < 5.0


def test_short_video_is_within_the_duration_limit(tmp_path, crops_scanner):
    """The long-video check above is not a false alarm on any video: a second of
    the same tiny video scores (with crops=True the whole frame is the 'face')."""
    path = mf.encode_video(tmp_path / "second.mp4", frames=25)
    result = scan_one(crops_scanner, path)
    assert result.status == "ok", result.message
    assert result.kind == "video" and result.frames_analysed == 8
    assert result.media["duration_s"] == pytest.approx(1.0, abs=0.1)


def test_file_over_the_size_limit_is_too_large(tmp_path, crops_scanner):
    path = mf.noise_png(tmp_path / "noise.png", size=64)  # ~12 KB
    scanner = scanner_with(crops_scanner, limits=MediaLimits(max_file_mb=0.001))
    result = scan_one(scanner, path)
    assert_failed(result, "too_large", path)
    assert "0.001 MB" in result.message  # the limit is written readably, not as "0 MB"
    assert_failed(scan_one(scanner, tmp_path / "gone.png"), "not_found")  # existence is checked first


def test_video_frames_over_the_pixel_limit_are_too_large(tmp_path, crops_scanner):
    path = mf.encode_video(tmp_path / "small.mkv", frames=5)  # 64x64
    scanner = scanner_with(crops_scanner, limits=MediaLimits(max_pixels=64 * 64 - 1))
    assert_failed(scan_one(scanner, path), "too_large", path)


# ----------------------------------------------------------------------------- faces


def test_images_without_a_face_are_no_face(tmp_path, crops_scanner):
    scanner = scanner_with(crops_scanner, crops=False, frames=1)  # one MTCNN pass per image
    gray = mf.gray_png(tmp_path / "gray.png", 400)
    noise = mf.noise_png(tmp_path / "noise.png", 400)
    report = scanner.scan([gray, noise])
    for result, path in zip(report.results, [gray, noise]):
        assert_failed(result, "no_face", path)
        assert result.kind == "image" and result.frames_analysed == 1
    assert report.exit_code == EXIT_NOTHING_SCORED


# ----------------------------------------------------------------------------- folders


def test_folder_scan_gives_each_file_a_status_and_goes_on(tmp_path, shared_dir, crops_scanner):
    folder = tmp_path / "mixed"
    (folder / "nested").mkdir(parents=True)
    expected = {}
    for image in real_face_images(shared_dir):
        shutil.copy(image, folder / image.name)
        expected[image.name] = "ok"
    _empty(folder)
    mf.truncated(mf.noise_jpeg(tmp_path / "whole.jpg"), folder / "nested" / "half.jpg")
    mf.png_bomb(folder / "nested" / "bomb.png")
    _unknown_codec(folder)
    mf.long_video(folder / "long.mkv")
    (folder / "notes.txt").write_text("not media; a folder scan skips it")
    expected.update({"empty.mp4": "empty_file", "half.jpg": "corrupt", "bomb.png": "too_large",
                     "zzzz.avi": "unsupported_codec", "long.mkv": "too_long"})

    missing = tmp_path / "missing.mp4"
    report = crops_scanner.scan([folder, missing])
    statuses = {Path(r.path).name: r.status for r in report.results}
    assert statuses == {**expected, "missing.mp4": "not_found"}
    for result in report.results:
        if result.ok:
            assert 0.0 <= result.score <= 1.0 and result.verdict in {"fake", "real", "uncertain"}
            assert result.kind == "image" and result.faces_found == 1
        else:
            assert_failed(result, result.status, Path(result.path))
    assert report.exit_code == EXIT_SOME_FAILED


# ----------------------------------------------------------------------------- command line


def fakescope_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FAKESCOPE_DEBUG"}  # the user's view: no tracebacks
    done = subprocess.run(
        [sys.executable, "-m", "fakescope.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert "Traceback" not in done.stdout and "Traceback" not in done.stderr, done.stderr
    return done


def _json_results(path: Path) -> dict[str, dict]:
    results = json.loads(path.read_text())["results"]
    assert isinstance(results, list)
    for r in results:
        assert {"path", "status", "score", "verdict", "message"} <= set(r)
        assert r["status"] in STATUS_CODES
        if r["status"] == "ok":
            assert 0.0 <= r["score"] <= 1.0 and r["verdict"] in {"fake", "real", "uncertain"}
        else:
            assert r["score"] is None and r["verdict"] is None and r["message"]
    return {r["path"]: r for r in results}


def test_cli_exit_0_when_everything_is_scored(tmp_path):
    images = [mf.noise_png(tmp_path / "a.png", 96, seed=1), mf.noise_jpeg(tmp_path / "b.jpg", 96, seed=2)]
    out = tmp_path / "out" / "report.json"
    done = fakescope_cli("scan", *map(str, images), "--crops", "--device", "cpu", "--json", str(out), cwd=tmp_path)
    assert done.returncode == EXIT_ALL_SCORED, done.stdout + done.stderr
    results = _json_results(out)
    assert set(results) == set(map(str, images))
    assert all(r["status"] == "ok" for r in results.values())


def test_cli_exit_1_when_some_files_fail(tmp_path):
    good = mf.noise_png(tmp_path / "good.png", 96)
    bad = {
        str(tmp_path / "missing.mp4"): "not_found",
        str(_empty(tmp_path)): "empty_file",
        str(_text(tmp_path)): "not_media",
        str(mf.png_bomb(tmp_path / "bomb.png")): "too_large",
    }
    out = tmp_path / "report.json"
    done = fakescope_cli("scan", str(good), *bad, "--crops", "--device", "cpu", "--json", str(out), cwd=tmp_path)
    assert done.returncode == EXIT_SOME_FAILED, done.stdout + done.stderr
    results = _json_results(out)
    assert {p: r["status"] for p, r in results.items()} == {str(good): "ok", **bad}


def test_cli_exit_3_when_nothing_is_scored(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    _empty(folder)
    _unknown_codec(folder)
    mf.long_video(folder / "long.mp4")
    out = tmp_path / "report.json"
    done = fakescope_cli("scan", str(folder), str(tmp_path / "nothing_here"), "--crops", "--device", "cpu",
                         "--json", str(out), cwd=tmp_path)
    assert done.returncode == EXIT_NOTHING_SCORED, done.stdout + done.stderr
    statuses = {Path(p).name: r["status"] for p, r in _json_results(out).items()}
    assert statuses == {"empty.mp4": "empty_file", "zzzz.avi": "unsupported_codec", "long.mp4": "too_long",
                        "nothing_here": "not_found"}


def test_cli_exit_2_on_an_unknown_model_with_a_suggestion(tmp_path):
    image = mf.noise_png(tmp_path / "a.png", 64)
    done = fakescope_cli("scan", str(image), "--model", "meso4_df", "--crops", cwd=tmp_path)
    assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
    assert "Did you mean" in done.stderr and "'meso4-df'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback
