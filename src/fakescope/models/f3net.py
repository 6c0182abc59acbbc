"""F3-Net: two Xception streams over frequency-aware inputs, fused by cross-attention.

Yuyang Qian, Guojun Yin, Lu Sheng, Zixuan Chen and Jing Shao, "Thinking in
Frequency: Face Forgery Detection by Mining Frequency-aware Clues", ECCV 2020.
Two frequency views of the face feed two Xceptions (timm ``legacy_xception``,
random weights):

FAD (frequency-aware decomposition)
    The whole image's 2-D DCT ``D x D^T`` (D: the orthonormal DCT-II matrix),
    multiplied by one filter per band, back with ``D^T (.) D``.  Each filter is a
    fixed binary base over the anti-diagonals ``i + j`` of the spectrum plus a
    learnable ``2 sigmoid(w) - 1`` (the paper's normalisation, in (-1, 1)).  The
    paper's three bands: low = the first 1/16 of the spectrum's area, middle =
    1/16 to 1/8, high = the remaining 7/8; with ``i + j <= k`` covering about
    k^2 / 2 of the N^2 cells, the cuts fall at k = N / sqrt(8) and k = N / 2
    (105.7 and 149.5 for N = 299; DeepfakeBench cuts at 299 // 2.82 and 299 // 2,
    PyDeepFakeDet reads the fractions off the index, N / 16 and N / 8).  The bands
    are disjoint and together cover every frequency, DC in the low band; the
    three band images (RGB each) are concatenated: 9 channels.
    ``fad_all_band=True`` adds the re-implementations' fourth, all-pass band
    (12 channels).
LFS (local frequency statistics)
    A sliding-window DCT (window 10, stride 2, zero padding 4: a 149 x 149 grid
    for 299 px) of the grey image on the 0-255 scale, computed as a stride-2
    convolution with the 100 separable DCT basis kernels (identical to unfold +
    ``D p D^T``, cheaper, and exports to ONNX as one Conv).  Per window and band
    i = 1..M (M = 6 equal slices of the anti-diagonal index), the paper's
    ``log10 || DCT(p) * (base_i + 2 sigmoid(w_i) - 1) ||_1``: an M-channel map at
    half the input's resolution.  The LFS Xception's first conv has stride 1, so
    both streams reach the same grids (19 x 19 after block 7, 10 x 10 after
    block 12 at 299 px).
MixBlock
    Cross-attention fusion after Xception blocks 7 and 12.  Per stream 1x1-conv
    queries and keys; per channel one joint row-affinity map
    ``softmax(Q_fad K_fad^T + Q_lfs K_lfs^T)`` (H x H) weights each stream's
    features, which (through a gate ``2 sigmoid(g) - 1``, g = 0 at start, a
    depthwise 1x1 conv and batch norm) are added to the *other* stream.  Being
    gated at zero, both MixBlocks start as the identity.
Head: ReLU'd final maps of both streams, global-average pooled and concatenated
(``features``, 4096-D), dropout 0.2, one fake logit.

Departures from the paper.  The authors released no code; where the paper is
not specific this follows the public re-implementation by Yike Yuan
(github.com/yyk-wew/F3Net), also the basis of PyDeepFakeDet's and DeepfakeBench's:
grey-scale LFS input, LFS padding and stride-1 first conv, the MixBlock's
per-channel affinity form and its placement after blocks 7 and 12, dropout 0.2.
Unlike that code: FAD has the paper's three bands (9 channels) unless
``fad_all_band``; its base bands partition the spectrum (the code's overlap on
the boundary anti-diagonals, or drop the DC term); LFS takes log10 of the band's
L1 norm as the paper writes it (the code averages per-coefficient logs); learnable
filter parts start at 0, so training starts from the paper's exact base
filters (the code draws them from N(0, 0.1)); the MixBlocks' depthwise convs
have no bias (batch norm follows).  One logit instead of two softmax classes; no
ImageNet initialisation (the paper starts both Xceptions from ImageNet weights,
which fakescope does not ship).  FAD's filters are sized by the input, so the
model is built for one ``input_size`` (299 by default) and refuses others.
``mode`` selects the paper's ablations: "Mix" (full model, default), "Both"
(two streams, concatenated, no MixBlock), "FAD" or "LFS" (one stream).

Preprocessing: 299 px, (x - 0.5) / 0.5 (the Xception convention), face margin 1.3.
Grad-CAM (``cam_layer``) explains the concatenated final maps of both streams.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

F3NET_PREPROCESS = PreprocessSpec(input_size=299, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), margin=1.3)

MODES = ("Mix", "Both", "FAD", "LFS")

#: FAD band cuts as shares of the spectrum's area (paper: first 1/16, 1/16-1/8, last 7/8)
FAD_AREA_CUTS = (1 / 16, 1 / 8)

#: ITU-R BT.601 luma weights: LFS reads the grey image
_LUMA = (0.299, 0.587, 0.114)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix D (row k = frequency k): ``D @ x @ D.T`` is the 2-D DCT of x."""
    k = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    d = np.cos(np.pi * (j + 0.5) * k / n) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def _antidiagonal(n: int) -> np.ndarray:
    return np.add.outer(np.arange(n), np.arange(n))


def fad_base_filters(size: int, all_band: bool = False) -> np.ndarray:
    """(3 or 4, size, size) binary masks over the DCT spectrum: low, middle, high (, all).

    Low, middle and high are disjoint and cover every coefficient; cut by the
    anti-diagonal index ``i + j`` where the triangle below it holds 1/16, 1/8 of
    the area (``k^2 / 2 = share * size^2``)."""
    d = _antidiagonal(size)
    low_cut, mid_cut = (size * math.sqrt(2 * share) for share in FAD_AREA_CUTS)
    bands = [d < low_cut, (d >= low_cut) & (d < mid_cut), d >= mid_cut]
    if all_band:
        bands.append(np.ones_like(d, dtype=bool))
    return np.stack(bands).astype(np.float32)


def lfs_base_filters(window: int, bands: int) -> np.ndarray:
    """(bands, window, window) binary masks: equal slices of the anti-diagonal index 0..2 window - 2."""
    d = _antidiagonal(window)
    edges = np.linspace(0, 2 * window - 1, bands + 1)
    return np.stack([(d >= lo) & (d < hi) for lo, hi in zip(edges[:-1], edges[1:])]).astype(np.float32)


def norm_sigma(x: torch.Tensor) -> torch.Tensor:
    """The paper's normalisation of the learnable filters: 2 sigmoid(x) - 1, in (-1, 1)."""
    return 2.0 * torch.sigmoid(x) - 1.0


def _constant(array: np.ndarray) -> torch.Tensor:
    # torch.tensor follows a surrounding `with torch.device(...)`, so meta construction stays meta
    return torch.tensor(array, dtype=torch.float32)


class FADHead(nn.Module):
    """Frequency-aware decomposition: (B, 3, N, N) -> (B, 3 x bands, N, N) band-limited images."""

    def __init__(self, size: int, all_band: bool = False):
        super().__init__()
        self.size = size
        # constants, rebuilt from `size`: kept out of checkpoints
        self.register_buffer("dct", _constant(dct_matrix(size)), persistent=False)
        self.register_buffer("base", _constant(fad_base_filters(size, all_band)), persistent=False)
        self.learnable = nn.Parameter(torch.zeros(self.base.shape))  # 0: the exact base bands at start
        self.bands = int(self.base.shape[0])

    def filters(self) -> torch.Tensor:
        return self.base + norm_sigma(self.learnable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h != self.size or w != self.size:
            raise ValueError(f"F3-Net's FAD filters are built for {self.size} x {self.size} inputs, got {h} x {w}")
        spectrum = self.dct @ x @ self.dct.T  # (B, C, N, N)
        filtered = spectrum.unsqueeze(1) * self.filters()[None, :, None]  # (B, bands, C, N, N)
        images = self.dct.T @ filtered @ self.dct
        return images.reshape(b, self.bands * c, h, w)  # band-major: low RGB, middle RGB, high RGB(, all RGB)


class LFSHead(nn.Module):
    """Local frequency statistics: (B, 3, N, N) -> (B, M, N', N') log10 band amplitudes of a sliding-window DCT."""

    def __init__(self, window: int = 10, stride: int = 2, bands: int = 6, eps: float = 1e-6):
        super().__init__()
        self.window, self.stride, self.padding = window, stride, (window - stride) // 2
        self.eps = eps
        d = dct_matrix(window)
        # kernel (u, v) = outer(D[u], D[v]): correlating it with a window p gives (D p D^T)[u, v]
        basis = np.einsum("ua,vb->uvab", d, d).reshape(window * window, 1, window, window)
        self.register_buffer("basis", _constant(basis), persistent=False)
        self.register_buffer(
            "base", _constant(lfs_base_filters(window, bands).reshape(bands, window * window)), persistent=False
        )
        self.register_buffer("luma", _constant(np.array(_LUMA).reshape(1, 3, 1, 1)), persistent=False)
        self.learnable = nn.Parameter(torch.zeros(self.base.shape))
        self.bands = bands

    def filters(self) -> torch.Tensor:
        return self.base + norm_sigma(self.learnable)  # (M, window^2)

    def output_side(self, side: int) -> int:
        return (side + 2 * self.padding - self.window) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # back from (x - 0.5) / 0.5 to grey pixel values on the 0-255 scale the paper's statistics assume
        grey = ((x * 0.5 + 0.5) * self.luma).sum(1, keepdim=True) * 255.0
        coefficients = F.conv2d(grey, self.basis, stride=self.stride, padding=self.padding)  # (B, window^2, N', N')
        # || c * f ||_1 = sum_k |c_k| |f_k|: one 1x1 convolution of the amplitudes with |filter|
        weights = self.filters().abs()[:, :, None, None]
        return torch.log10(F.conv2d(coefficients.abs(), weights) + self.eps)


class MixBlock(nn.Module):
    """Cross-attention fusion of the FAD and LFS streams' (B, C, H, H) maps (the paper's MixBlock)."""

    def __init__(self, channels: int):
        super().__init__()
        self.query_fad = nn.Conv2d(channels, channels, 1)
        self.query_lfs = nn.Conv2d(channels, channels, 1)
        self.key_fad = nn.Conv2d(channels, channels, 1)
        self.key_lfs = nn.Conv2d(channels, channels, 1)
        # gates 2 sigmoid(g) - 1 start at 0: the block starts as the identity
        self.gate_fad = nn.Parameter(torch.zeros(1))
        self.gate_lfs = nn.Parameter(torch.zeros(1))
        self.proj_fad = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        self.proj_lfs = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        self.bn_fad = nn.BatchNorm2d(channels)
        self.bn_lfs = nn.BatchNorm2d(channels)

    def attention(self, x_fad: torch.Tensor, x_lfs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, H): per channel, softmax over rows g of the joint affinity of rows h and g."""
        energy = torch.einsum("bchw,bcgw->bchg", self.query_fad(x_fad), self.key_fad(x_fad))
        energy = energy + torch.einsum("bchw,bcgw->bchg", self.query_lfs(x_lfs), self.key_lfs(x_lfs))
        return energy.softmax(dim=-1)

    def forward(self, x_fad: torch.Tensor, x_lfs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x_fad.shape != x_lfs.shape or x_fad.shape[-1] != x_fad.shape[-2]:
            raise ValueError(f"MixBlock needs equal square maps, got {tuple(x_fad.shape)} and {tuple(x_lfs.shape)}")
        att = self.attention(x_fad, x_lfs)
        y_fad = x_fad + self.bn_fad(self.proj_fad(x_lfs * att * norm_sigma(self.gate_lfs)))
        y_lfs = x_lfs + self.bn_lfs(self.proj_lfs(x_fad * att * norm_sigma(self.gate_fad)))
        return y_fad, y_lfs


def _xception(in_chans: int, first_stride: int) -> nn.Module:
    import timm

    net = timm.create_model("legacy_xception", pretrained=False, num_classes=0, in_chans=in_chans)
    net.conv1.stride = (first_stride, first_stride)
    return net


_STEM = ("conv1", "bn1", "act1", "conv2", "bn2", "act2")
_BLOCKS = tuple(f"block{i}" for i in range(1, 13))
_EXIT = ("conv3", "bn3", "act3", "conv4", "bn4", "act4")


def _grid_sides(side: int, first_stride: int) -> tuple[int, int]:
    """Map sides after Xception blocks 7 and 12 for a `side`-px stream input (stem without padding)."""
    side = (side - 3) // first_stride + 1
    side = side - 2
    for _ in range(3):  # blocks 1-3 downsample by 2 (max pool 3, stride 2, padding 1)
        side = (side - 1) // 2 + 1
    return side, (side - 1) // 2 + 1


@MODELS.register("f3net")
class F3Net(DetectorModel):
    """F3-Net (Qian et al., ECCV 2020): FAD + LFS frequency streams, two Xceptions fused by MixBlocks."""

    default_preprocess = F3NET_PREPROCESS

    def __init__(
        self,
        mode: str = "Mix",
        input_size: int = 299,
        fad_all_band: bool = False,
        lfs_window: int = 10,
        lfs_stride: int = 2,
        lfs_bands: int = 6,
        dropout: float = 0.2,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"F3Net mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.input_size = input_size
        use_fad, use_lfs = mode != "LFS", mode != "FAD"
        self.fad_head = FADHead(input_size, fad_all_band) if use_fad else None
        self.fad_xception = _xception(3 * self.fad_head.bands, 2) if use_fad else None
        self.lfs_head = LFSHead(lfs_window, lfs_stride, lfs_bands) if use_lfs else None
        # stride 1: the LFS map is already at the stride of FAD's first conv, so the grids meet
        self.lfs_xception = _xception(lfs_bands, 1) if use_lfs else None
        if mode == "Mix":
            lfs_side = self.lfs_head.output_side(input_size)
            if _grid_sides(input_size, 2) != _grid_sides(lfs_side, 1):
                raise ValueError(
                    f"F3Net mode 'Mix': at input_size {input_size} the FAD and LFS streams reach grids "
                    f"{_grid_sides(input_size, 2)} and {_grid_sides(lfs_side, 1)}; MixBlock needs them equal "
                    "(e.g. 299, 256, 64 work)"
                )
            self.mix = nn.ModuleDict({"block7": MixBlock(728), "block12": MixBlock(1024)})
        else:
            self.mix = None
        self.num_features = 2048 * (use_fad + use_lfs)
        self.final_map = nn.Identity()  # the (B, num_features, h, w) map Grad-CAM explains
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, 1)

    def _streams(self, x: torch.Tensor) -> list[torch.Tensor]:
        fad = self.fad_head(x) if self.fad_head is not None else None
        lfs = self.lfs_head(x) if self.lfs_head is not None else None
        for name in _STEM + _BLOCKS + _EXIT:
            if fad is not None:
                fad = getattr(self.fad_xception, name)(fad)
            if lfs is not None:
                lfs = getattr(self.lfs_xception, name)(lfs)
            if self.mix is not None and name in self.mix:
                fad, lfs = self.mix[name](fad, lfs)
        return [m for m in (fad, lfs) if m is not None]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.final_map(torch.cat(self._streams(x), dim=1))  # already ReLU'd (Xception's act4)
        features = maps.mean(dim=(2, 3))
        return {"logits": self.classifier(self.dropout(features)).squeeze(1), "features": features}

    def cam_layer(self) -> nn.Module:
        return self.final_map


__all__ = [
    "F3NET_PREPROCESS",
    "FADHead",
    "F3Net",
    "LFSHead",
    "MixBlock",
    "dct_matrix",
    "fad_base_filters",
    "lfs_base_filters",
    "norm_sigma",
]
