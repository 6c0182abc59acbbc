"""ASRID: attention over MobileNetV3-Small features, a static (frame) head and a dynamic (clip) head.

ASRID, the attention-based suspicious region inconsistency detector, scores a face
video two ways: a *static* score per frame from self-attended backbone features,
and a *dynamic* score for K consecutive frames from a transformer encoder over
the frames' features, trained together with L = w L_static + (1 - w) L_dynamic,
w = 0.8. The paper's text was not available to us; the layout and sizes follow
the authors' public PyTorch code (classes ``ASRID``, ``SelfAttention``,
``staticClassifier``, ``PositionalEncoding``, ``dynamicClassifier``; torchvision
MobileNetV3-Small, ``w_static`` 0.8):

* **Backbone**: MobileNetV3-Small (timm ``mobilenetv3_small_100``, random
  weights) without its head (the pooled 1x1 conv 576 -> 1024 and the 1000-way
  classifier): its last stage gives 576 channels at stride 32 (7 x 7 at 224 px).
* **Self-attention** over that map's h x w positions (tokens of 576 channels):
  ``nn.MultiheadAttention`` with ``attention_heads`` (8) heads, then ReLU, as the
  authors' ``SelfAttention``. The mean attention each position receives is
  returned as ``attention`` (B, h, w): the "suspicious regions".
* **Mix**: a skip connection concatenating backbone and attention tokens
  (576 + 576 = 1152 channels), averaged over the positions and layer-normalised:
  ``features`` (B, 1152), the per-frame embedding both heads read.
* **Static head** (the frame ``logits``): Linear(1152, 288), BatchNorm1d, PReLU,
  Linear(288, 1), the code's ``staticClassifier`` (hidden width in / 4).
* **Dynamic head** (``video_logits(features, "temporal")``): fixed sinusoidal
  positional encoding of the K frames, a transformer encoder over them
  (``temporal_layers`` 6 layers of ``temporal_heads`` 8 heads, feed-forward
  ``temporal_ff`` 1000, dropout 0.1: the code's ``dynamicClassifier``), the mean
  over the sequence, Linear(1152, 1). ``"mean"``: the static head applied to the
  clip's mean feature (no parameters of its own). ``video_window("temporal")`` is the
  clip length it was trained on, so longer tracks are scored in windows of that length.

The trainer (``data.sequence``, ``loss.video_weight`` = 1 - w) trains both heads on
clips; frame-only training leaves the dynamic head untrained.

Departures. The code attends across the *frames'* pooled 1000-d backbone outputs
(MobileNetV3's classifier logits) through extra bias-free query/key/value
projections; here attention runs over each frame's *spatial* positions (the
suspicious regions the name refers to), on the 576-channel map, with
``nn.MultiheadAttention``'s own projections only, so the frame path scores one face
on its own, as scanning needs. The code's classifiers end in a 2- or 4-way softmax
whose first entry is the score; ours give one fake logit (BCE). The mix is
normalised (LayerNorm) before the heads, where the code feeds it raw. The encoder
layers are pre-norm (``temporal_norm_first``; the code's PyTorch default is
post-norm): trained jointly from random weights at lr 1e-3 (4 epochs on clips of the
FF++ videos), the post-norm head collapsed to one output for every clip (its
encoder's output varied across clips by 3e-6; a 24-step LR warm-up did not help),
while the pre-norm one fitted them (val video log loss 0.16 after 3 epochs). Pre-norm
layers are known to train stably without warm-up (Xiong et al., ICML 2020).
``temporal_norm_first=False`` gives the code's layers. The dynamic
head's 6 layers of width 1152 hold 45.7 M of the model's 48.3 M parameters;
``temporal_layers`` makes it smaller.
"""
from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE_CHANNELS = 576  # mobilenetv3_small_100's last stage


def sinusoidal_positions(length: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(length, dim) fixed encoding of positions 0..length-1 (Vaswani et al.): sin on even
    channels, cos on odd ones, wavelengths 2 pi .. 10000 * 2 pi. Built per call: any K works."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device, dtype=torch.float32)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table.to(dtype) if dtype is not None else table


class StaticHead(nn.Module):
    """Per-frame classifier: Linear -> BatchNorm1d -> PReLU -> Linear(., 1)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = nn.PReLU()
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.bn(self.fc1(x)))).squeeze(-1)


class DynamicHead(nn.Module):
    """(B, K, D) frame features -> (B,) clip logits: positions, transformer encoder, mean, Linear."""

    def __init__(self, dim: int, layers: int, heads: int, feedforward: int, dropout: float, positional: bool,
                 norm_first: bool = True):
        super().__init__()
        self.positional = positional
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, feedforward, dropout, batch_first=True, norm_first=norm_first)
        # enable_nested_tensor only matters for padding masks, which clips never have
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.fc = nn.Linear(dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        if self.positional:  # without it, encoder + mean would not see the frames' order
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        x = self.encoder(self.dropout(x))
        return self.fc(x.mean(dim=1)).squeeze(-1)


@MODELS.register("asrid")
class ASRID(DetectorModel):
    """ASRID: MobileNetV3-Small + spatial self-attention; frame head and transformer clip head."""

    default_preprocess = PreprocessSpec(input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)
    video_heads = ("temporal", "mean")

    def __init__(self, attention_heads: int = 8, temporal_layers: int = 6, temporal_heads: int = 8,
                 temporal_ff: int = 1000, temporal_dropout: float = 0.1, positional_encoding: bool = True,
                 temporal_norm_first: bool = True):
        super().__init__()
        backbone = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=0)
        backbone.conv_head = nn.Identity()  # the pooled head is not used: attention reads the map
        self.backbone = backbone
        channels = BACKBONE_CHANNELS
        self.attention = nn.MultiheadAttention(channels, attention_heads, batch_first=True)
        dim = 2 * channels
        self.norm = nn.LayerNorm(dim)
        self.static_head = StaticHead(dim, dim // 4)
        self.dynamic_head = DynamicHead(dim, temporal_layers, temporal_heads, temporal_ff, temporal_dropout,
                                        positional_encoding, temporal_norm_first)
        self.feature_dim = dim
        # the longest clip the dynamic head was trained on (0: untrained), so scanning
        # scores longer tracks in windows of that length (`video_window`)
        self.register_buffer("temporal_trained_frames", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        fmap = self.backbone.forward_features(x)  # (B, 576, h, w)
        b, c, h, w = fmap.shape
        tokens = fmap.flatten(2).transpose(1, 2)  # (B, h*w, 576)
        attended, weights = self.attention(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        mixed = torch.cat([tokens, F.relu(attended)], dim=2)  # the "mix" skip connection
        features = self.norm(mixed.mean(dim=1))
        # weights (B, query, key): how much attention each position draws, averaged over queries
        attention = weights.mean(dim=1).reshape(b, h, w)
        return {"logits": self.static_head(features), "features": features, "attention": attention}

    def video_logits(self, features: torch.Tensor, head: str) -> torch.Tensor:
        if features.dim() != 3:
            raise ValueError(f"video_logits takes (B, K, D) features, got {tuple(features.shape)}")
        if head == "temporal":
            self._record_trained_clip_length(features.shape[1])
            return self.dynamic_head(features)
        if head == "mean":
            return self.static_head(features.mean(dim=1))
        raise ValueError(f"asrid has no video head {head!r}; heads: {', '.join(self.video_heads)}")

    def video_window(self, head: str) -> int | None:
        """The most frames one ``video_logits`` call should see (None: any number): for
        "temporal", the clip length it was trained on; the encoding itself takes any length."""
        if head != "temporal":
            return None
        return int(self.temporal_trained_frames) or None

    def cam_layer(self) -> nn.Module:
        return self.backbone.blocks[-1]  # 1x1 conv to 576 + BN + hard-swish: the map attention reads
