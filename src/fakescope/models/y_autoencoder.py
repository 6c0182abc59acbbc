"""The multi-task Y-shaped autoencoder of Nguyen, Fang, Yamagishi and Echizen,
"Multi-task Learning for Detecting and Segmenting Manipulated Facial Images and
Videos", IEEE BTAS 2019 (code and weights: github.com/nii-yamagishilab/ClassNSeg,
BSD-3-Clause), laid out so that the published state dicts load one to one. A
9-layer conv-BN-ReLU encoder (strides 1, 2, 1, 2, ...) maps a 256 x 256 face to a
128 x 16 x 16 latent whose two 64-channel halves stand for the two classes (half 0
= altered/fake, half 1 = original/real, the authors' ImageFolder order); the class
is the half with the larger mean absolute activation. The half of the other class
is zeroed and the latent is decoded by a shared transposed-conv trunk into a
segmentation head (2-way mask) and a reconstruction head (tanh). Departures: (1)
one fake logit ``a_fake - a_real`` instead of the authors' argmax, so sigmoid of it
is exactly their softmax score for "altered" and ``logit > 0`` is their decision;
(2) the mask is returned as the logit difference of the two segmentation channels
(``sigmoid(mask)`` = their softmax probability of "manipulated"), and the
segmentation loss is the trainer's per-pixel BCE on it, which is the 2-way softmax
cross-entropy on the raw channel logits -- the authors apply ``CrossEntropyLoss``
after their ``Softmax`` (a softmax taken twice), which we do not reproduce; (3)
during training the decoder is fed the ground-truth class half (as theirs) only
when the labels reach the model through ``augment_training_batch`` for that very
batch tensor; any other forward decodes the predicted class half, as their test
scripts do; (4) the trainer's BCE on the fake logit is kept by default (see
``classification_bce``); (5) any input side divisible by 16 works (fully
convolutional), not only 256.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError
from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The authors' crops: a square of 1.3 x the face height around the face (their
#: create_dataset_*.py, ``--scale 1.3``; the box there comes from the manipulation
#: mask or dlib, here from MTCNN), resized to 256, ImageNet mean/std (train.py).
Y_AUTOENCODER_PREPROCESS = PreprocessSpec(input_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)

LATENT_CHANNELS = 128
HALF = LATENT_CHANNELS // 2
#: latent half -> class, in the published weights' order
FAKE_HALF, REAL_HALF = 0, 1

#: published checkpoints (ClassNSeg checkpoints/full and checkpoints/finetune,
#: as named in fakescope's shared weights folder)
CLASSNSEG_VARIANTS = {
    "full": ("encoder_46.pt", "decoder_46.pt"),
    "finetuned": ("finetune_encoder_26.pt", "finetune_decoder_26.pt"),
}
#: the same files in the authors' repository layout (checkpoints/<folder>/...)
_UPSTREAM_LAYOUT = {"full": ("full", "encoder_46.pt", "decoder_46.pt"),
                    "finetuned": ("finetune", "encoder_26.pt", "decoder_26.pt")}


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def _up_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    # stride 2 with output_padding 1 exactly doubles the side; stride 1 keeps it
    return [nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=1, output_padding=stride - 1),
            nn.BatchNorm2d(cout), nn.ReLU()]


def _head(out_channels: int) -> list[nn.Module]:
    """32 channels at 1/4 scale -> full scale: up-conv pairs (stride 1, 2) to 16 then 8 channels, a last up-conv."""
    return [*_up_bn_relu(32, 16, 1), *_up_bn_relu(16, 16, 2), *_up_bn_relu(16, 8, 1), *_up_bn_relu(8, 8, 2),
            nn.ConvTranspose2d(8, out_channels, 3, stride=1, padding=1)]


def _authors_init(module: nn.Module) -> None:
    # ClassNSeg's weights_init: conv weights N(0, 0.02), BN scale N(0.5, 0.02), BN shift 0
    # (conv biases keep PyTorch's default). They apply it to the encoder and both heads,
    # not to the decoder's shared trunk.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 0.5, 0.02)
        nn.init.zeros_(module.bias)


@MODELS.register("y_autoencoder")
class YAutoencoder(DetectorModel):
    """Y-shaped autoencoder (ClassNSeg, Nguyen et al. BTAS 2019): latent-activation class, mask and reconstruction.

    Output: ``logits`` (B,) = a_fake - a_real, where a_c is the mean |activation| of
    latent half c; ``features`` (B, 128) the latent's per-channel mean |activation|;
    ``mask`` (B, 1, H, W) manipulation-mask logits at the input size;
    ``reconstruction`` (B, 3, H, W) in [-1, 1] (tanh, against the normalised input);
    ``activations`` (B, 2) = (a_fake, a_real); ``input`` the input, for L_rec.

    Loss (``training_losses``): act_weight x L_act + rec_weight x L_rec, with
    L_act = mean_b(|a_fake - y| + |a_real - (1 - y)|) (y = 1 fake) and L_rec the MSE
    of the reconstruction against the normalised input; the segmentation term is the
    recipe's ``loss.mask_weight`` (its gamma_seg). ``loss_normalise`` divides each term
    by its value for an uninformative prediction, so all three start near 1: L_act by 1
    (both activations 0.5, or an all-zero latent, give exactly 1), L_rec by the batch's
    mean squared input (the MSE of predicting a zero image); the trainer's mask BCE is
    ln 2 at chance, so set ``loss.mask_weight`` to gamma_seg / ln 2 (~1.443 gamma_seg).
    ``classification_bce=False`` adds minus the trainer's BCE on ``logits`` (the same
    expression, so the two cancel exactly): the objective is then the paper's
    weighted sum alone. Keeping it (the default) does not move L_act's minimiser:
    per sample, the BCE's derivative with respect to a_fake or a_real is
    sigmoid(+-logit) < 1 in size, smaller than the L1 term's unit slope on either side
    of its target, so with act_weight >= 1 the joint minimum stays at (a_fake, a_real)
    = (y, 1 - y); it only adds a bounded pull towards the right side during training.

    Videos: the paper averages the frame probabilities, fakescope's ``mean`` aggregation
    (``scan(..., aggregation="mean")``; with one face track the default
    ``max_track_mean`` gives the same score).
    """

    default_preprocess = Y_AUTOENCODER_PREPROCESS

    def __init__(
        self,
        act_weight: float = 1.0,
        rec_weight: float = 1.0,
        loss_normalise: bool = False,
        classification_bce: bool = True,
        decode_true_class: bool = True,
    ):
        super().__init__()
        self.act_weight = float(act_weight)
        self.rec_weight = float(rec_weight)
        self.loss_normalise = bool(loss_normalise)
        self.classification_bce = bool(classification_bce)
        self.decode_true_class = bool(decode_true_class)
        # indices of every Sequential match the published state dicts (ReLU / Softmax /
        # Tanh slots included), so their keys map one to one (see load_classnseg)
        widths = [(3, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, LATENT_CHANNELS)]
        self.encoder = nn.Sequential(*[m for i, (cin, cout) in enumerate(widths)
                                       for m in _conv_bn_relu(cin, cout, stride=1 + i % 2)])
        self.shared = nn.Sequential(*_up_bn_relu(LATENT_CHANNELS, 64, 1), *_up_bn_relu(64, 64, 2),
                                    *_up_bn_relu(64, 32, 1), *_up_bn_relu(32, 32, 2))
        self.segmenter = nn.Sequential(*_head(2))  # raw 2-way logits: the softmax is taken where needed
        self.reconstructor = nn.Sequential(*_head(3), nn.Tanh())  # the authors' Decoder.decoder
        for part in (self.encoder, self.segmenter, self.reconstructor):
            part.apply(_authors_init)
        self._true_labels: Optional[tuple[int, tuple[int, ...], torch.Tensor]] = None

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        latent = self.encoder(x)
        features = latent.abs().mean(dim=(2, 3))  # (B, 128); the encoder ends in ReLU, abs kept for the definition
        act = features.unflatten(1, (2, HALF)).mean(dim=2)  # (B, 2): mean |activation| of each half
        logits = act[:, FAKE_HALF] - act[:, REAL_HALF]
        fake = self._decode_as_fake(x, logits)
        keep = torch.stack([fake, 1.0 - fake], dim=1).to(latent.dtype)  # one-hot over halves (FAKE_HALF first)
        selected = (latent.unflatten(1, (2, HALF)) * keep[:, :, None, None, None]).flatten(1, 2)
        trunk = self.shared(selected)
        seg = self.segmenter(trunk)
        return {
            "logits": logits,
            "features": features,
            "mask": seg[:, 1:2] - seg[:, 0:1],  # log-softmax difference: channel 1 = manipulated
            "reconstruction": self.reconstructor(trunk),
            "activations": act,
            "input": x,
        }

    def _decode_as_fake(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(B,) 1.0 where the fake half is decoded: the true class while training on a batch
        whose labels came through augment_training_batch, else the predicted one
        (the authors' rule: real when a_real >= a_fake)."""
        stash = self._true_labels
        if (self.training and self.decode_true_class and stash is not None
                and stash[0] == x.data_ptr() and stash[1] == tuple(x.shape)):
            return stash[2].to(device=x.device, dtype=logits.dtype)
        return (logits > 0).to(logits.dtype)

    def augment_training_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Not an augmentation: the only hook that sees the labels before the forward.
        # Remember them for this batch tensor, so the decoder is fed the true class half.
        self._true_labels = (images.data_ptr(), tuple(images.shape), labels.detach().float().reshape(-1))
        return images

    def train(self, mode: bool = True):
        if not mode:
            self._true_labels = None  # evaluation never decodes by labels
        return super().train(mode)

    def cam_layer(self) -> nn.Module:
        return self.encoder[-1]  # the latent (after the last ReLU)

    # ------------------------------------------------------------------ losses
    def activation_loss(self, activations: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """L_act = mean over the batch of |a_fake - y| + |a_real - (1 - y)|, y = 1 for fake
        (the authors' ActivationLoss with their y = 1 for real)."""
        y = labels.to(activations.dtype).reshape(-1)
        per_sample = (activations[:, FAKE_HALF] - y).abs() + (activations[:, REAL_HALF] - (1.0 - y)).abs()
        return per_sample.mean()

    def reconstruction_loss(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.detach()
        loss = F.mse_loss(reconstruction, target)
        if self.loss_normalise:
            loss = loss / target.pow(2).mean().clamp_min(1e-6)
        return loss

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        labels = labels.float()
        terms = {
            "activation": self.act_weight * self.activation_loss(out["activations"].float(), labels),
            "reconstruction": self.rec_weight * self.reconstruction_loss(out["reconstruction"].float(),
                                                                         out["input"].float()),
        }
        if not self.classification_bce:
            # the trainer adds BCE(logits, labels); this is the same expression negated
            terms["cancel_classification_bce"] = -F.binary_cross_entropy_with_logits(out["logits"].float(), labels)
        return terms


# ---------------------------------------------------------------------------- published weights


def classnseg_files(source: str | Path, variant: Optional[str] = None) -> tuple[Path, Path, str]:
    """(encoder file, decoder file, variant) of the published ClassNSeg weights.

    ``source`` is a folder holding them (fakescope's names, ``encoder_46.pt`` or
    ``finetune_encoder_26.pt``, or the authors' ``checkpoints/{full,finetune}/``
    layout) or an encoder file, whose decoder is the file beside it with
    ``encoder`` replaced by ``decoder`` in its name.
    """
    source = Path(source)
    if variant is not None and variant not in CLASSNSEG_VARIANTS:
        raise ModelLoadError(f"unknown ClassNSeg variant {variant!r}; use one of {', '.join(CLASSNSEG_VARIANTS)}")
    if source.is_dir():
        variant = variant or "full"
        encoder_name, decoder_name = CLASSNSEG_VARIANTS[variant]
        folder, up_encoder, up_decoder = _UPSTREAM_LAYOUT[variant]
        for encoder, decoder in ((source / encoder_name, source / decoder_name),
                                 (source / folder / up_encoder, source / folder / up_decoder)):
            if encoder.is_file():
                break
        else:
            raise ModelLoadError(f"{source}: no {encoder_name} (ClassNSeg {variant} weights) in this folder")
    elif source.is_file():
        encoder = source
        if "encoder" not in source.name:
            raise ModelLoadError(f"{source}: give the encoder file (e.g. encoder_46.pt) or the folder holding it")
        decoder = source.with_name(source.name.replace("encoder", "decoder"))
        if variant is None:
            variant = "finetuned" if "finetune" in str(source) else "full"
    else:
        raise ModelLoadError(f"{source}: no such file or folder")
    if not decoder.is_file():
        raise ModelLoadError(f"{decoder}: ClassNSeg decoder weights not found beside {encoder.name}")
    return encoder, decoder, variant


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # saved on CUDA by the authors
    except Exception as exc:
        raise ModelLoadError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: not a state dict of tensors")
    return state


def classnseg_key(file_kind: str, key: str) -> str:
    """Our parameter name for ``key`` of the published encoder or decoder state dict.

    Encoder file: ``encoder.*`` (the same here). Decoder file: ``shared.*`` and
    ``segmenter.*`` (the same), ``decoder.*`` = the reconstruction head, ``reconstructor.*`` here.
    """
    if file_kind == "encoder":
        return key
    if key.startswith("decoder."):
        return "reconstructor." + key[len("decoder."):]
    return key


def load_classnseg(encoder_path: str | Path, decoder_path: str | Path) -> YAutoencoder:
    """A YAutoencoder holding the published weights; every published tensor must land
    on a tensor of the same shape and every tensor of the model must be given."""
    model = YAutoencoder()
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for kind, path in (("encoder", Path(encoder_path)), ("decoder", Path(decoder_path))):
        state = _read_state_dict(path)
        expected_prefix = ("encoder.",) if kind == "encoder" else ("shared.", "segmenter.", "decoder.")
        if not any(k.startswith(expected_prefix) for k in state):
            raise ModelLoadError(f"{path}: does not look like a ClassNSeg {kind} "
                                 f"(keys {', '.join(list(state)[:3])}, ...)")
        for key, value in state.items():
            name = classnseg_key(kind, key)
            if name not in own:
                raise ModelLoadError(f"{path}: tensor {key} has no place in the Y-shaped autoencoder")
            if tuple(value.shape) != tuple(own[name].shape):
                raise ModelLoadError(f"{path}: tensor {key} has shape {tuple(value.shape)}, "
                                     f"expected {tuple(own[name].shape)}")
            if name in mapped:
                raise ModelLoadError(f"{path}: tensor {key} given twice")
            mapped[name] = value.to(own[name].dtype)
    missing = [k for k in own if k not in mapped]
    if missing:
        raise ModelLoadError(f"the ClassNSeg files lack {len(missing)} tensors, e.g. {', '.join(missing[:3])}")
    model.load_state_dict(mapped, strict=True)
    return model.eval()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


__all__ = [
    "CLASSNSEG_VARIANTS",
    "FAKE_HALF",
    "REAL_HALF",
    "Y_AUTOENCODER_PREPROCESS",
    "YAutoencoder",
    "classnseg_files",
    "classnseg_key",
    "load_classnseg",
]
