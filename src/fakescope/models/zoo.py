"""Named detectors whose weights ship inside the package.

`weights/zoo.json` lists each entry: checkpoint file, sha256, architecture,
what it was trained on, its licence and what we measured. Loading checks the
sha256, so a damaged install fails loudly instead of scoring garbage.

PyTorch (`models.base`) is imported only inside `load_detector`: the scan path on ONNX Runtime
and `fakescope models` use `DEFAULT_MODEL`, `WEIGHTS_DIR` and `zoo_entries()` without it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelLoadError
from ..registry import Registry

if TYPE_CHECKING:
    from .base import LoadedDetector

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "efficientnet-lite0-faces"


@lru_cache(maxsize=1)
def zoo_entries() -> dict[str, dict[str, Any]]:
    index = WEIGHTS_DIR / "zoo.json"
    return json.loads(index.read_text()) if index.is_file() else {}


def _zoo_registry() -> Registry[dict]:
    registry: Registry[dict] = Registry("shipped model")
    for name, entry in zoo_entries().items():
        registry.register(name)(entry)
    return registry


def load_detector(name_or_path: str | Path | None = None) -> LoadedDetector:
    """A shipped model by name, or a fakescope checkpoint file by path."""
    from .base import MODELS, load_checkpoint

    name_or_path = str(name_or_path or DEFAULT_MODEL)
    zoo = _zoo_registry()
    if name_or_path in zoo:
        entry = zoo.get(name_or_path)
        detector = load_checkpoint(WEIGHTS_DIR / entry["file"], expected_sha256=entry["sha256"])
        detector.name = name_or_path
        return detector
    path = Path(name_or_path)
    if path.exists() or path.suffix in {".pt", ".pth", ".ckpt", ".h5"}:
        if path.suffix == ".h5":
            raise ModelLoadError(
                f"{path} is Keras weights; convert it first: fakescope import-weights mesonet {path} --arch meso4 -o model.pt"
            )
        return load_checkpoint(path)
    if name_or_path in MODELS:
        raise ModelLoadError(
            f"architecture {name_or_path!r} has no shipped weights; pass a checkpoint file "
            f"or one of: {', '.join(zoo)}"
        )
    raise ModelLoadError(zoo.unknown_message(name_or_path) + " Or pass a checkpoint file path.")
