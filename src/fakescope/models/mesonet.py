"""MesoNet: Meso-4 and MesoInception-4 (Afchar et al., "MesoNet: a Compact Facial
Video Forgery Detection Network", WIFS 2018).

Layer for layer as the authors' Keras models: 256x256 RGB input in [0, 1];
conv (ReLU) -> batch norm -> max pool blocks; dropout 0.5, dense 16 with
LeakyReLU(0.1), dropout 0.5, dense 1. Batch norm uses Keras' epsilon 1e-3.
Departure: the published networks' sigmoid gives P(real) (Keras ordered the
classes df=0, real=1); fakescope's logit is the fake logit, so the importer
negates the last dense layer and P(fake) = sigmoid(logit) = 1 - P(real).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelLoadError
from .base import MODELS, DetectorModel, PreprocessSpec

KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01  # Keras' 0.99 in PyTorch's convention

MESONET_PREPROCESS = PreprocessSpec(input_size=256, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), margin=1.3)


def _same_pad(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) // 2


class _ConvBlock(nn.Module):
    """Conv (ReLU) -> BN -> max pool, as in the Keras models."""

    def __init__(self, cin: int, cout: int, kernel: int, pool: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=_same_pad(kernel))
        self.bn = nn.BatchNorm2d(cout, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        self.pool = pool

    def forward(self, x):
        return F.max_pool2d(self.bn(F.relu(self.conv(x))), self.pool)


class _Inception(nn.Module):
    """MesoInception block: 1x1; 1x1->3x3; 1x1->3x3 dilated 2; 1x1->3x3 dilated 3; concat."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int, pool: int = 2):
        super().__init__()
        self.branch1 = nn.Conv2d(cin, a, 1)
        self.branch2_reduce = nn.Conv2d(cin, b, 1)
        self.branch2 = nn.Conv2d(b, b, 3, padding=1)
        self.branch3_reduce = nn.Conv2d(cin, c, 1)
        self.branch3 = nn.Conv2d(c, c, 3, padding=2, dilation=2)
        self.branch4_reduce = nn.Conv2d(cin, d, 1)
        self.branch4 = nn.Conv2d(d, d, 3, padding=3, dilation=3)
        self.bn = nn.BatchNorm2d(a + b + c + d, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)
        self.pool = pool

    def keras_conv_order(self) -> list[nn.Conv2d]:
        """Convolutions in the order the Keras model created them."""
        return [
            self.branch1, self.branch2_reduce, self.branch2, self.branch3_reduce,
            self.branch3, self.branch4_reduce, self.branch4,
        ]

    def forward(self, x):
        branches = [
            F.relu(self.branch1(x)),
            F.relu(self.branch2(F.relu(self.branch2_reduce(x)))),
            F.relu(self.branch3(F.relu(self.branch3_reduce(x)))),
            F.relu(self.branch4(F.relu(self.branch4_reduce(x)))),
        ]
        return F.max_pool2d(self.bn(torch.cat(branches, 1)), self.pool)


class _MesoBase(DetectorModel):
    default_preprocess = MESONET_PREPROCESS

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.dropout1 = nn.Dropout(dropout)
        self.fc1 = nn.Linear(16 * 8 * 8, 16)
        self.dropout2 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(16, 1)

    def features_map(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        fmap = self.features_map(x)
        # Keras flattens channels-last; keep that order so imported weights apply unchanged.
        flat = fmap.permute(0, 2, 3, 1).flatten(1)
        hidden = F.leaky_relu(self.fc1(self.dropout1(flat)), 0.1)
        logits = self.fc2(self.dropout2(hidden)).squeeze(1)
        return {"logits": logits, "features": hidden}

    def cam_layer(self):
        return self.block4.conv


@MODELS.register("meso4")
class Meso4(_MesoBase):
    """Meso-4: four conv blocks (8, 8, 16, 16 filters; kernels 3, 5, 5, 5; pools 2, 2, 2, 4)."""

    def __init__(self, dropout: float = 0.5):
        super().__init__(dropout)
        self.block1 = _ConvBlock(3, 8, 3, 2)
        self.block2 = _ConvBlock(8, 8, 5, 2)
        self.block3 = _ConvBlock(8, 16, 5, 2)
        self.block4 = _ConvBlock(16, 16, 5, 4)

    def features_map(self, x):
        return self.block4(self.block3(self.block2(self.block1(x))))

    def keras_convs(self):
        return [self.block1.conv, self.block2.conv, self.block3.conv, self.block4.conv]

    def keras_bns(self):
        return [self.block1.bn, self.block2.bn, self.block3.bn, self.block4.bn]


@MODELS.register("mesoinception4")
class MesoInception4(_MesoBase):
    """MesoInception-4: two inception blocks (1,4,4,2 and 2,4,4,2) then two conv blocks."""

    def __init__(self, dropout: float = 0.5):
        super().__init__(dropout)
        self.block1 = _Inception(3, 1, 4, 4, 2)
        self.block2 = _Inception(11, 2, 4, 4, 2)
        self.block3 = _ConvBlock(12, 16, 5, 2)
        self.block4 = _ConvBlock(16, 16, 5, 4)

    def features_map(self, x):
        return self.block4(self.block3(self.block2(self.block1(x))))

    def keras_convs(self):
        return self.block1.keras_conv_order() + self.block2.keras_conv_order() + [self.block3.conv, self.block4.conv]

    def keras_bns(self):
        return [self.block1.bn, self.block2.bn, self.block3.bn, self.block4.bn]


MESONET_ARCHS = {"meso4": Meso4, "mesoinception4": MesoInception4}


def _layers_by_kind(h5file) -> dict[str, list[str]]:
    """Keras layer names grouped by kind, in creation order (Keras numbers them as it builds)."""
    names = [n.decode() if isinstance(n, bytes) else n for n in h5file.attrs["layer_names"]]
    groups: dict[str, list[str]] = {"conv2d": [], "batch_normalization": [], "dense": []}
    for name in names:
        match = re.fullmatch(r"(conv2d|batch_normalization|dense)_(\d+)", name)
        if match:
            groups[match.group(1)].append(name)
    for kind in groups:
        groups[kind].sort(key=lambda n: int(n.rsplit("_", 1)[1]))
    return groups


def _weights(h5file, layer: str) -> dict[str, np.ndarray]:
    group = h5file[layer]
    out = {}
    for key in group.attrs.get("weight_names", []):
        key = key.decode() if isinstance(key, bytes) else key
        out[key.split("/")[-1].split(":")[0]] = np.asarray(group[key])
    return out


def import_keras_mesonet(h5_path: str | Path, arch: str) -> _MesoBase:
    """Build a MesoNet from the authors' Keras 2 weights-only HDF5 file."""
    import h5py

    if arch not in MESONET_ARCHS:
        raise ModelLoadError(f"unknown MesoNet architecture {arch!r}; use one of {sorted(MESONET_ARCHS)}")
    model = MESONET_ARCHS[arch]()
    try:
        h5file = h5py.File(h5_path, "r")
    except OSError as exc:
        raise ModelLoadError(f"{h5_path}: not a readable Keras HDF5 weights file ({exc})") from None
    with h5file:
        if "layer_names" not in h5file.attrs:
            raise ModelLoadError(f"{h5_path}: no Keras layer_names; is this a Keras weights file?")
        layers = _layers_by_kind(h5file)
        convs, bns = model.keras_convs(), model.keras_bns()
        if (len(layers["conv2d"]), len(layers["batch_normalization"]), len(layers["dense"])) != (len(convs), len(bns), 2):
            raise ModelLoadError(
                f"{h5_path}: has {len(layers['conv2d'])} conv, {len(layers['batch_normalization'])} batch-norm and "
                f"{len(layers['dense'])} dense layers, which is not {arch} (try the other --arch)"
            )
        with torch.no_grad():
            for conv, name in zip(convs, layers["conv2d"]):
                w = _weights(h5file, name)
                kernel = torch.from_numpy(w["kernel"]).permute(3, 2, 0, 1)  # (h, w, in, out) -> (out, in, h, w)
                if kernel.shape != conv.weight.shape:
                    raise ModelLoadError(f"{h5_path}: layer {name} has shape {tuple(kernel.shape)}, "
                                         f"expected {tuple(conv.weight.shape)} for {arch}")
                conv.weight.copy_(kernel)
                conv.bias.copy_(torch.from_numpy(w["bias"]))
            for bn, name in zip(bns, layers["batch_normalization"]):
                w = _weights(h5file, name)
                bn.weight.copy_(torch.from_numpy(w["gamma"]))
                bn.bias.copy_(torch.from_numpy(w["beta"]))
                bn.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
                bn.running_var.copy_(torch.from_numpy(w["moving_variance"]))
            hidden, output = (_weights(h5file, n) for n in layers["dense"])
            model.fc1.weight.copy_(torch.from_numpy(hidden["kernel"]).T)
            model.fc1.bias.copy_(torch.from_numpy(hidden["bias"]))
            # The published output unit is P(real): negate it to get the fake logit.
            model.fc2.weight.copy_(-torch.from_numpy(output["kernel"]).T)
            model.fc2.bias.copy_(-torch.from_numpy(output["bias"]))
    return model.eval()
