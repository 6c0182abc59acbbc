"""Converters from published weights to fakescope checkpoints.

An importer takes (source file, architecture, output path) and returns the
written checkpoint's sha256 (classnseg also takes a ``variant``, and its
architecture may be None). The checkpoint records the preprocessing the
original authors used, so scans with it crop and normalise faces their way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

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


@IMPORTERS.register("classnseg")
def import_classnseg(source: Path, arch: Optional[str], output: Path, variant: Optional[str] = None) -> str:
    """ClassNSeg's Y-shaped autoencoder (Nguyen et al., BTAS 2019): ``source`` is the
    folder with the published weights or the encoder file (the decoder file is found
    beside it); ``variant`` full (encoder_46 / decoder_46, trained on FaceForensics
    Face2Face) or finetuned (finetune_encoder_26 / finetune_decoder_26) picks the pair
    in a folder."""
    from .models.y_autoencoder import Y_AUTOENCODER_PREPROCESS, classnseg_files, file_sha256, load_classnseg

    if arch not in (None, "y_autoencoder"):
        raise ModelLoadError(f"ClassNSeg weights are the y_autoencoder architecture, not {arch}")
    encoder, decoder, variant = classnseg_files(source, variant)
    model = load_classnseg(encoder, decoder)
    provenance = {
        "source": "ClassNSeg, Nguyen, Fang, Yamagishi, Echizen, BTAS 2019 (github.com/nii-yamagishilab/ClassNSeg), "
                  "BSD-3-Clause, Copyright (c) 2019, National Institute of Informatics",
        "licence": "BSD-3-Clause",
        "converted_from": [encoder.name, decoder.name],
        "converted_from_sha256": [file_sha256(encoder), file_sha256(decoder)],
        "variant": variant,
        "trained_on": "FaceForensics Face2Face"
                      + (", then fine-tuned on a new manipulation" if variant == "finetuned" else ""),
        "note": "latent half 0 = altered, half 1 = original; logit = a_fake - a_real (sigmoid = the authors' softmax "
                "score); mask = difference of the two segmentation logits",
    }
    return save_checkpoint(output, model, "y_autoencoder", Y_AUTOENCODER_PREPROCESS, provenance)
