"""Train/val/test splits by video identity, never by frame.

Why identities and not rows: frames of one video are near-duplicates, and an
FF++ fake ``519_515`` shows the face of real video ``519`` (target) driven by
``515`` (source). A split that puts any of them on both sides leaks the face
into evaluation. So every row is mapped to identity tokens (its video id split
on ``_``, plus its ``source`` when that names a video of the same dataset), rows
sharing a token are joined into one group (union-find), and whole groups are
assigned to splits.

Rows that already carry a split (CIPLAB's fixed split, a dataset's official
one) keep it, and pull every row of their group along; so do datasets pinned
with ``assign``. The other groups are shuffled with the seed inside strata (the
set of manipulation methods in the group; reals form their own stratum) and cut
by the requested fractions, so each method gets its share of held-out videos.

Sequence training (``data.sequence``: clips of K consecutive frames of one video)
needs the split by video that this is, and more frames to learn from than a
frame-level benchmark keeps for testing: ``split_by_video`` cuts 7:2:1
(val 0.2, test 0.1; ``fakescope split --val 0.2 --test 0.1``). The CLI's and
``split_by_identity``'s own defaults (val 0.2, test 0.5) stay as they are.
"""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping, Optional

from .manifest import Manifest, ManifestError, Sample

SPLITS = ("train", "val", "test")


class _Groups:
    """Union-find over identity tokens."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, token: str) -> str:
        self.parent.setdefault(token, token)
        while self.parent[token] != token:
            self.parent[token] = self.parent[self.parent[token]]
            token = self.parent[token]
        return token

    def union(self, tokens: Iterable[str]) -> str:
        tokens = list(tokens)
        root = self.find(tokens[0])
        for token in tokens[1:]:
            other = self.find(token)
            if other != root:
                self.parent[other] = root
        return root


def identity_tokens(sample: Sample, known_videos: set[str], namespaces: Optional[Mapping[str, str]] = None) -> list[str]:
    """Identity tokens of a row, namespaced by dataset; a row without a video is its own identity.

    `namespaces` maps datasets that number the same videos (FF++ crops and FF++
    videos) to one shared namespace.
    """
    space = (namespaces or {}).get(sample.dataset or "", sample.dataset or "")
    if sample.video is None:
        return [f"{space}/path:{sample.path}"]
    tokens = [f"{space}/{_canonical(part)}" for part in str(sample.video).split("_") if part]
    if sample.source and sample.source in known_videos:
        tokens += [f"{space}/{_canonical(part)}" for part in sample.source.split("_") if part]
    return tokens or [f"{space}/path:{sample.path}"]


def _canonical(part: str) -> str:
    """FF++ writes video 4 as ``004`` in file names and ``4`` elsewhere: compare numbers as numbers."""
    return str(int(part)) if part.isdigit() else part


def merge(manifests: Mapping[str, Manifest]) -> Manifest:
    """One manifest from several (named by dataset), with absolute paths so they resolve anywhere."""
    samples: list[Sample] = []
    for name, manifest in manifests.items():
        for sample in manifest.with_dataset(name):
            mask = str(manifest.resolve(sample.mask).resolve()) if sample.mask else None
            samples.append(replace(sample, path=str(manifest.resolve(sample.path).resolve()), mask=mask))
    return Manifest(samples, Path.cwd())


def split_by_identity(
    manifest: Manifest,
    val: float = 0.2,
    test: float = 0.5,
    seed: int = 0,
    assign: Optional[Mapping[str, str]] = None,
    namespaces: Optional[Mapping[str, str]] = None,
) -> Manifest:
    """Give every row without a split one of train/val/test, by identity group (see the module doc)."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ManifestError(f"split fractions must be in [0, 1) and val + test < 1; got val={val}, test={test}")
    assign = dict(assign or {})
    for dataset, split in assign.items():
        if split not in SPLITS:
            raise ManifestError(f"assign {dataset}={split}: the split must be one of {', '.join(SPLITS)}")
    datasets = {s.dataset for s in manifest}
    unknown = set(assign) - datasets
    if unknown:
        raise ManifestError(f"assign: no dataset named {', '.join(sorted(unknown))}; datasets are {sorted(map(str, datasets))}")

    known_videos = {str(s.video) for s in manifest if s.video is not None}
    groups = _Groups()
    roots = [groups.union(identity_tokens(s, known_videos, namespaces)) for s in manifest]
    roots = [groups.find(r) for r in roots]

    # Splits already fixed (by the row or by assign) win for the whole group.
    fixed: dict[str, str] = {}
    for sample, root in zip(manifest, roots):
        split = assign.get(sample.dataset) or sample.split
        if split is None:
            continue
        if root in fixed and fixed[root] != split and sample.dataset not in assign:
            raise ManifestError(
                f"{sample.path}: split {split!r}, but another video of the same identity group is in {fixed[root]!r}"
            )
        if sample.dataset in assign or root not in fixed:
            fixed[root] = split

    strata: dict[str, list[str]] = defaultdict(list)
    members: dict[str, list[Sample]] = defaultdict(list)
    for sample, root in zip(manifest, roots):
        members[root].append(sample)
    for root, rows in members.items():
        if root in fixed:
            continue
        methods = sorted({s.method for s in rows if s.label == 1 and s.method}) or (
            ["fake"] if any(s.label == 1 for s in rows) else ["real"]
        )
        strata["+".join(methods)].append(root)

    chosen = dict(fixed)
    for stratum, group_roots in sorted(strata.items()):
        order = sorted(group_roots)
        rng = random.Random(int(hashlib.sha256(f"{seed}/{stratum}".encode()).hexdigest()[:16], 16))
        rng.shuffle(order)
        n_test, n_val = round(len(order) * test), round(len(order) * val)
        for i, root in enumerate(order):
            chosen[root] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return Manifest([replace(s, split=chosen[r]) for s, r in zip(manifest, roots)], manifest.root)


#: (val, test) shares for sequence training: train / val / test 7:2:1 by video
SEQUENCE_SPLIT = (0.2, 0.1)


def split_by_video(
    manifest: Manifest,
    val: float = SEQUENCE_SPLIT[0],
    test: float = SEQUENCE_SPLIT[1],
    seed: int = 0,
    assign: Optional[Mapping[str, str]] = None,
    namespaces: Optional[Mapping[str, str]] = None,
) -> Manifest:
    """`split_by_identity` at 7:2:1: every frame of a video (and of the videos sharing
    its identity) on one side, for training on clips of consecutive frames."""
    return split_by_identity(manifest, val=val, test=test, seed=seed, assign=assign, namespaces=namespaces)


def video_key(sample: Sample) -> tuple:
    """The video a row belongs to, for clips: rows of one dataset, label, method and
    `video` id; a row without a video id is a video of its own (one frame)."""
    if sample.video is None:
        return ("path", sample.dataset, sample.path)
    return ("video", sample.dataset, sample.label, sample.method, str(sample.video))


def shared_videos(a: Manifest, b: Manifest) -> list[tuple]:
    """Videos (`video_key`, rows with a video id only) that have rows in both manifests."""
    keys_a = {video_key(s) for s in a if s.video is not None}
    return sorted({video_key(s) for s in b if s.video is not None} & keys_a, key=str)


def leaks(manifest: Manifest, namespaces: Optional[Mapping[str, str]] = None) -> list[str]:
    """Identity tokens found in more than one split (empty when the split is clean)."""
    known_videos = {str(s.video) for s in manifest if s.video is not None}
    seen: dict[str, set[str]] = defaultdict(set)
    for sample in manifest:
        for token in identity_tokens(sample, known_videos, namespaces):
            seen[token].add(sample.split or "-")
    return sorted(t for t, splits in seen.items() if len(splits) > 1)
