"""Content fingerprints of a model's training and validation images, to catch leakage in evaluation.

Why: evaluating a model on images it was trained on (or whose epoch or calibration was
chosen on) inflates every number, and nothing in a path says so: the same face set may
sit at another path on another machine. A checkpoint therefore records a fingerprint of
every image it learnt from, the SHA-1 of the file's bytes cut to 12 hex digits (48 bits:
for 10^5 images a chance collision is about 2 in 10^5), and `evaluate` warns when rows
it is asked to score have one of them. Images re-framed by `fakescope reframe` are
recorded under their original file too, since that is what a user would evaluate.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Mapping

DIGITS = 12


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks (checkpoints, ONNX files, images)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    return file_digest(path, "sha256")


def file_fingerprint(path: str | Path) -> str:
    return file_digest(path, "sha1")[:DIGITS]


def pack(fingerprints: Iterable[str]) -> str:
    """One compact string for a checkpoint: the sorted, unique fingerprints concatenated."""
    return "".join(sorted(set(fingerprints)))


def unpack(packed: str) -> set[str]:
    return {packed[i : i + DIGITS] for i in range(0, len(packed), DIGITS)}


def recorded(provenance: Mapping) -> dict[str, set[str]]:
    """{"train": {...}, "val": {...}} from a checkpoint's provenance (empty when it has none)."""
    packed = provenance.get("data_fingerprints") or {}
    return {part: unpack(value) for part, value in packed.items() if isinstance(value, str)}


def overlap(paths: Iterable[str | Path], known: Mapping[str, set[str]]) -> dict[str, int]:
    """How many of `paths` have a fingerprint in each recorded part (parts with none left out)."""
    if not known:
        return {}
    counts = {part: 0 for part in known}
    for path in paths:
        fingerprint = file_fingerprint(path)
        for part, members in known.items():
            counts[part] += fingerprint in members
    return {part: n for part, n in counts.items() if n}
