"""Video heads in `scan --video-head` and `evaluate --video-head`: a face track's (or a video's)
score from the model's `video_logits` over its frames' features, checked against the same
numbers computed by hand from a small random M2TR; without the option nothing changes."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fakescope.models.video import video_head_probability, video_windows
from fakescope.cli import app
from fakescope.data.dataset import FaceCropDataset
from fakescope.data.manifest import Manifest, Sample
from fakescope.errors import FakescopeError
from fakescope.scan.faces import crop_face
from fakescope.scan.media import load_media
from fakescope.models.base import PreprocessSpec, build_model, load_checkpoint, save_checkpoint
from fakescope.models.m2tr import IMAGENET_MEAN, IMAGENET_STD
from fakescope.scan.scanner import Scanner, ScanSettings

SMALL = 64
FRAMES = 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def checkpoint(shared_dir, tmp_path_factory):
    """A random M2TR at 64 px whose temporal head has 'seen' 4-frame clips.

    Its batch-norm statistics are set from 15 real face crops: with the initial ones its features
    are ~1e-5 and every face scores the same, so a head over features could not be told from a
    mean of scores."""
    torch.manual_seed(0)
    model = build_model("m2tr", input_size=SMALL)
    preprocess = PreprocessSpec(input_size=SMALL, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)
    crops = Manifest.read(shared_dir / "data/ffpp-crops")
    dataset = FaceCropDataset(crops, preprocess)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batch
    with torch.no_grad():
        model.train()(torch.stack([dataset[i]["image"] for i in range(0, len(crops), 8)]))
    for norm in norms:
        norm.momentum = 0.1
    model.eval().temporal_trained_frames.fill_(FRAMES)
    path = tmp_path_factory.mktemp("m2tr") / "m2tr-small.pt"
    save_checkpoint(path, model, "m2tr", preprocess, arch_kwargs={"input_size": SMALL})
    return path


@pytest.fixture(scope="module")
def video(shared_dir):
    return shared_dir / "data/ffpp-videos/real/004.mp4"


class Scans:
    """Scanners sharing one loaded model and one face detector (each scan still runs everything)."""

    def __init__(self, checkpoint):
        self.detector = load_checkpoint(checkpoint)
        self.face_detector = None

    def run(self, path, **settings):
        scanner = Scanner(ScanSettings(model="unused", frames=FRAMES, device="cpu", **settings), detector=self.detector)
        torch.set_num_threads(1)  # the Scanner takes every core on CPU; these tests share them
        if self.face_detector is not None:
            scanner._face_detector = self.face_detector
        report = scanner.scan(path)
        self.face_detector = scanner._face_detector
        result = report.results[0]
        assert result.status == "ok", result.message
        return report, result


@pytest.fixture(scope="module")
def scans(checkpoint):
    return Scans(checkpoint)


@pytest.fixture(scope="module")
def by_hand(scans, video):
    """Each face of the track, cut and scored outside the scanner: (features in frame order, face scores)."""
    info, frames = load_media(video, FRAMES)
    _, result = scans.run(video)  # builds the face detector
    faces = scans.face_detector.detect([f.image for f in frames])
    model, spec = scans.detector.model, scans.detector.preprocess
    crops = [crop_face(frame.image, per_frame[0].box, spec.margin, spec.input_size)
             for frame, per_frame in zip(frames, faces) if per_frame]
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    batch = (batch - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(batch)
    return out["features"], torch.sigmoid(out["logits"]), result


def test_the_video_is_one_track_of_one_face_per_frame(by_hand):
    features, scores, default = by_hand
    assert len(default.tracks) == 1 and default.tracks[0].faces == FRAMES == len(features)
    # the faces cut by hand are the scanner's: same frame scores
    np.testing.assert_allclose([f.score for f in default.faces], scores.numpy(), rtol=0, atol=1e-5)


def test_mean_head_track_score_is_the_classifier_on_the_mean_feature(scans, video, by_hand):
    features, _, _ = by_hand
    model = scans.detector.model
    with torch.no_grad():
        expected = torch.sigmoid(model.classifier(features.mean(dim=0))).item()
    report, result = scans.run(video, video_head="mean")
    track = result.tracks[0]
    assert track.score == pytest.approx(expected, abs=1e-5)
    assert (track.score_source, track.windows) == ("video_head:mean", 1)
    assert result.score == pytest.approx(expected, abs=1e-5)  # the max over the one voting track
    assert result.verdict == ("fake" if expected >= 0.5 else "real")
    # the mean of the features is not the mean of the scores: the head is really used
    assert abs(expected - np.mean([f.score for f in result.faces])) > 1e-6
    data = report.to_dict()
    assert data["settings"]["video_head"] == "mean"
    assert data["results"][0]["tracks"][0]["score_source"] == "video_head:mean"


def test_temporal_head_track_score_is_finite_and_uses_frame_order(scans, video, by_hand):
    features, _, _ = by_hand
    model = scans.detector.model
    with torch.no_grad():
        expected = torch.sigmoid(model.video_logits(features.unsqueeze(0), "temporal")).item()
        reversed_order = torch.sigmoid(model.video_logits(features.flip(0).unsqueeze(0), "temporal")).item()
    _, result = scans.run(video, video_head="temporal")
    track = result.tracks[0]
    assert np.isfinite(track.score) and 0.0 <= track.score <= 1.0
    assert track.score == pytest.approx(expected, abs=1e-5) and abs(expected - reversed_order) > 1e-6
    assert (track.score_source, track.windows) == ("video_head:temporal", 1)


def test_long_tracks_are_scored_in_windows_of_the_trained_clip_length(scans, video, by_hand):
    features, _, _ = by_hand
    model = scans.detector.model
    model.temporal_trained_frames.fill_(2)  # as if trained on 2-frame clips: 4 faces -> 2 windows
    try:
        with torch.no_grad():
            halves = [torch.sigmoid(model.video_logits(features[a:b].unsqueeze(0), "temporal")).item()
                      for a, b in ((0, 2), (2, 4))]
        _, result = scans.run(video, video_head="temporal")
    finally:
        model.temporal_trained_frames.fill_(FRAMES)
    assert result.tracks[0].windows == 2
    assert result.tracks[0].score == pytest.approx(np.mean(halves), abs=1e-5)


def test_masks_path_gives_the_same_video_score(scans, video, tmp_path):
    _, plain = scans.run(video, video_head="temporal")
    _, with_masks = scans.run(video, video_head="temporal", masks_dir=str(tmp_path / "masks"))
    assert with_masks.tracks[0].score == pytest.approx(plain.tracks[0].score, abs=1e-6)
    assert all(f.mask for f in with_masks.faces)


def test_without_a_video_head_tracks_are_the_mean_face_score(scans, video, by_hand):
    _, _, default = by_hand
    report, again = scans.run(video)
    track = again.tracks[0]
    assert (track.score_source, track.windows) == ("frame_mean", None)
    assert track.score == pytest.approx(float(np.mean([f.score for f in again.faces])), abs=1e-12)
    assert again.score == pytest.approx(track.score, abs=1e-12)  # max_track_mean of the one track
    assert [f.score for f in again.faces] == [f.score for f in default.faces]
    assert report.to_dict()["settings"]["video_head"] is None


def test_windows_are_consecutive_near_equal_and_cover_every_frame():
    assert video_windows(5, None) == [range(5)] and video_windows(5, 8) == [range(5)]
    assert video_windows(40, 32) == [range(0, 20), range(20, 40)]
    windows = video_windows(65, 32)
    assert [len(w) for w in windows] == [22, 21, 22] and [i for w in windows for i in w] == list(range(65))
    assert video_windows(0, 4) == []


def test_video_head_probability_averages_window_probabilities():
    torch.manual_seed(0)
    model = build_model("m2tr", input_size=SMALL).eval()
    model.temporal_trained_frames.fill_(3)
    features = torch.randn(7, 1792)  # windows of 2, 3, 2 frames
    probability, windows = video_head_probability(model, features, "temporal")
    with torch.no_grad():
        parts = [torch.sigmoid(model.video_logits(features[a:b][None], "temporal")).item() for a, b in ((0, 2), (2, 5), (5, 7))]
    assert windows == 3 and probability == pytest.approx(np.mean(parts), abs=1e-6)


# ---------------------------------------------------------------------------- usage errors


def _scan_cli(*args):
    return CliRunner().invoke(app, ["scan", *args, "--frames", "2", "--device", "cpu", "--quiet"])


def test_a_model_without_video_heads_is_exit_2_naming_the_ones_that_have_them(video):
    result = _scan_cli(str(video), "--model", "meso4-df", "--video-head", "mean")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "error:" in lines[0]
    assert "'meso4' has no video heads" in lines[0] and "m2tr (mean, temporal)" in lines[0]


def test_an_unknown_head_is_exit_2_naming_the_models_heads(video, checkpoint):
    result = _scan_cli(str(video), "--model", str(checkpoint), "--video-head", "lstm")
    assert result.exit_code == 2, result.output
    assert "no video head 'lstm'" in result.output and "its video heads are: mean, temporal" in result.output


def test_aggregation_policies_do_not_combine_with_a_video_head(checkpoint):
    with pytest.raises(FakescopeError, match="--aggregation mean"):
        Scanner(ScanSettings(model=str(checkpoint), device="cpu", video_head="mean", aggregation="mean"))


# ---------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def clip_manifest(shared_dir, tmp_path_factory):
    """8 ffpp-crops faces as 4 two-frame videos (2 real, 2 fake), rows not in frame order."""
    crops = Manifest.read(shared_dir / "data/ffpp-crops")
    reals = [s for s in crops if s.label == 0][:4]
    fakes = [s for s in crops if s.label == 1][:4]
    samples = []
    for n, group in enumerate((reals[:2], reals[2:], fakes[:2], fakes[2:])):
        method = "original" if group[0].label == 0 else "deepfakes"
        for frame, sample in zip((7, 3), group):  # manifest order: frame 7 before frame 3
            samples.append(Sample(path=str(crops.resolve(sample.path)), label=sample.label, video=f"v{n}",
                                  method=method, frame=frame))
    path = tmp_path_factory.mktemp("clips") / "manifest.csv"
    Manifest(samples, path.parent).write(path)
    return path


def _evaluate_cli(checkpoint, manifest, out, *extra):
    result = CliRunner().invoke(app, [
        "evaluate", str(checkpoint), f"clips={manifest}", "--device", "cpu", "--batch-size", "4",
        "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--predictions", str(out / "p.csv"), *extra,
    ])
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "r.json").read_text())


def test_evaluate_video_head_scores_videos_from_frame_features_in_frame_order(checkpoint, clip_manifest, tmp_path):
    (tmp_path / "mean").mkdir()
    (tmp_path / "head").mkdir()
    _, plain = _evaluate_cli(checkpoint, clip_manifest, tmp_path / "mean")
    result, headed = _evaluate_cli(checkpoint, clip_manifest, tmp_path / "head", "--video-head", "temporal")
    assert "video head 'temporal'" in result.output
    # frame level unchanged; video level from the head
    for key in ("auc", "acc", "logloss", "n"):
        assert headed[key] == plain[key]
    assert plain["video_head"] is None and plain["video"]["score_source"] == "frame_mean"
    assert headed["video_head"] == "temporal" and headed["video"]["score_source"] == "video_head:temporal"
    video = headed["datasets"]["clips"]["video"]
    assert (video["n"], video["n_frames"], video["n_fake"], video["n_real"]) == (4, 8, 2, 2)
    assert video["auc"] is not None and headed["video"]["logloss"] != plain["video"]["logloss"]
    assert "temporal" in headed["protocol"]["video"]
    assert "video head `temporal`" in (tmp_path / "head" / "r.md").read_text()
    # each video's score by hand: the head over its two frames' features, frame 3 before frame 7
    detector = load_checkpoint(checkpoint)
    manifest = Manifest.read(clip_manifest)
    dataset = FaceCropDataset(manifest, detector.preprocess)
    with torch.no_grad():
        features = detector.model(torch.stack([dataset[i]["image"] for i in range(len(manifest))]))["features"]
    rows = list(csv.DictReader(open(tmp_path / "head" / "p.csv")))
    assert set(rows[0]) == {"dataset", "path", "label", "score", "video", "method", "video_score"}
    for n in range(4):
        first, second = 2 * n, 2 * n + 1  # manifest rows of frames 7 and 3
        with torch.no_grad():
            ordered = torch.sigmoid(detector.model.video_logits(features[[second, first]][None], "temporal")).item()
            unordered = torch.sigmoid(detector.model.video_logits(features[[first, second]][None], "temporal")).item()
        assert float(rows[first]["video_score"]) == pytest.approx(ordered, abs=1e-5)
        assert float(rows[second]["video_score"]) == pytest.approx(ordered, abs=1e-5)
        assert abs(ordered - unordered) > 1e-6
    assert "video_score" not in list(csv.DictReader(open(tmp_path / "mean" / "p.csv")))[0]


def test_evaluate_mean_head_is_the_classifier_on_each_videos_mean_feature(checkpoint, clip_manifest, tmp_path):
    _, headed = _evaluate_cli(checkpoint, clip_manifest, tmp_path, "--video-head", "mean")
    assert headed["video_head"] == "mean"
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    detector = load_checkpoint(checkpoint)
    manifest = Manifest.read(clip_manifest)
    dataset = FaceCropDataset(manifest, detector.preprocess)
    with torch.no_grad():
        out = detector.model(torch.stack([dataset[i]["image"] for i in range(2)]))
        expected = torch.sigmoid(detector.model.classifier(out["features"].mean(0))).item()
    assert float(rows[0]["video_score"]) == pytest.approx(expected, abs=1e-5)


def test_evaluate_video_head_on_a_model_without_heads_is_exit_2(clip_manifest):
    result = CliRunner().invoke(app, ["evaluate", "meso4-df", str(clip_manifest), "--device", "cpu",
                                      "--video-head", "mean"])
    assert result.exit_code == 2
    assert "has no video heads" in result.output and "m2tr (mean, temporal)" in result.output
