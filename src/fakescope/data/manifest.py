"""The manifest: one table format every dataset reader produces and every
consumer (extraction, training, evaluation) reads.

A manifest is a CSV with a header; `path` (and `mask`) are relative to the
folder holding the CSV, or absolute. Columns beyond `path` and `label` are
optional, so the plain `manifest.csv` files of face-crop folders load as is.

    path      media file: a face crop, a frame or a video
    label     1 = fake, 0 = real
    video     id of the video the item comes from (groups frames for video-level metrics and splits)
    method    manipulation method ("original" for reals)
    split     train / val / test, where the dataset defines one
    mask      ground-truth manipulation mask (image or mask video), where present
    source    for a fake, the id of the real video it was made from (pairs crops with their source)
    frame     frame index within the video
    dataset   name of the dataset (for cross-dataset tables)
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ..errors import FakescopeError

COLUMNS = ["path", "label", "video", "method", "split", "mask", "source", "frame", "dataset"]


class ManifestError(FakescopeError):
    code = "bad_manifest"


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    video: Optional[str] = None
    method: Optional[str] = None
    split: Optional[str] = None
    mask: Optional[str] = None
    source: Optional[str] = None
    frame: Optional[int] = None
    dataset: Optional[str] = None


class Manifest:
    """Samples plus the folder their relative paths are relative to."""

    def __init__(self, samples: Iterable[Sample], root: str | Path):
        self.samples = list(samples)
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path

    def filter(self, **equals) -> "Manifest":
        """Samples whose fields equal the given values, e.g. filter(split="val")."""
        unknown = set(equals) - set(COLUMNS)
        if unknown:
            raise ManifestError(f"unknown manifest column(s) {sorted(unknown)}; columns are {COLUMNS}")
        kept = [s for s in self.samples if all(getattr(s, k) == v for k, v in equals.items())]
        return Manifest(kept, self.root)

    def with_dataset(self, name: str) -> "Manifest":
        return Manifest([replace(s, dataset=s.dataset or name) for s in self.samples], self.root)

    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    @classmethod
    def read(cls, path: str | Path) -> "Manifest":
        """A manifest CSV, or a folder holding `manifest.csv`."""
        path = Path(path)
        if path.is_dir():
            path = path / "manifest.csv"
        if not path.is_file():
            raise ManifestError(f"{path}: no manifest here (a CSV with at least path,label columns)")
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "label"} - set(reader.fieldnames or [])
            if missing:
                raise ManifestError(f"{path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}")
            samples = [_sample_from_row(row, path, line) for line, row in enumerate(reader, start=2)]
        if not samples:
            raise ManifestError(f"{path}: the manifest has no rows")
        return cls(samples, path.parent)

    def write(self, path: str | Path) -> Path:
        """Write as CSV; paths are made relative to the CSV's folder where possible."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        used = [c for c in COLUMNS if c in ("path", "label") or any(getattr(s, c) is not None for s in self.samples)]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=used)
            writer.writeheader()
            for sample in self.samples:
                row = asdict(sample)
                for key in ("path", "mask"):
                    if row[key] is not None:
                        row[key] = _relative_to(self.resolve(row[key]), path.parent)
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in used})
        return path


def _relative_to(target: Path, folder: Path) -> str:
    import os

    try:
        return os.path.relpath(target, folder)
    except ValueError:  # another drive on Windows
        return str(target)


def _sample_from_row(row: dict, path: Path, line: int) -> Sample:
    values = {}
    for f in fields(Sample):
        raw = row.get(f.name)
        values[f.name] = raw if raw not in ("", None) else None
    try:
        values["label"] = int(values["label"])
        if values["label"] not in (0, 1):
            raise ValueError
    except (TypeError, ValueError):
        raise ManifestError(f"{path}:{line}: label must be 0 (real) or 1 (fake), got {row.get('label')!r}") from None
    if values["frame"] is not None:
        try:
            values["frame"] = int(values["frame"])
        except ValueError:
            raise ManifestError(f"{path}:{line}: frame must be an integer, got {row.get('frame')!r}") from None
    if values["path"] is None:
        raise ManifestError(f"{path}:{line}: empty path")
    return Sample(**values)
