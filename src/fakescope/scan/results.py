"""Typed scan results; `to_dict()` gives the JSON the CLI writes."""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

# Exit codes of `fakescope scan` (README documents them).
EXIT_ALL_SCORED = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_SCORED = 3
EXIT_INTERNAL = 4


@dataclass
class FaceResult:
    """One face in one sampled frame."""

    frame_index: int
    timestamp: float
    track: int
    box: list[float]  # x1, y1, x2, y2 in frame pixels
    landmarks: Optional[list[list[float]]]  # 5 points (eyes, nose, mouth corners), or None
    detector_confidence: float
    score: float  # P(fake)
    # the square the face crop was cut from, left, top, right, bottom in frame pixels (may reach
    # outside the frame, where the crop is edge-padded); --masks PNGs cover exactly this square
    crop_box: Optional[list[int]] = None
    heatmap: Optional[str] = None  # PNG written with --heatmap: the crop as scored, its forgery map overlaid
    mask: Optional[str] = None  # PNG written with --masks: P(manipulated) x 255, crop_box-sized, grayscale
    mask_source: Optional[str] = None  # where those maps come from: "mask_head" or "grad_cam"


@dataclass
class FrameResult:
    """One sampled frame: its score is that of its most suspicious face."""

    frame_index: int
    timestamp: float
    faces: int
    score: Optional[float]


@dataclass
class TrackResult:
    """One person: faces linked across frames."""

    track: int
    score: float  # P(fake) of the person: mean over the track's faces, or the model's video head (score_source)
    faces: int
    first_frame: int
    last_frame: int
    used_for_verdict: bool  # tracks seen in too few frames are reported but not voted
    # where `score` comes from: "frame_mean" (mean face P(fake)), or "video_head:NAME" (scan --video-head:
    # the model's video head over the faces' features, in frame order)
    score_source: str = "frame_mean"
    windows: Optional[int] = None  # with a video head: consecutive frame windows scored and averaged
    verdict: Optional[str] = None  # "fake" | "real" | "uncertain", as the file's (threshold and band)
    from_threshold: Optional[float] = None  # score - threshold: how far, and on which side


@dataclass
class WholeImageResult:
    """The picture scored whole by a whole-image detector (generated images: GAN, diffusion):
    `scan --mode image`, or `auto` on an image with no face."""

    model: str
    score: float  # P(generated) of the picture: the views' mean logit, through the model's calibration
    verdict: str  # "fake" | "real" | "uncertain", with the image model's threshold and band
    from_threshold: float
    threshold: float
    views: int  # input_size crops scored at the picture's own resolution (never a resize of the whole)
    view_scores: list[float] = field(default_factory=list)
    # generator attribution, where the model has the head: class -> probability, and the top class
    attribution: Optional[dict[str, float]] = None
    generator: Optional[str] = None
    generator_probability: Optional[float] = None
    patch_map: Optional[str] = None  # --masks: P(generated) per patch over the picture, grayscale PNG x 255


@dataclass
class TamperFinding:
    """What one tampering-localization method found (`scan --mode tamper`). Its score is the
    method's own evidence in [0, 1], not a calibrated probability."""

    method: str  # copy_move_block, copy_move_keypoint, jpeg_ghost, noise_residual
    kind: str  # "copy_move" or "splicing"
    score: float
    found: bool
    message: str
    mask: Optional[str] = None  # --masks: where it sees tampering, grayscale PNG x 255, picture-sized
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class TamperResult:
    found: bool  # any method found tampering
    methods_found: list[str] = field(default_factory=list)
    findings: list[TamperFinding] = field(default_factory=list)


@dataclass
class FileResult:
    path: str
    status: str  # "ok" or an error code from fakescope.errors.STATUS_CODES
    message: Optional[str] = None  # why it failed; for "ok", the warnings joined
    warnings: list[str] = field(default_factory=list)
    kind: Optional[str] = None  # "image" | "video"
    score: Optional[float] = None  # P(fake) of the file, None when nothing was scored
    # "fake" | "real" | "uncertain" (within the model's band around the threshold) | None (not scored)
    verdict: Optional[str] = None
    from_threshold: Optional[float] = None  # score - threshold: how far, and on which side
    frames_analysed: int = 0
    faces_found: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    media: dict[str, Any] = field(default_factory=dict)
    tracks: list[TrackResult] = field(default_factory=list)
    frames: list[FrameResult] = field(default_factory=list)
    faces: list[FaceResult] = field(default_factory=list)
    # which analysis gave `score` and `verdict`: "faces", "whole_image" (an image with no face, or a
    # whole-image verdict graver than the faces'), or None; each part keeps its own result below
    score_source: Optional[str] = None
    whole_image: Optional[WholeImageResult] = None
    tamper: Optional[TamperResult] = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "FileResult":
        """A FileResult from its to_dict() form; keys a newer version may add are ignored."""

        def build(kind, values: dict):
            names = {f.name for f in fields(kind)}
            return kind(**{k: v for k, v in values.items() if k in names})

        nested = ("tracks", "frames", "faces", "whole_image", "tamper")
        result = build(cls, {k: v for k, v in record.items() if k not in nested})
        result.tracks = [build(TrackResult, t) for t in record.get("tracks") or []]
        result.frames = [build(FrameResult, f) for f in record.get("frames") or []]
        result.faces = [build(FaceResult, f) for f in record.get("faces") or []]
        if record.get("whole_image"):
            result.whole_image = build(WholeImageResult, record["whole_image"])
        if record.get("tamper"):
            tamper = record["tamper"]
            result.tamper = TamperResult(found=tamper.get("found", False), methods_found=tamper.get("methods_found", []),
                                         findings=[build(TamperFinding, f) for f in tamper.get("findings") or []])
        return result


@dataclass
class JsonlScan:
    """What a `scan --jsonl` file holds (see `read_jsonl`)."""

    header: Optional[dict[str, Any]]  # {"fakescope_version", "model", "settings"}, or None
    results: dict[str, dict[str, Any]]  # the finished files' results by path (a later line wins)
    complete_bytes: int  # the file up to its last whole line
    dropped_tail: bool  # the last line had no newline: the one being written when the scan was killed


def read_jsonl(path: str | Path) -> JsonlScan:
    """Read a `scan --jsonl` file. A last line without its newline is left out (`dropped_tail`);
    any other line that is neither the header (line 1) nor a file result raises ValueError
    ("line N is ...")."""
    data = Path(path).read_bytes()
    complete = data.rfind(b"\n") + 1
    header, results = None, {}
    for number, line in enumerate(data[:complete].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON; is it a fakescope --jsonl file?") from None
        if isinstance(record, dict) and "path" in record and "status" in record:
            results[record["path"]] = record
        elif number == 1 and isinstance(record, dict) and "fakescope_version" in record:
            header = record
        else:
            raise ValueError(f"line {number} is neither a scan header nor a file result")
    return JsonlScan(header, results, complete, dropped_tail=complete < len(data))


@dataclass
class ScanReport:
    results: list[FileResult]
    model: dict[str, Any]
    settings: dict[str, Any]
    version: str

    # Convenience for the common one-file case: scan("clip.mp4").score
    @property
    def score(self) -> Optional[float]:
        return self._single().score

    @property
    def verdict(self) -> Optional[str]:
        return self._single().verdict

    def _single(self) -> FileResult:
        if len(self.results) != 1:
            raise ValueError(f"this report holds {len(self.results)} files; use .results")
        return self.results[0]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def exit_code(self) -> int:
        scored = sum(r.ok for r in self.results)
        if scored == len(self.results) and scored > 0:
            return EXIT_ALL_SCORED
        return EXIT_SOME_FAILED if scored else EXIT_NOTHING_SCORED

    def to_dict(self) -> dict[str, Any]:
        return {
            "fakescope_version": self.version,
            "model": self.model,
            "settings": self.settings,
            "results": [r.to_dict() for r in self.results],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    CSV_COLUMNS = [
        "path", "status", "message", "kind", "file_score", "verdict", "from_threshold", "frames_analysed",
        "frame_index", "timestamp", "track", "face_score", "detector_confidence",
        "x1", "y1", "x2", "y2", "landmarks", "crop_box", "heatmap", "mask", "mask_source",
    ]

    def write_csv(self, path: str | Path) -> None:
        """One row per scored face; a file with no face gets one row with its status."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.CSV_COLUMNS)
            writer.writeheader()
            for r in self.results:
                base = {
                    "path": r.path, "status": r.status, "message": r.message or "", "kind": r.kind or "",
                    "file_score": "" if r.score is None else f"{r.score:.6f}", "verdict": r.verdict or "",
                    "from_threshold": "" if r.from_threshold is None else f"{r.from_threshold:+.4f}",
                    "frames_analysed": r.frames_analysed,
                }
                if not r.faces:
                    writer.writerow(base)
                for f in r.faces:
                    writer.writerow({
                        **base, "frame_index": f.frame_index, "timestamp": f"{f.timestamp:.3f}", "track": f.track,
                        "face_score": f"{f.score:.6f}", "detector_confidence": f"{f.detector_confidence:.4f}",
                        "x1": f"{f.box[0]:.1f}", "y1": f"{f.box[1]:.1f}", "x2": f"{f.box[2]:.1f}", "y2": f"{f.box[3]:.1f}",
                        "landmarks": json.dumps(f.landmarks) if f.landmarks else "",
                        "crop_box": json.dumps(f.crop_box) if f.crop_box else "", "heatmap": f.heatmap or "",
                        "mask": f.mask or "", "mask_source": f.mask_source or "",
                    })
