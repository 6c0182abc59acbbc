"""M2TR: multi-scale patch attention and frequency features over shallow EfficientNet-B4 features.

Junke Wang, Zuxuan Wu, Wenhao Ouyang, Xintong Han, Jingjing Chen, Ser-Nam Lim,
Yu-Gang Jiang, "M2TR: Multi-modal Multi-scale Transformers for Deepfake
Detection", ICMR 2022 (arXiv 2104.09770). Layout and sizes follow the authors'
released code (github.com/wdrink/PyDeepFakeDet, ``models/m2tr.py`` and
``configs/m2tr.yaml``; the same file ships in their M2TR repository):

* **Stem**: EfficientNet-B4 (timm ``tf_efficientnet_b4``, random weights) up to
  its stride-4 stage -- the stem and the first two stages, the authors'
  ``TEXTURE_LAYER: b2`` -- giving f of 32 channels at H/4 x W/4 (80 x 80 at
  the authors' 320 px input).
* **Four M2TR layers** (``DEPTH: 4``) on that map, each made of
  - a *multi-scale transformer*: 1x1-conv query/key/value embeddings; the 32
    channels are split into 4 heads of 8, and head h cuts its map into a g_h x
    g_h grid of patches, g = (1, 2, 4, 8) (patch sides 80/40/20/10 px of the
    map at 320 px, as the code's ``in_size // {1, 2, 4, 8}``). A patch, all its
    pixels and the head's channels, is one token; the head attends over the g^2
    tokens (softmax(QK^T / sqrt(d)) V, d the token length) and the tokens are
    stitched back into the map. The heads are concatenated and fused by a 3x3
    conv-BN-LeakyReLU, added back to the input, then a residual feed-forward of
    two 3x3 convs (the first dilated 2), as in the code;
  - a *frequency filter* on the same features (see the departure below):
    orthonormal 2-D DCT per channel, three band filters (low / middle / high,
    fixed masks on u/h + v/w with F3Net's edges 1/2.82 and 1/2, each times a
    learnable per-channel gain 1 + G, G = 0 at init), inverse DCT of each band,
    and a convolutional encoder (1x1 conv over the 3 x 32 band maps, then the
    residual 3x3 feed-forward) giving the frequency features;
  - *cross-modality fusion*: queries from the RGB features, keys and values
    from the frequency features (1x1 convs, full attention over the h x w
    positions, scale 1/sqrt(C)), a 1x1 conv-BN-LeakyReLU on the result, which
    is added to the RGB and the transformer features and passed through a 3x3
    conv-BN-LeakyReLU, plus an identity path: the layer's output, the next
    layer's input.
* **Classifier**: the rest of EfficientNet-B4 (stages 3-7, 1x1 head conv to 1792,
  BN + SiLU) on the fused map, global average pool (``features``, 1792-d),
  dropout 0.5 (``DROP_RATIO``), Linear(1792, 1): the fake logit.
* **Mask decoder** on the fused map: two (x2 bilinear upsampling, 3x3
  conv-BN-LeakyReLU) stages and a 3x3 conv to one logit per input pixel, so
  ``mask`` is (B, 1, H, W) at the input resolution, as the paper's H x W x 1
  forgery mask.
* **Video heads** (``video_logits`` over a face track's K per-frame ``features``; ours,
  the paper scores frames): ``"mean"`` feeds the mean of the K features to the frame
  classifier (no parameters of its own: a video is its average face); ``"temporal"`` is a
  small fusion block (``TemporalHead``: LayerNorm, projection 1792 -> 128, learned
  positions for up to ``temporal_frames`` frames, one pre-norm transformer-encoder layer
  of 4 heads, attention pooling over the K frames, its own Linear(128, 1)), about 0.37 M
  parameters, trained on sequence samples beside the frame loss. Training records the
  longest clip it saw (buffer ``temporal_trained_frames``, saved with the weights), and
  ``video_window("temporal")`` returns it, so scan and evaluate score longer tracks in
  windows the learned positions were trained for.
* **Contrastive loss** (``training_losses``) on ``features``: the centre c is the
  batch mean of the real samples' features; reals are pulled to it, fakes pushed
  below a cosine margin m: mean_real(1 - cos(f, c)) + mean_fake(max(0, cos(f, c) - m)),
  times ``contrastive_weight``. Cosine similarity to a batch centre is what the
  authors' ``ICCLoss`` computes (``utils/loss.py``; as written, minimising it pushes
  the centre's own class away from the centre), and their configs train with focal
  loss alone.

Departures. The frequency filter: the released code (and, as far as we could
tell, the ICMR text) filters the features with a learnable FFT-domain filter
(GFNet's global filter, complex weights per channel and frequency); an earlier
arXiv version applies a DCT with low / middle / high bands to the input image.
Here the DCT with bands is applied to the features, inside every layer as in
the code: it is real-valued (ONNX-exportable, no complex tensors) and a
per-channel gain over the 80 x 80 DCT grid has the GFNet filter's size
(204,800 vs 209,920 weights a layer). The band edges are F3Net's (Qian et al.,
ECCV 2020), not M2TR's. The fused output goes through a 3x3 conv after adding
RGB, transformer and cross-modality features, as the paper describes (the code
instead adds the cross-modality result to the transformer output alone), and
each layer adds its input back (our identity path, see ``M2TRLayer``). The
mask decoder is our own (the released ``Localizer`` does not construct and its
configs set ``HAS_DECODER: False``). One fake logit with BCE instead of the
code's two-way output with focal loss; random initial weights instead of
ImageNet (AdvProp) ones; the contrastive margin (0.5) and default weight (1.0)
are ours: the paper's weight for it could not be checked here. Convolutions
followed by batch norm have no bias.

Sizes: the DCT matrices and learnable gains are sized by ``input_size`` (the
feature map is input_size / 4, which must be a multiple of 8 for the 8 x 8
grid), so a model takes faces of the size it was built for. At 320 px, about
18.65 M parameters (EfficientNet-B4 without its classifier: 17.55 M) plus the
temporal video head's 0.37 M.
Grad-CAM (``cam_layer``) explains the fused stride-4 map of the last layer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The authors' configs: 320 px faces, ImageNet mean/std (``NORMALIZE_PARAMS``).
M2TR_PREPROCESS = PreprocessSpec(input_size=320, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)

#: Patches per side of each head's grid (the code's patch sides in_size // (1, 2, 4, 8)).
HEAD_GRIDS = (1, 2, 4, 8)
#: Band edges on u/h + v/w (F3Net's 1/2.82 and 1/2 of the spectrum side).
BAND_EDGES = (1 / 2.82, 0.5)
BAND_NAMES = ("low", "middle", "high")
#: Stride of the shallow features: EfficientNet-B4's stem and first two stages.
STEM_STRIDE = 4
#: EfficientNet-B4 stages before the transformer layers (timm blocks 0 and 1: 24 and 32 channels).
STEM_STAGES = 2


def _act() -> nn.Module:
    # not in place: Grad-CAM hooks keep the fused map's output
    return nn.LeakyReLU(0.2)


def _conv_bn_act(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False), nn.BatchNorm2d(cout), _act()
    )


class FeedForward2D(nn.Module):
    """x -> x + (3x3 dilated-2 conv-BN-act, 3x3 conv-BN-act)(x): the code's residual feed-forward."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(_conv_bn_act(channels, channels, dilation=2), _conv_bn_act(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


# ---------------------------------------------------------------------------- multi-scale transformer


def patch_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grid: int) -> torch.Tensor:
    """Attention between the patches of a ``grid`` x ``grid`` tiling of (B, d, H, W) maps.

    Each patch (its d channels and (H/grid) x (W/grid) pixels) is one token of
    length d·(H/grid)·(W/grid); every query token attends over all grid^2 key
    tokens, and the output tokens are put back where their patches were.
    """
    d, height, width = q.shape[1:]
    if height % grid or width % grid:
        raise ValueError(f"a {height}x{width} map does not split into a {grid}x{grid} grid of patches")
    ph, pw = height // grid, width // grid

    def tokens(t: torch.Tensor) -> torch.Tensor:  # (B, grid^2, d·ph·pw)
        t = t.reshape(-1, d, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(-1, grid * grid, d * ph * pw)

    scores = torch.matmul(tokens(q), tokens(k).transpose(1, 2)) / math.sqrt(d * ph * pw)
    out = torch.matmul(scores.softmax(dim=-1), tokens(v))
    out = out.reshape(-1, grid, grid, d, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return out.reshape(-1, d, height, width)


class MultiScaleAttention(nn.Module):
    """Heads split over channels, head h attending between the patches of a g_h x g_h grid."""

    def __init__(self, channels: int, grids: tuple[int, ...] = HEAD_GRIDS):
        super().__init__()
        if channels % len(grids):
            raise ValueError(f"{channels} channels do not split into {len(grids)} heads")
        self.grids = tuple(int(g) for g in grids)
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.fuse = _conv_bn_act(channels, channels)  # the heads' stitched maps -> one map

    def head_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        heads = len(self.grids)
        chunks = zip(self.query(x).chunk(heads, 1), self.key(x).chunk(heads, 1), self.value(x).chunk(heads, 1))
        return [patch_attention(q, k, v, g) for (q, k, v), g in zip(chunks, self.grids)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat(self.head_outputs(x), dim=1))


class MultiScaleTransformer(nn.Module):
    """x -> x + attention(x), then the residual feed-forward (the code's TransformerBlock)."""

    def __init__(self, channels: int, grids: tuple[int, ...] = HEAD_GRIDS):
        super().__init__()
        self.attention = MultiScaleAttention(channels, grids)
        self.feed_forward = FeedForward2D(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(x + self.attention(x))


# ---------------------------------------------------------------------------- frequency filter


def dct_matrix(n: int) -> torch.Tensor:
    """(n, n) orthonormal DCT-II: row k is a_k cos(pi (2i + 1) k / 2n), a_0 = sqrt(1/n), else sqrt(2/n).

    Orthonormal, so the inverse is the transpose (DCT-III): y = D x, x = D^T y.
    """
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    scale = torch.where(k == 0, math.sqrt(1.0 / n), math.sqrt(2.0 / n))
    return (scale * torch.cos(math.pi * (2 * i + 1) * k / (2 * n))).float()


def band_masks(height: int, width: int, edges: tuple[float, float] = BAND_EDGES) -> torch.Tensor:
    """(3, height, width) 0/1 masks of the low, middle and high DCT bands: a partition of the grid.

    Frequency (u, v) is in the band whose [edge, next edge) holds u/height + v/width.
    """
    low_edge, high_edge = edges
    s = np.add.outer(np.arange(height) / height, np.arange(width) / width)  # numpy: a check without tensors
    counts = [(s < low_edge).sum(), ((s >= low_edge) & (s < high_edge)).sum(), (s >= high_edge).sum()]
    if not 0 < low_edge < high_edge or min(counts) == 0:
        raise ValueError(f"band edges {edges} leave a band of the {height}x{width} DCT grid empty")
    u = torch.arange(height, dtype=torch.float64).unsqueeze(1) / height
    v = torch.arange(width, dtype=torch.float64).unsqueeze(0) / width
    s = u + v
    return torch.stack([s < low_edge, (s >= low_edge) & (s < high_edge), s >= high_edge]).float()


class DCTBandFilter(nn.Module):
    """(B, C, h, w) -> (B, 3C, h, w): the features' low, middle and high DCT bands, each
    through a learnable gain and back to the spatial domain (band-major channel order).

    Band filter b = mask_b x (1 + G), G a learnable (C, h, w) gain starting at 0: the three
    filters then partition the spectrum, and the three bands add up to the input.
    """

    def __init__(self, channels: int, height: int, width: int, edges: tuple[float, float] = BAND_EDGES):
        super().__init__()
        # fixed transforms, rebuilt at construction: not stored in checkpoints
        self.register_buffer("dct_h", dct_matrix(height), persistent=False)
        self.register_buffer("dct_w", dct_matrix(width), persistent=False)
        self.register_buffer("bands", band_masks(height, width, edges).unsqueeze(1), persistent=False)  # (3, 1, h, w)
        self.gain = nn.Parameter(torch.zeros(channels, height, width))

    def filters(self) -> torch.Tensor:
        """(3, C, h, w) band filters applied to the DCT coefficients."""
        return self.bands * (1.0 + self.gain)

    def dct2(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.dct_h, x), self.dct_w.t())

    def idct2(self, y: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.dct_h.t(), y), self.dct_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(self.gain.shape[-2:]):
            raise ValueError(f"the frequency filter is sized for {tuple(self.gain.shape[-2:])} feature maps, "
                             f"got {tuple(x.shape[-2:])}")
        banded = self.dct2(x).unsqueeze(1) * self.filters()  # (B, 3, C, h, w)
        return self.idct2(banded).flatten(1, 2)


class FrequencyFeatures(nn.Module):
    """RGB features -> frequency features: DCT band filter, then a 1x1 conv over the bands and
    the residual feed-forward (the code's FreqBlock encodes its filtered map the same way)."""

    def __init__(self, channels: int, height: int, width: int, edges: tuple[float, float] = BAND_EDGES):
        super().__init__()
        self.filter = DCTBandFilter(channels, height, width, edges)
        self.encode = _conv_bn_act(len(BAND_NAMES) * channels, channels, kernel=1)
        self.feed_forward = FeedForward2D(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.encode(self.filter(x)))


# ---------------------------------------------------------------------------- cross-modality fusion


class CrossModalityAttention(nn.Module):
    """Queries from the RGB features, keys and values from the frequency features; attention
    over all positions, then 1x1 conv-BN-act (the code's CMA block, without its residual)."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = _conv_bn_act(channels, channels, kernel=1)

    def forward(self, rgb: torch.Tensor, freq: torch.Tensor) -> torch.Tensor:
        c, h, w = rgb.shape[1:]

        def positions(t: torch.Tensor) -> torch.Tensor:  # (B, h·w, C)
            return t.reshape(-1, c, h * w).transpose(1, 2)

        # fused attention kernels on GPU: the h·w x h·w (6400^2 at 320 px) matrix need not be stored
        q, k, v = positions(self.query(rgb)), positions(self.key(freq)), positions(self.value(freq))
        z = F.scaled_dot_product_attention(q, k, v)
        return self.out(z.transpose(1, 2).reshape(-1, c, h, w))


class M2TRLayer(nn.Module):
    """f -> f + Conv3x3(f + transformer(f) + cross_attention(f, frequency(f))).

    The identity path is ours (every block of the authors' code is residual): without it
    four stacked layers train badly (one AdamW step at lr 1e-3 raised the loss for 2 of 3
    seeds); adding the conv's input instead doubles the map's scale at every layer.
    """

    def __init__(self, channels: int, height: int, width: int, grids: tuple[int, ...] = HEAD_GRIDS,
                 edges: tuple[float, float] = BAND_EDGES):
        super().__init__()
        self.transformer = MultiScaleTransformer(channels, grids)
        self.frequency = FrequencyFeatures(channels, height, width, edges)
        self.cross = CrossModalityAttention(channels)
        self.fuse = _conv_bn_act(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(x + self.transformer(x) + self.cross(x, self.frequency(x)))


class MaskDecoder(nn.Module):
    """Stride-4 fused map -> (B, 1, 4h, 4w) forgery-mask logits: two x2 upsampling stages."""

    def __init__(self, channels: int):
        super().__init__()
        self.up1 = _conv_bn_act(channels, channels)
        self.up2 = _conv_bn_act(channels, channels // 2)
        self.out = nn.Conv2d(channels // 2, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up1(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        x = self.up2(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return self.out(x)


# ---------------------------------------------------------------------------- contrastive loss


def contrastive_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Pull real features to their batch centre, push fakes below cosine ``margin`` from it.

    mean over reals of (1 - cos(f, c)) + mean over fakes of max(0, cos(f, c) - margin), with c
    the mean of the batch's real features (labels: 1 = fake). 0 when the batch has no real.
    """
    features = features.float()
    real = labels < 0.5
    if not bool(real.any()):
        return features.sum() * 0.0
    centre = features[real].mean(dim=0, keepdim=True)
    cosine = F.cosine_similarity(features, centre.expand_as(features), dim=1, eps=1e-6)
    loss = (1.0 - cosine[real]).mean()
    if bool((~real).any()):
        loss = loss + F.relu(cosine[~real] - margin).mean()
    return loss


# ---------------------------------------------------------------------------- video heads

#: Positions the temporal head has embeddings for: clips of at most this many frames
#: (scan's default --frames; longer face tracks are scored in windows, see ``video_window``).
TEMPORAL_FRAMES = 32
#: Width of the temporal head (1792-d frame features are projected to it).
TEMPORAL_DIM = 128


class TemporalHead(nn.Module):
    """(B, K, D) frame features -> (B,) video logits: projection, learned positions, one
    transformer-encoder layer over the K frames, attention pooling, a linear classifier.

    K may be anything from 1 to ``max_frames`` (the learned position table's length).
    """

    def __init__(self, in_features: int, dim: int = TEMPORAL_DIM, max_frames: int = TEMPORAL_FRAMES,
                 heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.max_frames = int(max_frames)
        # frame features are unnormalised SiLU activations: a LayerNorm first keeps the projection's scale sane
        self.norm_in = nn.LayerNorm(in_features)
        self.project = nn.Linear(in_features, dim)
        self.positions = nn.Parameter(torch.zeros(1, self.max_frames, dim))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.encoder = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                                  batch_first=True, norm_first=True)
        self.norm_out = nn.LayerNorm(dim)
        self.pool = nn.Linear(dim, 1)  # one attention score per frame
        self.classifier = nn.Linear(dim, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        frames = features.shape[1]
        if not 1 <= frames <= self.max_frames:
            raise ValueError(f"the temporal head takes clips of 1 to {self.max_frames} frames, got {frames}")
        x = self.project(self.norm_in(features)) + self.positions[:, :frames]
        x = self.norm_out(self.encoder(x))
        weights = self.pool(x).softmax(dim=1)  # (B, K, 1)
        return self.classifier((weights * x).sum(dim=1)).squeeze(1)


# ---------------------------------------------------------------------------- the detector


@MODELS.register("m2tr")
class M2TR(DetectorModel):
    """M2TR (ICMR 2022): multi-scale patch transformer + DCT-band frequency fusion on EfficientNet-B4, mask head."""

    default_preprocess = M2TR_PREPROCESS

    def __init__(self, input_size: int = 320, depth: int = 4, grids: tuple[int, ...] = HEAD_GRIDS,
                 band_edges: tuple[float, float] = BAND_EDGES, dropout: float = 0.5, drop_path_rate: float = 0.2,
                 contrastive_weight: float = 1.0, contrastive_margin: float = 0.5,
                 temporal_frames: int = TEMPORAL_FRAMES, temporal_dim: int = TEMPORAL_DIM):
        super().__init__()
        import timm

        side = math.ceil(input_size / STEM_STRIDE)  # TF "same" padding rounds up
        if side % max(grids):
            raise ValueError(f"input_size {input_size}: the {side}x{side} stride-4 map must split into "
                             f"{max(grids)}x{max(grids)} patches (use a multiple of {STEM_STRIDE * max(grids)})")
        self.input_size = int(input_size)
        self.contrastive_weight = float(contrastive_weight)
        self.contrastive_margin = float(contrastive_margin)
        # drop_path_rate 0.2: the drop-connect rate of the EfficientNet the code builds
        backbone = timm.create_model("tf_efficientnet_b4", pretrained=False, num_classes=0,
                                     drop_path_rate=drop_path_rate)
        self.stem = nn.Sequential(backbone.conv_stem, backbone.bn1, *backbone.blocks[:STEM_STAGES])
        channels = int(backbone.feature_info[STEM_STAGES - 1]["num_chs"])  # 32
        self.layers = nn.ModuleList(
            M2TRLayer(channels, side, side, tuple(grids), tuple(band_edges)) for _ in range(depth)
        )
        self.head = nn.Sequential(*backbone.blocks[STEM_STAGES:], backbone.conv_head, backbone.bn2)
        self.num_features = int(backbone.num_features)  # 1792
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, 1)
        self.mask_decoder = MaskDecoder(channels)
        self.temporal = TemporalHead(self.num_features, temporal_dim, temporal_frames)
        # the longest clip the temporal head was trained on (0: untrained); saved with the weights, so
        # inference scores long tracks in windows the head has seen (positions beyond it are untrained)
        self.register_buffer("temporal_trained_frames", torch.zeros((), dtype=torch.long))
        self.train()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(f"this M2TR is built for {self.input_size}x{self.input_size} faces (its DCT filters "
                             f"are sized by input_size), got {tuple(x.shape[-2:])}")
        fused = self.stem(x)
        for layer in self.layers:
            fused = layer(fused)
        features = self.head(fused).mean(dim=(2, 3))
        return {
            "logits": self.classifier(self.dropout(features)).squeeze(1),
            "features": features,
            "mask": self.mask_decoder(fused),
        }

    video_heads = ("mean", "temporal")

    def video_logits(self, features: torch.Tensor, head: str) -> torch.Tensor:
        if features.dim() != 3 or features.shape[-1] != self.num_features:
            raise ValueError(f"video heads take (B, K, {self.num_features}) frame features, got {tuple(features.shape)}")
        if head == "mean":  # the frame classifier on the clip's average feature: nothing new to train
            return self.classifier(self.dropout(features.mean(dim=1))).squeeze(1)
        if head == "temporal":
            self._record_trained_clip_length(features.shape[1])
            return self.temporal(features)
        raise ValueError(f"M2TR has no video head {head!r}; its heads are: {', '.join(self.video_heads)}")

    def video_window(self, head: str) -> int | None:
        """The most frames one ``video_logits`` call should see with ``head`` (None: any number).

        "temporal": the longest clip it was trained on, else its position table's length."""
        if head != "temporal":
            return None
        return int(self.temporal_trained_frames) or self.temporal.max_frames

    def cam_layer(self) -> nn.Module:
        return self.layers[-1]  # its output is the fused map the head and the mask decoder read

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.contrastive_weight == 0:
            return {}
        loss = contrastive_loss(out["features"], labels, self.contrastive_margin)
        return {"contrastive": self.contrastive_weight * loss}


__all__ = [
    "BAND_EDGES",
    "HEAD_GRIDS",
    "M2TR",
    "M2TR_PREPROCESS",
    "CrossModalityAttention",
    "DCTBandFilter",
    "M2TRLayer",
    "TEMPORAL_DIM",
    "TEMPORAL_FRAMES",
    "TemporalHead",
    "MultiScaleAttention",
    "band_masks",
    "contrastive_loss",
    "dct_matrix",
    "patch_attention",
]
