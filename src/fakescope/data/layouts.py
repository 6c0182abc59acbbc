"""Readers that index the standard deepfake datasets, as they unpack on disk,
into a `Manifest` of videos (or images, or frames).

Every reader checks the layout before it lists anything and raises a
`ManifestError` naming the missing file, folder or list: a half-downloaded
dataset must not quietly become a smaller benchmark.

    from fakescope.data.layouts import read_layout
    manifest = read_layout("ffpp", "/data/FaceForensics++", compression="c40")

Options may be Python values or the strings the command line passes
(`methods="deepfakes,faceswap"`, `require_splits="false"`). Paths in the
manifest are relative to the dataset root (`Manifest.root`); symlinks are kept
as they are, not resolved.
"""
from __future__ import annotations

import difflib
import inspect
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Optional, Sequence

from ..scan.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from ..registry import Registry
from .manifest import Manifest, ManifestError, Sample

log = logging.getLogger(__name__)

LAYOUTS: Registry[Callable[..., Manifest]] = Registry("dataset layout")

SPLITS = ("train", "val", "test")
REAL_METHOD = "original"  # the manifest's method for every real item


def read_layout(name: str, root: str | Path, **options) -> Manifest:
    """Index `root` with the reader registered as `name`; unknown option names
    are refused with the reader's real options, not silently ignored."""
    reader = LAYOUTS.get(name)
    accepted = layout_options(name)
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(accepted) if accepted else "none"
            raise ManifestError(f"layout {name!r} has no option {key!r}.{hint} Its options: {known}.")
    return reader(Path(root).expanduser(), **options)


def layout_options(name: str) -> list[str]:
    """The keyword options a registered reader accepts."""
    parameters = inspect.signature(LAYOUTS.get(name)).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


# --------------------------------------------------------------------------- FaceForensics++

FFPP_METHOD_FOLDERS = {  # manifest method name -> folder under manipulated_sequences/
    "deepfakes": "Deepfakes",
    "face2face": "Face2Face",
    "faceswap": "FaceSwap",
    "neuraltextures": "NeuralTextures",
    "faceshifter": "FaceShifter",
    "deepfakedetection": "DeepFakeDetection",
}
FFPP_CLASSIC_METHODS = ("deepfakes", "face2face", "faceswap", "neuraltextures")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")


@LAYOUTS.register("ffpp")
def read_ffpp(
    root: Path,
    *,
    compression: str = "c23",
    methods: str | Sequence[str] = FFPP_CLASSIC_METHODS,
    splits_dir: str | Path | None = None,
    require_splits: bool | str = True,
) -> Manifest:
    """FaceForensics++ as its download script writes it.

    Reals: original_sequences/youtube/<compression>/videos/XXX.mp4 (label 0,
    method "original", video "XXX"). Fakes: manipulated_sequences/<Method>/
    <compression>/videos/XXX_YYY.mp4 (label 1, method lower-case, video
    "XXX_YYY", source "XXX": the target video whose frames were altered, with
    the face of YYY). Masks from manipulated_sequences/<Method>/masks/videos/
    fill the mask column where the file exists.

    `methods`: comma-separated names, or "all" for every method folder present.
    Splits come from the official train/val/test.json in `splits_dir` (default
    <root>/splits; copy them from the FaceForensics++ repository's
    dataset/splits): each [a, b] pair puts a, b, a_b and b_a in that split. A
    video in no split file is an error (the files do not match the download).
    Without a split folder the split column stays empty only with
    require_splits=false. DeepFakeDetection (fakes named
    "01_02__scene__XXXXXXXX", reals in original_sequences/actors) is in no split
    file, so its rows get no split.

    Video ids repeat across methods (every method has a 000_003): group by
    (method, video), not video alone.
    """
    root = Path(root)
    _require_folder(root, "the FaceForensics++ root")
    compression = str(compression).strip().lower()
    if compression not in FFPP_COMPRESSIONS:
        raise ManifestError(f"compression {compression!r} is not one of {', '.join(FFPP_COMPRESSIONS)}")
    wanted = _ffpp_methods(root, methods)
    require_splits = _as_bool(require_splits, "require_splits")

    originals = _ffpp_videos_folder(root, f"original_sequences/youtube/{compression}/videos", "real videos")
    fake_folders = {}
    for method in wanted:
        method_folder = root / "manipulated_sequences" / FFPP_METHOD_FOLDERS[method]
        if not method_folder.is_dir():
            present = _subfolders(root / "manipulated_sequences")
            raise ManifestError(
                f"{root}: no manipulated_sequences/{FFPP_METHOD_FOLDERS[method]} for method {method!r}; "
                f"methods present: {', '.join(present) if present else 'none'} "
                f"(choose with methods=..., e.g. --option methods=deepfakes,faceswap)"
            )
        fake_folders[method] = _ffpp_videos_folder(
            root, f"manipulated_sequences/{FFPP_METHOD_FOLDERS[method]}/{compression}/videos", f"{method} videos"
        )
    actors = None
    if "deepfakedetection" in wanted:
        actors = _ffpp_videos_folder(root, f"original_sequences/actors/{compression}/videos", "DeepFakeDetection real videos")

    split_of = _read_ffpp_splits(root, splits_dir, require_splits)
    not_in_splits: list[str] = []

    def split_for(video: str, relative: str) -> Optional[str]:
        if split_of is None:
            return None
        if video not in split_of:
            not_in_splits.append(relative)
            return None
        return split_of[video]

    samples = []
    for path in _files(originals, {".mp4"}):
        relative = _relative(path, root)
        samples.append(Sample(relative, 0, path.stem, REAL_METHOD, split_for(path.stem, relative), dataset="ffpp"))
    for method, folder in fake_folders.items():
        masks = root / "manipulated_sequences" / FFPP_METHOD_FOLDERS[method] / "masks" / "videos"
        for path in _files(folder, {".mp4"}):
            relative = _relative(path, root)
            mask = masks / path.name
            split = None if method == "deepfakedetection" else split_for(path.stem, relative)
            samples.append(Sample(
                relative, 1, path.stem, method, split, mask=_relative(mask, root) if mask.is_file() else None,
                source=_ffpp_source(path.stem), dataset="ffpp",
            ))
    if actors is not None:
        for path in _files(actors, {".mp4"}):
            samples.append(Sample(_relative(path, root), 0, path.stem, REAL_METHOD, None, dataset="ffpp"))

    if not_in_splits:
        raise ManifestError(
            f"{_count(not_in_splits, 'video')} in no split file of {_ffpp_splits_folder(root, splits_dir)}: "
            f"{_examples(not_in_splits)} (are these the official FaceForensics++ split files?)"
        )
    return Manifest(samples, root)


def _ffpp_methods(root: Path, methods: str | Sequence[str]) -> list[str]:
    names = [n.lower() for n in _as_names(methods)]
    if names == ["all"]:
        present = {folder: method for method, folder in FFPP_METHOD_FOLDERS.items()}
        names = [present[f] for f in _subfolders(root / "manipulated_sequences") if f in present]
        if not names:
            known = ", ".join(FFPP_METHOD_FOLDERS.values())
            raise ManifestError(f"{root}: no manipulated_sequences/<Method> folders ({known})")
    if not names:
        raise ManifestError("methods is empty; name at least one of " + ", ".join(FFPP_METHOD_FOLDERS))
    for name in names:
        if name not in FFPP_METHOD_FOLDERS:
            close = difflib.get_close_matches(name, list(FFPP_METHOD_FOLDERS), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(FFPP_METHOD_FOLDERS)
            raise ManifestError(f"unknown FaceForensics++ method {name!r}.{hint} Methods: {known}, or all.")
    return [m for m in FFPP_METHOD_FOLDERS if m in names]  # canonical order, duplicates dropped


def _ffpp_videos_folder(root: Path, relative: str, what: str) -> Path:
    folder = root / relative
    if not folder.is_dir():
        parent = root.joinpath(*relative.split("/")[:-2])  # the folder holding raw/, c23/, c40/
        present = [c for c in _subfolders(parent) if c in FFPP_COMPRESSIONS] if parent.is_dir() else []
        hint = f"; compressions present there: {', '.join(present)}" if present else ""
        raise ManifestError(f"{root}: no {relative} folder ({what}){hint}")
    if not _files(folder, {".mp4"}):
        raise ManifestError(f"{root}: {relative} holds no .mp4 videos ({what})")
    return folder


def _ffpp_source(video: str) -> str:
    """The target (original) video of a FF++ fake: "004" for "004_982";
    "01__meeting_serious" for the DeepFakeDetection fake "01_02__meeting_serious__YVGY8LOK"."""
    if "__" in video:
        pair, scene = video.split("__")[:2]
        return f"{pair.split('_')[0]}__{scene}"
    return video.split("_")[0]


def _ffpp_splits_folder(root: Path, splits_dir: str | Path | None) -> Path:
    return Path(splits_dir).expanduser() if splits_dir is not None else root / "splits"


def _read_ffpp_splits(root: Path, splits_dir: str | Path | None, require_splits: bool) -> Optional[dict[str, str]]:
    """Video id -> split from the official pair lists, or None where there are
    none and the caller said that is fine."""
    folder = _ffpp_splits_folder(root, splits_dir)
    if not folder.is_dir():
        if splits_dir is None and not require_splits:
            return None
        raise ManifestError(
            f"no FaceForensics++ split folder {folder} (train.json, val.json, test.json from the FaceForensics++ "
            f"repository's dataset/splits); pass splits_dir=DIR, or require_splits=false to leave the split column empty"
        )
    missing = [f"{s}.json" for s in SPLITS if not (folder / f"{s}.json").is_file()]
    if missing:
        raise ManifestError(f"{folder}: missing split file(s) {', '.join(missing)}")
    split_of: dict[str, str] = {}
    for split in SPLITS:
        path = folder / f"{split}.json"
        pairs = _read_json(path)
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(i, str) for i in p) for p in pairs
        ):
            raise ManifestError(f'{path}: expected a JSON list of [id, id] pairs such as [["953", "974"]]')
        for a, b in pairs:
            for video in (a, b, f"{a}_{b}", f"{b}_{a}"):
                earlier = split_of.setdefault(video, split)
                if earlier != split:
                    raise ManifestError(f"{folder}: video {video} is in both {earlier}.json and {split}.json")
    return split_of


# --------------------------------------------------------------------------- Celeb-DF

CELEBDF_FOLDERS = (("Celeb-real", 0), ("YouTube-real", 0), ("Celeb-synthesis", 1))
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_FAKE_METHOD = "celeb-synthesis"
_CELEBDF_FAKE_NAME = re.compile(r"^(id\d+)_id\d+_(\d+)$")


@LAYOUTS.register("celebdf")
def read_celebdf(root: Path, *, require_splits: bool | str = True) -> Manifest:
    """Celeb-DF (v2, also v1): Celeb-real/ and YouTube-real/ (label 0, method
    "original"), Celeb-synthesis/ (label 1, method "celeb-synthesis").

    A fake idA_idB_NNNN puts idB's face into target idA's video NNNN, so its
    source is the real video idA_NNNN. Videos listed in List_of_testing_videos.txt
    get split "test", all others "train". In that file 1 means REAL and 0 FAKE
    (the reverse of ours); every listed label is checked against the folder the
    video is in, so a file with the other convention is refused, not inverted.
    Folder names are matched case-insensitively (some copies say Youtube-real).
    """
    root = Path(root)
    _require_folder(root, "the Celeb-DF root")
    require_splits = _as_bool(require_splits, "require_splits")
    folders = {}
    missing = []
    for name, label in CELEBDF_FOLDERS:
        folder = _child_ignoring_case(root, name)
        if folder is None:
            missing.append(name + "/")
        else:
            folders[name] = (folder, label)
    if missing:
        raise ManifestError(
            f"{root}: no {', '.join(missing)} folder(s) (a Celeb-DF root holds Celeb-real/, YouTube-real/, Celeb-synthesis/)"
        )

    test_list = root / CELEBDF_TEST_LIST
    listed: Optional[dict[tuple[str, str], tuple[int, int, str]]] = None
    if test_list.is_file():
        listed = _read_celebdf_test_list(test_list)
    elif require_splits:
        raise ManifestError(
            f"{root}: no {CELEBDF_TEST_LIST} (the official test list); pass require_splits=false to leave the split column empty"
        )

    samples = []
    found = set()
    for name, (folder, label) in folders.items():
        videos = _files(folder, {".mp4"})
        if not videos:
            raise ManifestError(f"{folder}: no .mp4 videos")
        for path in videos:
            key = (name.lower(), path.name)
            split = None
            if listed is not None:
                split = "train"
                if key in listed:
                    found.add(key)
                    line, listed_label, text = listed[key]
                    if listed_label != label:
                        said = "fake" if listed_label else "real"
                        raise ManifestError(
                            f"{test_list}:{line}: {text!r} marks a {said} video (1 = real, 0 = fake in that file), "
                            f"but it is in {folder.name}/"
                        )
                    split = "test"
            source = None
            if label == 1:
                match = _CELEBDF_FAKE_NAME.match(path.stem)
                source = f"{match.group(1)}_{match.group(2)}" if match else None
            method = CELEBDF_FAKE_METHOD if label else REAL_METHOD
            samples.append(Sample(_relative(path, root), label, path.stem, method, split, source=source, dataset="celebdf"))
    if listed is not None:
        absent = [listed[k][2] for k in listed if k not in found]
        if absent:
            raise ManifestError(f"{test_list} lists {_count(absent, 'video')} not found under {root}: {_examples(absent)}")
    return Manifest(samples, root)


def _read_celebdf_test_list(path: Path) -> dict[tuple[str, str], tuple[int, int, str]]:
    """(folder lower-cased, file name) -> (line number, label in OUR convention, listed path)."""
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or "/" not in parts[1]:
            raise ManifestError(f"{path}:{number}: expected '<1 real | 0 fake> Folder/video.mp4', got {line.strip()!r}")
        listed_path = parts[1].replace("\\", "/")
        folder, _, name = listed_path.rpartition("/")
        entries[(folder.split("/")[-1].lower(), name)] = (number, 1 - int(parts[0]), listed_path)
    if not entries:
        raise ManifestError(f"{path}: the test list is empty")
    return entries


# --------------------------------------------------------------------------- DFDC

_DFDC_PART = re.compile(r"^dfdc_train_part_(\d+)$")


@LAYOUTS.register("dfdc")
def read_dfdc(
    root: Path, *, val_parts: str | Iterable[int] | None = None, test_parts: str | Iterable[int] | None = None,
) -> Manifest:
    """The full DFDC training set: dfdc_train_part_N/ folders, each with the
    videos and a metadata.json mapping file name -> {"label": "REAL" | "FAKE",
    "split": ..., "original": "<real>.mp4" for fakes}.

    Video id = file stem; source = the original's stem; fakes get no method
    (DFDC does not say which method made each). The released metadata says
    "train" for every video, so a held-out set is chosen by part number:
    val_parts / test_parts (e.g. "45-49") put those parts in val / test, and
    every other video keeps its metadata split. A fake whose original is in
    another split is logged as a warning (held-out fakes of training videos
    flatter a detector).
    """
    root = Path(root)
    _require_folder(root, "the DFDC root")
    parts = sorted(
        ((int(m.group(1)), d) for d in root.iterdir() if d.is_dir() and (m := _DFDC_PART.match(d.name))),
    )
    if not parts:
        hint = " (they are in train/: pass that folder)" if (root / "train").is_dir() and any(
            _DFDC_PART.match(d.name) for d in (root / "train").iterdir()) else ""
        raise ManifestError(f"{root}: no dfdc_train_part_N/ folders (each with a metadata.json){hint}")
    held_out = {}
    for split, option, value in (("val", "val_parts", val_parts), ("test", "test_parts", test_parts)):
        for number in _as_part_numbers(value, option):
            if number in held_out:
                raise ManifestError(f"part {number} is in both val_parts and test_parts")
            held_out[number] = split
    absent_parts = sorted(set(held_out) - {n for n, _ in parts})
    if absent_parts:
        names = ", ".join(f"dfdc_train_part_{n}" for n in absent_parts)
        raise ManifestError(f"{root}: no {names} (named in val_parts/test_parts)")

    samples = []
    missing_files = []
    for number, part in parts:
        metadata_path = part / "metadata.json"
        if not metadata_path.is_file():
            raise ManifestError(f"{root}: no {part.name}/metadata.json")
        metadata = _read_json(metadata_path)
        if not isinstance(metadata, dict) or not metadata:
            raise ManifestError(f"{metadata_path}: expected a non-empty JSON object: file name -> {{label, split, original}}")
        for name, info in sorted(metadata.items()):
            where = f"{metadata_path}: {name}"
            label = _label_from_word(_field(info, "label", where), {"real": 0, "fake": 1}, where)
            split = held_out.get(number) or _split_name(_field(info, "split", where), where)
            original = info.get("original") if label == 1 else None
            path = part / name
            if not path.is_file():
                missing_files.append(_relative(path, root))
            samples.append(Sample(
                _relative(path, root), label, Path(name).stem, REAL_METHOD if label == 0 else None, split,
                source=Path(original).stem if original else None, dataset="dfdc",
            ))
    if missing_files:
        raise ManifestError(
            f"metadata.json lists {_count(missing_files, 'video')} missing under {root}: {_examples(missing_files)}"
        )
    _warn_sources_across_splits(samples)
    return Manifest(samples, root)


def _warn_sources_across_splits(samples: Sequence[Sample]) -> None:
    split_of_real = {s.video: s.split for s in samples if s.label == 0}
    crossing = [s for s in samples if s.source in split_of_real and split_of_real[s.source] != s.split]
    if crossing:
        first = crossing[0]
        log.warning("%d fake(s) are in another split than their original, e.g. %s (%s) made from %s (%s)",
                    len(crossing), first.video, first.split, first.source, split_of_real[first.source])


# --------------------------------------------------------------------------- DFDC Preview

DFDCP_INDEX = "dataset.json"
DFDCP_METHODS = {"original_videos": REAL_METHOD, "method_a": "method_a", "method_b": "method_b"}


@LAYOUTS.register("dfdcp")
def read_dfdcp(root: Path) -> Manifest:
    """The DFDC Preview: dataset.json at the root maps each video's relative path
    (original_videos/..., method_A/..., method_B/...) to {"label": "real" |
    "fake", "set": "train" | "test", ...}; other fields are ignored.

    Those field names are the ones public code reading this file relies on
    (e.g. DeepfakeBench's preprocessing); they were not checked against a
    copy of the dataset. Method = the top folder ("original", "method_a",
    "method_b"). Video id = file stem, or the path without extension where two
    files share a stem. The preview does not say which real clip each fake was
    made from, so source stays empty.
    """
    root = Path(root)
    _require_folder(root, "the DFDC Preview root")
    index_path = root / DFDCP_INDEX
    if not index_path.is_file():
        raise ManifestError(f"{root}: no {DFDCP_INDEX} (the DFDC Preview index of labels and sets)")
    index = _read_json(index_path)
    if not isinstance(index, dict) or not index:
        raise ManifestError(f"{index_path}: expected a non-empty JSON object of video path -> {{label, set}}")
    entries = []
    missing_files = []
    for name, info in sorted(index.items()):
        where = f"{index_path}: {name}"
        relative = name.replace("\\", "/").lstrip("/")
        label = _label_from_word(_field(info, "label", where), {"real": 0, "fake": 1}, where)
        split = _split_name(_field(info, "set", where), where)
        top = relative.split("/")[0]
        method = REAL_METHOD if label == 0 else DFDCP_METHODS.get(top.lower(), top.lower())
        if not (root / relative).is_file():
            missing_files.append(relative)
        entries.append((relative, label, method, split))
    if missing_files:
        raise ManifestError(
            f"{index_path} lists {_count(missing_files, 'video')} missing under {root}: {_examples(missing_files)}"
        )
    videos = _unique_video_ids([e[0] for e in entries])
    samples = [Sample(rel, label, videos[rel], method, split, dataset="dfdcp") for rel, label, method, split in entries]
    return Manifest(samples, root)


def _unique_video_ids(paths: Sequence[str]) -> dict[str, str]:
    stems = Counter(PurePosixPath(p).stem for p in paths)
    return {p: PurePosixPath(p).stem if stems[PurePosixPath(p).stem] == 1 else str(PurePosixPath(p).with_suffix(""))
            for p in paths}


# --------------------------------------------------------------------------- DeepfakeBench

# DeepfakeBench's label names (training/config/*_config.yaml label_dict) -> our label
DEEPFAKEBENCH_LABELS = {
    "FF-real": 0, "FF-DF": 1, "FF-F2F": 1, "FF-FS": 1, "FF-NT": 1, "FF-FH": 1, "FF-SH": 1,
    "DFD_real": 0, "DFD_fake": 1,
    "CelebDFv1_real": 0, "CelebDFv1_fake": 1, "CelebDFv2_real": 0, "CelebDFv2_fake": 1,
    "DFDCP_Real": 0, "DFDCP_FakeA": 1, "DFDCP_FakeB": 1, "DFDC_Real": 0, "DFDC_Fake": 1,
    "DF_real": 0, "DF_fake": 1, "UADFV_Real": 0, "UADFV_Fake": 1,
}
# ... and to our method names, where they name a FaceForensics++ method
DEEPFAKEBENCH_METHODS = {
    "FF-DF": "deepfakes", "FF-F2F": "face2face", "FF-FS": "faceswap", "FF-NT": "neuraltextures",
    "FF-FH": "faceshifter", "DFD_fake": "deepfakedetection",
}


@LAYOUTS.register("deepfakebench")
def read_deepfakebench(
    root: Path,
    *,
    frames_root: str | Path | None = None,
    datasets: str | Sequence[str] | None = None,
    splits: str | Sequence[str] | None = None,
    compression: str = "c23",
    labels: str | None = None,
    check_files: bool | str = True,
) -> Manifest:
    """A DeepfakeBench index (preprocessing/dataset_json/<Name>.json), one row
    per frame. `root` is the JSON file.

    Structure: {dataset: {label name: {split: {[compression: ]{video: {"label":
    label name, "frames": [paths], "masks": [paths]?}}}}}}; the compression level
    (raw/c23/c40) exists for FaceForensics++-derived sets only, and `compression`
    picks it. Label names map through DeepfakeBench's own label_dict (FF-real 0,
    FF-DF 1, CelebDFv2_real 0, DFDCP_FakeA 1, ...); other names by their ending
    (real -> 0, fake... -> 1); `labels="Name=0,Other=1"` settles the rest.
    Frame paths are relative to DeepfakeBench's rgb_dir: pass it as
    `frames_root` (default: the JSON's folder); Windows separators are accepted.
    Masks are paired with frames by file name.

    DeepfakeBench copies some videos into several splits (Celeb-DF's test list
    is both val and test); those rows are kept once per split, as the index
    says, and a warning is logged; pick with `splits=train,test`.
    """
    root = Path(root)
    if root.is_dir():
        raise ManifestError(f"{root} is a folder: pass the DeepfakeBench JSON file itself (e.g. dataset_json/Celeb-DF-v2.json)")
    if not root.is_file():
        raise ManifestError(f"no DeepfakeBench index {root}")
    index = _read_json(root)
    if not isinstance(index, dict) or not index:
        raise ManifestError(f"{root}: expected a JSON object {{dataset: {{label: {{split: ...}}}}}}")
    frames_root = Path(frames_root).expanduser() if frames_root is not None else root.parent
    label_of = dict(DEEPFAKEBENCH_LABELS)
    label_of.update(_parse_label_overrides(labels))

    wanted_datasets = _as_names(datasets) or list(index)
    for name in wanted_datasets:
        if name not in index:
            raise ManifestError(f"{root}: no dataset {name!r}; it holds {', '.join(index)}")
    wanted_splits = _as_names(splits)
    compression = str(compression).strip().lower()
    check_files = _as_bool(check_files, "check_files")

    samples = []
    splits_seen: set[str] = set()
    videos_by_split: dict[tuple[str, str, str], set[str]] = {}
    for dataset_name in wanted_datasets:
        by_label = _mapping(index[dataset_name], dataset_name, root)
        for label_name, by_split in by_label.items():
            where = f"{dataset_name}/{label_name}"
            for split, node in _mapping(by_split, where, root).items():
                splits_seen.add(split)
                if wanted_splits and split not in wanted_splits:
                    continue
                node_where = f"{where}/{split}"
                videos = _deepfakebench_videos(node, node_where, compression, root)
                for video, entry in videos.items():
                    entry_where = f"{node_where}/{video}"
                    entry_label = entry.get("label", label_name)
                    label = _deepfakebench_label(entry_label, label_of, entry_where, root)
                    method = REAL_METHOD if label == 0 else DEEPFAKEBENCH_METHODS.get(entry_label, str(entry_label).lower())
                    source = _deepfakebench_source(entry_label, video) if label == 1 else None
                    videos_by_split.setdefault((dataset_name, str(entry_label), video), set()).add(split)
                    for frame_path, mask_path in _deepfakebench_frames(entry, entry_where, root):
                        samples.append(Sample(
                            frame_path, label, video, method, _split_name(split, f"{root}: {node_where}"),
                            mask=mask_path, source=source, frame=_trailing_number(frame_path), dataset="deepfakebench",
                        ))
    unknown_splits = [s for s in wanted_splits if s not in splits_seen]
    if unknown_splits:
        raise ManifestError(f"{root}: no split {', '.join(unknown_splits)}; splits present: {', '.join(sorted(splits_seen))}")
    if not samples:
        among = f" for splits {', '.join(wanted_splits)}" if wanted_splits else ""
        raise ManifestError(f"{root}: no frames in {', '.join(wanted_datasets)}{among}")
    if check_files:
        missing = sorted({s.path for s in samples if not (frames_root / s.path).is_file()})
        if missing:
            raise ManifestError(
                f"{_count(missing, 'frame')} of {root.name} not found under {frames_root}: {_examples(missing)} "
                f"(pass frames_root=DIR, DeepfakeBench's rgb_dir, or check_files=false)"
            )
    shared = sorted(k[2] for k, v in videos_by_split.items() if len(v) > 1)
    if shared:
        log.warning("%s: %s listed in more than one split (e.g. %s), kept once per split as the index says; "
                    "choose splits with splits=...", root.name, _count(shared, "video"), shared[0])
    return Manifest(samples, frames_root)


def _deepfakebench_videos(node: object, where: str, compression: str, root: Path) -> dict[str, dict]:
    node = _mapping(node, where, root)
    if "frames" in node and "label" in node:
        raise ManifestError(
            f"{root}: {where} is a single video entry where a mapping of videos belongs "
            f"(a known defect of some DeepfakeBench indexes); leave that split out with splits=..."
        )
    levels = [k for k in node if k in FFPP_COMPRESSIONS]
    if levels and len(levels) == len(node):
        if compression not in node:
            raise ManifestError(f"{root}: {where} has no compression {compression!r}; present: {', '.join(levels)}")
        node = _mapping(node[compression], f"{where}/{compression}", root)
    for video, entry in node.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("frames"), list):
            raise ManifestError(f"{root}: {where}/{video} is not a video entry {{\"label\": ..., \"frames\": [...]}}")
    return node


def _deepfakebench_frames(entry: dict, where: str, root: Path) -> list[tuple[str, Optional[str]]]:
    """(frame path, mask path or None), in frame order."""
    def clean(path: object) -> str:
        if not isinstance(path, str) or not path.strip():
            raise ManifestError(f"{root}: {where} has a frame or mask path that is not a string: {path!r}")
        text = path.strip().replace("\\", "/")
        return text[2:] if text.startswith("./") else text

    masks = {PurePosixPath(clean(m)).name: clean(m) for m in entry.get("masks") or []}
    frames = [clean(f) for f in entry["frames"]]
    frames.sort(key=lambda p: (_trailing_number(p) if _trailing_number(p) is not None else -1, p))
    return [(f, masks.get(PurePosixPath(f).name)) for f in frames]


def _deepfakebench_label(name: object, label_of: dict[str, int], where: str, root: Path) -> int:
    if not isinstance(name, str):
        raise ManifestError(f"{root}: {where}: label {name!r} is not a DeepfakeBench label name")
    if name in label_of:
        return label_of[name]
    lower = name.lower()
    if lower.endswith("real"):
        return 0
    if re.search(r"fake[a-z0-9]*$", lower):
        return 1
    raise ManifestError(
        f"{root}: {where}: cannot tell whether label {name!r} is real or fake; "
        f"say so with labels={name}=1 (fake) or labels={name}=0 (real)"
    )


def _deepfakebench_source(label_name: object, video: str) -> Optional[str]:
    if isinstance(label_name, str) and (label_name.startswith("FF-") or label_name == "DFD_fake"):
        return _ffpp_source(video) if re.match(r"^\d+_\d+($|__)", video) else None
    if isinstance(label_name, str) and label_name.startswith("CelebDF"):
        match = _CELEBDF_FAKE_NAME.match(video)
        return f"{match.group(1)}_{match.group(2)}" if match else None
    return None


def _parse_label_overrides(text: str | dict | None) -> dict[str, int]:
    if not text:
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for pair in _as_names(text):
            name, sep, value = pair.partition("=")
            if not sep:
                raise ManifestError(f"labels: expected Name=0 or Name=1, got {pair!r}")
            items.append((name.strip(), value.strip()))
    overrides = {}
    for name, value in items:
        if str(value) not in ("0", "1"):
            raise ManifestError(f"labels: {name} must be 0 (real) or 1 (fake), got {value!r}")
        overrides[name] = int(value)
    return overrides


# --------------------------------------------------------------------------- plain folders

FOLDERS_MEDIA = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
FOLDER_VIDEO_IDS = ("auto", "stem", "folder")


@LAYOUTS.register("folders")
def read_folders(root: Path, *, video_id: str = "auto") -> Manifest:
    """real/ (label 0, method "original") and fake/ (label 1, no method) folders,
    searched recursively for images and videos by extension; or a manifest CSV,
    which is read as it is (its dataset column filled with "folders" where empty).

    Video id: a video's file stem; for an image, the name of the folder it is
    in when that folder is below real/ or fake/ (frames extracted one folder
    per video, frame = the file name's trailing number), else its stem.
    video_id=stem or video_id=folder forces one rule (e.g. when images sit in
    per-method folders, not per-video ones). Hidden files are skipped.
    """
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise ManifestError(f"{root}: not a folder with real/ and fake/, nor a manifest .csv")
        return Manifest.read(root).with_dataset("folders")
    _require_folder(root, "the dataset folder")
    rule = str(video_id).strip().lower()
    if rule not in FOLDER_VIDEO_IDS:
        raise ManifestError(f"video_id must be one of {', '.join(FOLDER_VIDEO_IDS)}, got {video_id!r}")
    classes = [(name, label, _child_ignoring_case(root, name)) for name, label in (("real", 0), ("fake", 1))]
    missing = [f"{name}/" for name, _, folder in classes if folder is None]
    if missing:
        hint = f"; to read its manifest.csv, pass {root / 'manifest.csv'}" if (root / "manifest.csv").is_file() else ""
        raise ManifestError(f"{root}: no {' or '.join(missing)} folder{hint}")

    if (root / "manifest.csv").is_file():
        log.warning("%s also holds manifest.csv; indexing real/ and fake/ ignores its columns (split, ...): "
                    "pass %s to read it instead", root, root / "manifest.csv")
    samples = []
    for name, label, folder in classes:
        files = _files(folder, FOLDERS_MEDIA, recursive=True)
        if not files:
            raise ManifestError(f"{folder}: no images or videos (by extension) in it or below it")
        for path in files:
            is_image = path.suffix.lower() in IMAGE_EXTENSIONS
            in_subfolder = path.parent != folder
            by_folder = rule == "folder" or (rule == "auto" and is_image and in_subfolder)
            video = path.parent.name if by_folder and in_subfolder else path.stem
            frame = _trailing_number(path.name) if by_folder and in_subfolder and is_image else None
            samples.append(Sample(
                _relative(path, root), label, video, REAL_METHOD if label == 0 else None, frame=frame, dataset="folders",
            ))
    return Manifest(samples, root)


# --------------------------------------------------------------------------- whole-image sets

@LAYOUTS.register("image-forensics")
def read_image_forensics(
    root: Path,
    *,
    ciplab: str = "auto",
    seed: int | str = 0,
    holdout: str = "",
    val: float | str = 0.15,
    test: float | str = 0.15,
) -> Manifest:
    """The shared image-forensics folder (cifake-sd14, styleclip-stylegan2-e4e, faces140k-sample;
    not casia2-samples, whose fakes are tampered, not generated) merged into one manifest for
    whole-image detectors, plus the real photos of CIPLAB (`ciplab`: auto = the sibling folder
    ciplab-faces when present, none, or a folder; its split column is kept).

    Columns path,label,generator,family,dataset,split,method,source (family real | gan |
    diffusion from the generator name; method = the generator for fakes, "original" for reals).
    Rows without a source split get a fixed split stratified by (dataset, label), val/test
    shares 0.15 each, from `seed`; `holdout` names datasets (comma-separated) put wholly in test,
    for a cross-generator test. Tiny sets: see fakescope.data.images.
    """
    from .images import index_image_forensics

    try:
        seed_value = int(seed)
        val_value, test_value = float(val), float(test)
    except ValueError:
        raise ManifestError(f"seed must be an integer and val, test numbers; got {seed!r}, {val!r}, {test!r}") from None
    return index_image_forensics(root, ciplab=ciplab, seed=seed_value, holdout=holdout, val=val_value, test=test_value)


# --------------------------------------------------------------------------- shared helpers

def _require_folder(path: Path, what: str) -> None:
    if not path.is_dir():
        raise ManifestError(f"{path}: no such folder ({what})" if not path.exists() else f"{path}: not a folder ({what})")


def _subfolders(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []


def _child_ignoring_case(folder: Path, name: str) -> Optional[Path]:
    exact = folder / name
    if exact.is_dir():
        return exact
    matches = [d for d in folder.iterdir() if d.is_dir() and d.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _files(folder: Path, extensions: set[str], recursive: bool = False) -> list[Path]:
    """Files with these extensions, sorted; hidden files and folders skipped.
    Symlinked files and folders are followed (datasets are often assembled from
    links), each real folder once, so a link cycle cannot loop."""
    if not recursive:
        candidates = list(folder.iterdir())
    else:
        candidates, seen = [], set()
        for current, subfolders, names in os.walk(folder, followlinks=True):
            real = os.path.realpath(current)
            if real in seen:
                subfolders[:] = []
                continue
            seen.add(real)
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            candidates.extend(Path(current) / n for n in names)
    return sorted(p for p in candidates if p.suffix.lower() in extensions and not p.name.startswith(".") and p.is_file())


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot be read ({exc})") from None


def _mapping(node: object, where: str, root: Path) -> dict:
    if not isinstance(node, dict):
        raise ManifestError(f"{root}: {where} should be a JSON object, found {type(node).__name__}")
    return node


def _field(info: object, key: str, where: str) -> object:
    if not isinstance(info, dict) or key not in info:
        raise ManifestError(f"{where}: no {key!r} field")
    return info[key]


def _label_from_word(value: object, words: dict[str, int], where: str) -> int:
    text = str(value).strip().lower()
    if text not in words:
        raise ManifestError(f"{where}: label {value!r} is none of {', '.join(w.upper() for w in words)}")
    return words[text]


def _split_name(value: object, where: str) -> str:
    text = str(value).strip().lower()
    text = {"validation": "val", "valid": "val"}.get(text, text)
    if text not in SPLITS:
        raise ManifestError(f"{where}: split {value!r} is none of {', '.join(SPLITS)}")
    return text


def _trailing_number(path: str) -> Optional[int]:
    match = re.search(r"(\d+)$", PurePosixPath(path).stem)
    return int(match.group(1)) if match else None


def _as_bool(value: bool | str, option: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ManifestError(f"option {option}: expected true or false, got {value!r}")


def _as_names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def _as_part_numbers(value: str | Iterable[int] | None, option: str) -> list[int]:
    """"3,5,40-42" -> [3, 5, 40, 41, 42]."""
    numbers = []
    for item in _as_names(value if value is None or isinstance(value, str) else [str(v) for v in value]):
        low, dash, high = item.partition("-")
        try:
            start, end = int(low), int(high if dash else low)
        except ValueError:
            raise ManifestError(f"option {option}: expected part numbers like 3,5,40-49, got {item!r}") from None
        if end < start:
            raise ManifestError(f"option {option}: empty range {item!r}")
        numbers.extend(range(start, end + 1))
    return numbers


def _count(items: Sequence, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _examples(items: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")
