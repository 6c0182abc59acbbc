"""The torch-free MTCNN (scan/mtcnn_onnx.py) finds the faces facenet-pytorch's MTCNN finds, on real media.

The shipped forgery detectors were trained on facenet-pytorch's crops, so "close" is not enough:
same faces, same order, boxes and landmarks within a small fraction of a pixel (measured: under
0.001 px at full resolution on all shared media), same confidences.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakescope.scan import mtcnn_onnx
from fakescope.scan.faces import MTCNNFaceDetector, iou
from fakescope.scan.media import load_media

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_BOX_PX = 0.5  # full-resolution pixels; measured worst on all shared media: see the module docstring
MAX_SCORE = 1e-3


def ciplab_images(shared_dir, count: int, step: int = 37) -> list[np.ndarray]:
    """`count` CIPLAB photos spread over the set (reals and fakes), decoded as scan decodes them."""
    paths = sorted((shared_dir / "data/ciplab-faces").rglob("*.jpg"))[::step][:count]
    return [load_media(p)[1][0].image for p in paths]


def video_frames(shared_dir, name: str, frames: int) -> list[np.ndarray]:
    return [f.image for f in load_media(shared_dir / "data/ffpp-videos" / name, frames)[1]]


def assert_same_faces(frames: list[np.ndarray], **settings) -> int:
    """Both engines of MTCNNFaceDetector on the same frames: same faces, best first. Returns how many."""
    torch_faces = MTCNNFaceDetector(backend="torch", **settings).detect(frames)
    onnx_faces = MTCNNFaceDetector(backend="onnx", **settings).detect(frames)
    found = 0
    for position, (expected, got) in enumerate(zip(torch_faces, onnx_faces, strict=True)):
        assert len(got) == len(expected), f"frame {position}: {len(got)} faces, facenet-pytorch {len(expected)}"
        for e, g in zip(expected, got):
            assert np.abs(np.subtract(g.box, e.box)).max() <= MAX_BOX_PX, (position, e.box, g.box)
            assert iou(g.box, e.box) >= 0.99
            assert np.abs(np.subtract(g.landmarks, e.landmarks)).max() <= MAX_BOX_PX
            assert abs(g.score - e.score) <= MAX_SCORE
        found += len(got)
    return found


@pytest.fixture
def facenet(request):
    """facenet-pytorch to compare with (skip without it), run on one torch thread."""
    pytest.importorskip("facenet_pytorch")
    request.getfixturevalue("one_torch_thread")


@pytest.fixture(scope="module")
def torch_nets():
    pytest.importorskip("facenet_pytorch")
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    return {"pnet": PNet().eval(), "rnet": RNet().eval(), "onet": ONet().eval()}


@pytest.mark.parametrize("name, shapes", [
    ("pnet", [(1, 12, 12), (2, 181, 321)]),  # P-Net: any size (dynamic H and W)
    ("rnet", [(1, 24, 24), (37, 24, 24)]),
    ("onet", [(1, 48, 48), (9, 48, 48)]),
])
def test_exported_net_matches_torch(torch_nets, shared_dir, name, shapes, facenet):
    """Each ONNX file gives torch's outputs within 1e-4, on windows of a real frame, several batch sizes."""
    import torch

    image = video_frames(shared_dir, "real/004.mp4", 1)[0]
    session = mtcnn_onnx._session(name, 1, ("CPUExecutionProvider",))
    for batch, height, width in shapes:
        rng = np.random.default_rng(batch)
        crops = []
        for _ in range(batch):  # random windows of the frame, at the net's input size
            top, left = rng.integers(0, image.shape[0] - height), rng.integers(0, image.shape[1] - width)
            crops.append(image[top : top + height, left : left + width])
        x = mtcnn_onnx._normalise(np.stack(crops).astype(np.float32))
        with torch.no_grad():
            expected = [t.numpy() for t in torch_nets[name](torch.from_numpy(x))]
        got = session.run(None, {"input": x})
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)


def test_area_resampling_is_torch_interpolate_area(shared_dir):
    """The pyramid and crop resampling is bit-identical to F.interpolate(mode="area"), also for
    non-integer ratios and upsampling, where cv2.INTER_AREA differs."""
    torch = pytest.importorskip("torch")
    from torch.nn.functional import interpolate

    image = ciplab_images(shared_dir, 1)[0][:301, :257]
    sat = mtcnn_onnx._summed_area(image[None])
    as_torch = torch.from_numpy(image.copy())[None].permute(0, 3, 1, 2).float()
    for out_h, out_w in [(137, 97), (24, 24), (400, 300)]:
        rows, cols = mtcnn_onnx._windows(0, image.shape[0], out_h), mtcnn_onnx._windows(0, image.shape[1], out_w)
        ours = mtcnn_onnx._area_mean_grid(sat, rows, cols)[0]
        theirs = interpolate(as_torch, size=(out_h, out_w), mode="area")[0].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(ours, theirs)
    # a crop (rows 11..70, columns 5..47), as R-Net's input
    rows, cols = mtcnn_onnx._windows(np.array([11]), np.array([60]), 24), mtcnn_onnx._windows(np.array([5]), np.array([43]), 24)
    ours = mtcnn_onnx._area_mean_boxes(sat, np.array([0]), rows, cols)[0]
    theirs = interpolate(as_torch[:, :, 11:71, 5:48], size=(24, 24), mode="area")[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_same_faces_on_photos(shared_dir, facenet):
    """CIPLAB portraits (a few hundred pixels a side, each its own size), at scan's settings and
    with the small minimum face that reframe and synthesis use."""
    images = ciplab_images(shared_dir, 12)
    assert assert_same_faces(images) >= 12
    assert assert_same_faces(images, min_face_size=32, min_confidence=0.9) >= 12


@pytest.mark.parametrize("name", ["real/004.mp4", "fake/004_982.mp4", "fake/519_515.mp4"])
def test_same_faces_on_every_sampled_frame(shared_dir, name, facenet):
    """All 32 frames scan samples from each shared FF++ video (two 720p, one 640 x 480), downscaled
    to 640 px and in batches of 16 as scan runs them."""
    assert assert_same_faces(video_frames(shared_dir, name, 32)) >= 32


def test_same_faces_on_many_photos(shared_dir, facenet):
    """120 CIPLAB photos (all 2,035 were checked once: same faces, boxes within 0.0003 px)."""
    assert assert_same_faces(ciplab_images(shared_dir, 120, step=17)) >= 110


def test_raw_cascade_matches_facenet_below_the_confidence_cut(shared_dir, facenet):
    """Every O-Net survivor, weak ones too, in facenet-pytorch's order, on a batch of frames."""
    from facenet_pytorch import MTCNN as TorchMTCNN

    from fakescope.scan.faces import _resize

    frames = np.stack([_resize(f, 0.5) for f in video_frames(shared_dir, "real/004.mp4", 4)])
    theirs = TorchMTCNN(keep_all=True, select_largest=False, post_process=False, thresholds=[0.6, 0.7, 0.7],
                        min_face_size=20)
    boxes, probs, points = theirs.detect(frames, landmarks=True)
    ours = mtcnn_onnx.MTCNN(min_face_size=20, thresholds=(0.6, 0.7, 0.7)).detect(frames)
    for b, p, lm, d in zip(boxes, probs, points, ours):
        assert len(d.boxes) == len(b) >= 1
        np.testing.assert_allclose(d.boxes, b, rtol=0, atol=0.01)
        np.testing.assert_allclose(d.landmarks, lm, rtol=0, atol=0.01)
        np.testing.assert_allclose(d.probs, np.asarray(p, np.float32), rtol=0, atol=1e-5)


def test_no_face_no_detection(shared_dir):
    """A uniform frame and the part of a real video frame beside the face give no face."""
    detector = MTCNNFaceDetector(backend="onnx", min_face_size=32)
    frame = video_frames(shared_dir, "real/004.mp4", 1)[0]
    (face,) = detector.detect([frame])[0]
    left = frame[:, : int(face.box[0]) - 10]  # everything left of the face
    assert left.shape[1] > 200
    assert detector.detect([left]) == [[]]
    assert detector.detect([np.full((360, 640, 3), 128, np.uint8)]) == [[]]
    # smaller than the smallest face looked for: no pyramid level, no face, no error
    assert detector.detect([np.full((40, 50, 3), 128, np.uint8)]) == [[]]
    assert mtcnn_onnx.MTCNN(min_face_size=64).detect(np.zeros((2, 50, 50, 3), np.uint8))[1].boxes.shape == (0, 4)


def test_batch_gives_each_frames_faces(shared_dir):
    """Frames batched together give what each gives alone (NMS stays within a frame)."""
    frames = np.stack(video_frames(shared_dir, "fake/519_515.mp4", 3))
    mtcnn = mtcnn_onnx.MTCNN(min_face_size=40, thresholds=(0.7, 0.8, 0.9))
    together = mtcnn.detect(frames)
    for frame, batched in zip(frames, together):
        (alone,) = mtcnn.detect(frame)
        assert len(alone.boxes) == len(batched.boxes) >= 1
        np.testing.assert_allclose(alone.boxes, batched.boxes, rtol=0, atol=1e-3)


def test_large_image_exact_sums(shared_dir):
    """Above 8 megapixels window sums no longer fit int32: the float64 table stays exact, and the
    cascade finds the face there too."""
    import cv2

    photo = ciplab_images(shared_dir, 1)[0]
    k = int(np.ceil(np.sqrt(2**31 / 255 / (photo.shape[0] * photo.shape[1]))))
    big = cv2.resize(photo, (photo.shape[1] * k, photo.shape[0] * k), interpolation=cv2.INTER_NEAREST)
    assert 255 * big.shape[0] * big.shape[1] >= 2**31
    sat = mtcnn_onnx._summed_area(big[None])
    assert sat.dtype == np.float64
    # k x k blocks of a k-times nearest upscale average back to the photo, exactly
    rows, cols = mtcnn_onnx._windows(0, big.shape[0], photo.shape[0]), mtcnn_onnx._windows(0, big.shape[1], photo.shape[1])
    np.testing.assert_array_equal(mtcnn_onnx._area_mean_grid(sat, rows, cols)[0], photo.astype(np.float32))
    (on_big,) = mtcnn_onnx.MTCNN(min_face_size=100 * k, thresholds=(0.7, 0.8, 0.9)).detect(big)
    (on_photo,) = mtcnn_onnx.MTCNN(min_face_size=100, thresholds=(0.7, 0.8, 0.9)).detect(photo)
    assert len(on_big.boxes) == len(on_photo.boxes) == 1
    assert iou(on_big.boxes[0] / k, on_photo.boxes[0]) > 0.95


def test_works_without_torch(shared_dir):
    """With torch and facenet-pytorch made unimportable, the detector runs on ONNX Runtime and finds
    exactly the faces it finds with them installed."""
    image_path = sorted((shared_dir / "data/ciplab-faces/real").glob("*.jpg"))[0]
    script = f"""
import json, sys
sys.modules["torch"] = None
sys.modules["facenet_pytorch"] = None
from fakescope.scan.media import load_media
import fakescope.scan.mtcnn_onnx
from fakescope.scan.faces import MTCNNFaceDetector
detector = MTCNNFaceDetector()
faces = detector.detect([load_media({str(image_path)!r})[1][0].image])[0]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "facenet_pytorch") and sys.modules[m] is not None)
print(json.dumps({{"backend": detector.backend, "boxes": [f.box for f in faces], "scores": [f.score for f in faces], "loaded": loaded}}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == "onnx" and result["loaded"] == []
    here = MTCNNFaceDetector(backend="onnx").detect([load_media(image_path)[1][0].image])[0]
    assert len(result["boxes"]) == len(here) == 1
    assert result["boxes"] == [list(f.box) for f in here]  # bit-identical: same code, same numbers
    assert result["scores"] == [f.score for f in here]


def test_auto_backend_and_bad_backend():
    assert MTCNNFaceDetector().backend == "onnx"  # the CPU default: faster, and no torch needed
    with pytest.raises(ValueError, match="backend"):
        MTCNNFaceDetector(backend="tensorflow")
