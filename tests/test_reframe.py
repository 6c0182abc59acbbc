"""`fakescope reframe`: published face crops re-cropped exactly as scan crops faces, on real crops."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fakescope.data.manifest import Manifest
from fakescope.data.reframe import ReframeSettings, reframe_crops, reframed_origins
from fakescope.scan.faces import MTCNNFaceDetector


@pytest.fixture(scope="module")
def crops(shared_dir, tmp_path_factory):
    """Six tight DFDC crops, three CIPLAB portraits, the 20 x 13 px CIPLAB file and a grey non-face."""
    folder = tmp_path_factory.mktemp("inputs")
    grey = folder / "grey.png"
    cv2.imwrite(str(grey), np.full((200, 200, 3), 128, np.uint8))
    dfdc = Manifest.read(shared_dir / "data/dfdc-faces")
    ciplab = Manifest.read(shared_dir / "data/ciplab-faces")
    samples = [s for s in dfdc.samples[:6]] + [s for s in ciplab.samples[:3]]
    rows = [s.__class__(**{**s.__dict__, "path": str((dfdc if i < 6 else ciplab).resolve(s.path))})
            for i, s in enumerate(samples)]
    tiny = next(s for s in ciplab.samples if s.path == "fake/705.jpg")
    rows.append(tiny.__class__(**{**tiny.__dict__, "path": str(ciplab.resolve(tiny.path))}))
    rows.append(rows[0].__class__(path=str(grey), label=0))
    return Manifest(rows, folder)


@pytest.fixture(scope="module")
def reframed(crops, tmp_path_factory, one_torch_thread):
    out = tmp_path_factory.mktemp("reframed")
    report = reframe_crops(crops, out, ReframeSettings(margin=0.7, size=192))
    return out, report


def test_faces_kept_non_faces_dropped(reframed, crops):
    out, report = reframed
    assert report["rows"] == 11
    dropped = {d["path"].rsplit("/", 1)[-1]: d["status"] for d in report["dropped"]}
    assert dropped == {"705.jpg": "no_face", "grey.png": "no_face"}
    kept = Manifest.read(out)
    assert len(kept) == report["kept"] == 9
    # every column but the path survives, in order
    assert [(s.label, s.video, s.source) for s in kept] == [(s.label, s.video, s.source) for s in crops.samples[:9]]
    for sample in kept:
        image = cv2.imread(str(kept.resolve(sample.path)))
        assert image.shape == (192, 192, 3)


def test_reframed_crop_is_what_scan_cuts_from_the_frame(shared_dir, one_torch_thread):
    """A loose crop of a real video frame (margin 1.8, as some sets publish), re-framed at 0.7,
    matches the crop scan cuts from the whole frame at 0.7: one framing, whatever the source."""
    from fakescope.scan.faces import crop_face
    from fakescope.data.reframe import reframe_image
    from fakescope.scan.media import MediaLimits, load_media

    _, frames = load_media(shared_dir / "data/ffpp-videos/real/004.mp4", 3, MediaLimits())
    detector = MTCNNFaceDetector(min_face_size=40, min_confidence=0.9)
    for frame in frames:
        face = max(detector.detect([frame.image])[0], key=lambda f: f.score)
        scan_crop = crop_face(frame.image, face.box, 0.7, 128).astype(float)
        loose = crop_face(frame.image, face.box, 1.8, 400)
        result = reframe_image(loose, detector, ReframeSettings(margin=0.7, size=128))
        assert result["pad"] == 0.0
        reframed = result["crop"].astype(float)
        unrelated = crop_face(frame.image, (0, 0, 128, 128), 1.0, 128).astype(float)
        assert np.abs(reframed - scan_crop).mean() < 0.25 * np.abs(unrelated - scan_crop).mean()


def test_landmarks_are_real_68_point_fits(reframed):
    """dlib's 68 points, as fractions of the crop: inside it, eyes above the nose above the mouth."""
    out, _ = reframed
    landmarks = json.loads((out / "landmarks.json").read_text())
    kept = Manifest.read(out)
    assert set(landmarks) == {str(kept.resolve(s.path)) for s in kept}
    for points in landmarks.values():
        p = np.asarray(points)
        assert p.shape == (68, 2)
        assert p.min() > -0.25 and p.max() < 1.25  # at margin 0.7 the jaw line may leave the crop
        eyes, nose, mouth = p[36:48, 1].mean(), p[30, 1], p[48:68, 1].mean()
        assert eyes < nose < mouth
        assert p[36:42, 0].mean() < p[42:48, 0].mean()  # subject's right eye on the image's left


def test_rerun_resumes_and_origins_map_back(reframed, crops, one_torch_thread):
    out, report = reframed
    before = (out / "records.jsonl").read_text()
    again = reframe_crops(crops, out, ReframeSettings(margin=0.7, size=192))
    assert (out / "records.jsonl").read_text() == before  # nothing redone
    assert again == report
    origins = reframed_origins(out)
    kept = Manifest.read(out)
    assert sorted(origins[str(kept.resolve(s.path))] for s in kept) == sorted(s.path for s in crops.samples[:9])


def test_mtcnn_on_an_image_smaller_than_the_smallest_face():
    """facenet-pytorch fails on an empty image pyramid; the detector finds no face instead."""
    detector = MTCNNFaceDetector(min_face_size=64)
    assert detector.detect([np.zeros((20, 13, 3), np.uint8)]) == [[]]
