"""End-to-end scans of real FF++ videos, and of videos made from them
(two people side by side, very short, variable frame rate)."""
from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from fakescope import Scanner, ScanSettings, scan
from fakescope.scan.media import load_media
from fakescope.models.calibration import verdict
from fakescope.models.zoo import DEFAULT_MODEL, load_detector


@pytest.fixture(scope="module")
def scanner():
    return Scanner(ScanSettings(frames=32))


@pytest.fixture(scope="module")
def ffpp_report(shared_dir, scanner):
    return scanner.scan(shared_dir / "data/ffpp-videos")


def _frames_of(path, count, size=None):
    info, frames = load_media(path, count)
    images = [f.image for f in frames]
    if size:
        images = [np.asarray(Image.fromarray(im).resize(size)) for im in images]
    return images


def _encode(path, images, pts_seconds=None, fps=25):
    """Write RGB frames as H.264; pts_seconds gives each frame's time (variable frame rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = int(round((pts_seconds[i] if pts_seconds else i / fps) * 1000))
            frame.time_base = stream.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_every_shared_video_is_scanned_with_faces_in_90_percent_of_frames(ffpp_report):
    assert len(ffpp_report.results) == 3
    for result in ffpp_report.results:
        assert result.status == "ok", result.message
        assert result.kind == "video" and result.frames_analysed == 32
        frames_with_face = sum(1 for f in result.frames if f.faces > 0)
        assert frames_with_face >= 0.9 * result.frames_analysed, result.path
        assert 0.0 <= result.score <= 1.0 and result.verdict in {"fake", "real", "uncertain"}
        assert any(t.used_for_verdict for t in result.tracks)
        # sampled evenly over the whole video, not just its start
        stamps = [f.timestamp for f in result.frames]
        assert stamps == sorted(stamps) and stamps[-1] > 0.9 * result.media["duration_s"]


def test_json_holds_per_face_detail(ffpp_report, tmp_path):
    ffpp_report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    entry = data["results"][0]
    assert {"path", "status", "score", "verdict", "frames", "faces", "tracks"} <= set(entry)
    face = entry["faces"][0]
    assert {"frame_index", "timestamp", "box", "landmarks", "score", "track"} <= set(face)
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    ffpp_report.write_csv(tmp_path / "r.csv")
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert len(lines) == 1 + sum(len(r.faces) for r in ffpp_report.results)


def test_two_people_get_one_track_each(shared_dir, scanner, tmp_path):
    left = _frames_of(shared_dir / "data/ffpp-videos/real/004.mp4", 12, size=(960, 540))
    right = _frames_of(shared_dir / "data/ffpp-videos/fake/519_515.mp4", 12, size=(720, 540))
    video = tmp_path / "two.mp4"
    _encode(video, [np.ascontiguousarray(np.hstack([a, b])) for a, b in zip(left, right)])
    result = scanner.scan_file(video)
    assert result.status == "ok", result.message
    voted = [t for t in result.tracks if t.used_for_verdict]
    assert len(voted) == 2
    assert all(t.faces >= 10 for t in voted)
    # the two people sit on either side of the frame
    centres = sorted(np.mean([(f.box[0] + f.box[2]) / 2 for f in result.faces if f.track == t.track]) for t in voted)
    assert centres[0] < 960 <= centres[1]


def test_video_shorter_than_requested_frames(shared_dir, scanner, tmp_path):
    images = _frames_of(shared_dir / "data/ffpp-videos/fake/519_515.mp4", 5)
    video = tmp_path / "short.mp4"
    _encode(video, images)
    result = scanner.scan_file(video)
    assert result.status == "ok" and result.frames_analysed == 5
    assert [f.frame_index for f in result.frames] == [0, 1, 2, 3, 4]
    info, frames = load_media(video, 8, run_length=8)  # one run longer than the video: all of it, no warning
    assert [f.index for f in frames] == [0, 1, 2, 3, 4] and info.warnings == []


def test_variable_frame_rate_is_sampled_by_time(shared_dir, tmp_path):
    images = _frames_of(shared_dir / "data/ffpp-videos/fake/519_515.mp4", 40, size=(160, 120))
    # first 30 frames crammed into 1 s, the last 10 spread over 9 s
    times = [i / 30 for i in range(30)] + [1 + i for i in range(10)]
    video = tmp_path / "vfr.mp4"
    _encode(video, images, pts_seconds=times)
    info, frames = load_media(video, 8)
    stamps = [f.timestamp for f in frames]
    # 8 slices of a 10 s video: at most one or two samples can come from the dense first second
    assert sum(t < 1.0 for t in stamps) <= 2
    assert stamps[-1] >= 8.0


def test_python_api_on_one_image(shared_dir):
    report = scan(shared_dir / "data/mesonet-samples/df/df00204.jpg", crops=True)
    # the default's calibrated rule (FAKE from 0.842, REAL below 0.400): this MesoNet sample scores 0.503
    threshold, band = report.settings["threshold"], report.settings["uncertain_band"]
    assert report.verdict == verdict(report.score, threshold, band) == "uncertain"
    as_dict = report.to_dict()
    assert as_dict["results"][0]["status"] == "ok"
    assert as_dict["model"]["name"] == DEFAULT_MODEL


def test_heatmaps_are_written_for_every_face(shared_dir, tmp_path):
    image = shared_dir / "data/mesonet-samples/df/df00204.jpg"
    report = scan(image, crops=True, heatmap_dir=str(tmp_path / "maps"))
    face = report.results[0].faces[0]
    written = Image.open(face.heatmap)
    size = load_detector().preprocess.input_size  # the crop as the model saw it
    assert written.size == (size, size)
    crop = np.asarray(Image.open(image).convert("RGB").resize((size, size)), dtype=float)
    assert np.abs(np.asarray(written, dtype=float) - crop).mean() > 5  # the map is really overlaid


def _set_mp4_rotation_matrix(path, matrix):
    """Overwrite the display matrix in the mp4 track header (tkhd v0: matrix at byte 40
    after the box type), as phones do for portrait video."""
    import struct

    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd") + 4 + 40
    data[at : at + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))


def test_rotation_metadata_is_applied(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :16] = 255  # a white stripe on the left
    video = tmp_path / "portrait.mp4"
    _encode(video, [image] * 3)
    # the matrix phones write for "rotate 90 degrees clockwise to display"
    _set_mp4_rotation_matrix(video, (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30))
    _, frames = load_media(video, 3)
    upright = frames[0].image
    assert upright.shape == (64, 32, 3)
    # turned clockwise, the left stripe is now the top rows
    assert upright[:14].mean() > 200 and upright[18:].mean() < 50


def test_exact_frames_align_a_fake_with_its_source(shared_dir):
    """004_982 is made from 004's frames: exact sampling picks the same frame indices
    in both, whatever reference structure each encode has."""
    _, source = load_media(shared_dir / "data/ffpp-videos/real/004.mp4", 16, exact_frames=True)
    _, fake = load_media(shared_dir / "data/ffpp-videos/fake/004_982.mp4", 16, exact_frames=True)
    assert [f.index for f in source] == [f.index for f in fake]
    assert len(source) == 16
    # frames are the ones nearest each slice centre: 309 frames at 25 fps, 16 slices
    duration = 309 / 25
    for k, frame in enumerate(source):
        assert abs(frame.timestamp - duration * (k + 0.5) / 16) <= 1 / 25 + 1e-6


def test_runs_of_consecutive_frames_seek_to_the_same_frames_as_decoding_through(shared_dir):
    """run_length: 519_515 (30 s, 4 runs: over 4 s a run) seeks to each run; its frames are
    the very frames found by decoding from the start, at the same indices. 004 (12 s, 16
    runs) is decoded once; its runs sit at the slice centres."""
    path = shared_dir / "data/ffpp-videos/fake/519_515.mp4"
    _, frames = load_media(path, 32, run_length=8)
    indices = [f.index for f in frames]
    runs = [indices[i:i + 8] for i in range(0, 32, 8)]
    assert all(run == list(range(run[0], run[0] + 8)) for run in runs), indices
    wanted = {f.index: f.image for f in frames}
    with av.open(str(path)) as container:
        for position, frame in enumerate(container.decode(video=0)):
            if position in wanted:
                assert np.array_equal(frame.to_ndarray(format="rgb24"), wanted.pop(position)), position
            if not wanted:
                break
    assert not wanted

    _, frames = load_media(shared_dir / "data/ffpp-videos/real/004.mp4", 64, exact_frames=True, run_length=4)
    indices = [f.index for f in frames]
    assert len(indices) == 64 and indices == sorted(set(indices))
    for k in range(16):
        run = indices[4 * k:4 * k + 4]
        assert run == list(range(run[0], run[0] + 4))
        centre = (run[0] + run[-1] + 1) / 2 / 25  # seconds
        assert abs(centre - 309 / 25 * (k + 0.5) / 16) <= 1 / 25 + 1e-6


def test_scan_with_runs_and_a_frame_count_that_is_not_a_multiple(shared_dir):
    from fakescope.errors import FakescopeError

    result = Scanner(ScanSettings(frames=8, run_length=4)).scan_file(shared_dir / "data/ffpp-videos/real/004.mp4")
    indices = [f.frame_index for f in result.frames]
    assert result.status == "ok" and len(indices) == 8
    assert indices[:4] == list(range(indices[0], indices[0] + 4)) and indices[4:] == list(range(indices[4], indices[4] + 4))
    with pytest.raises(FakescopeError, match="multiple of --run-length"):
        Scanner(ScanSettings(frames=6, run_length=4))


def test_detecting_every_second_frame_keeps_every_face_and_close_scores(shared_dir):
    """--detect-every 2: MTCNN on keyframes, boxes interpolated between; on a real 720p clip every
    sampled frame still has its face, and the file's P(fake) stays near the full scan's."""
    from fakescope.scan.face_detectors import KeyframeTracker
    from fakescope.scan.scanner import Scanner, ScanSettings

    video = shared_dir / "data/ffpp-videos/real/004.mp4"
    full = Scanner(ScanSettings(device="cpu")).scan(video).results[0]
    tracked_scanner = Scanner(ScanSettings(device="cpu", detect_every=2))
    tracked = tracked_scanner.scan(video).results[0]
    assert isinstance(tracked_scanner.face_detector, KeyframeTracker)
    assert tracked.faces_found == full.faces_found == 32
    assert abs(tracked.score - full.score) < 0.05
