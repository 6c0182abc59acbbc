"""Converters from published weights to fakescope checkpoints.

An importer takes (source file, architecture, output path) and returns the
written checkpoint's sha256. The checkpoint records the preprocessing the
original authors used, so scans with it crop and normalise faces their way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import ModelLoadError
from .models.base import save_checkpoint
from .registry import Registry

Importer = Callable[[Path, str, Path], str]
IMPORTERS: Registry[Importer] = Registry("weights family")


@IMPORTERS.register("mesonet")
def import_mesonet(source: Path, arch: str, output: Path) -> str:
    from .models.mesonet import MESONET_PREPROCESS, import_keras_mesonet

    if not Path(source).is_file():
        raise ModelLoadError(f"{source}: no such file")
    model = import_keras_mesonet(source, arch)
    provenance = {
        "source": "MesoNet, Afchar et al., WIFS 2018 (github.com/DariusAf/MesoNet), Apache-2.0",
        "converted_from": Path(source).name,
        "note": "published sigmoid gave P(real); the last layer is negated so the logit is the fake logit",
    }
    return save_checkpoint(output, model, arch, MESONET_PREPROCESS, provenance)
