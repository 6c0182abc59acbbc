"""MAT: multi-attentional deepfake detection on an EfficientNet-B4.

Zhao, Zhou, Chen, Wei, Zhang and Yu, "Multi-attentional Deepfake Detection", CVPR
2021, as released by the authors (github.com/yoctta/multiple-attention:
models/MAT.py, AGDA.py, config.py, train.py); the paper's text was not at hand, so
layer choices and constants are the code's. The RIL margins are those of
PyDeepFakeDet's MAT recipe (configs/multiatt.yaml; DeepfakeBench's has the same),
the loss weights those of the authors' config.py (PyDeepFakeDet's too).

Architecture (timm ``tf_efficientnet_b4``, random weights, drop-path 0.2 like the
authors' backbone; 380 px input):
  * attention module on stage 5 (160 channels, stride 16; the authors' ``b5``):
    3x3 conv-BN-ReLU, 1x1 conv to M = 4 maps, BN, ELU + 1 (positive maps); the
    outer 1/12 of the grid on each side is zeroed (the authors' fixed 24x24 mask
    with a 2-cell border, here scaled to any grid size).
  * texture enhancement on stage 2 (32 channels, stride 4; ``b2``), the version
    the authors' MAT class builds (``Texture_Enhance_v2``; DeepfakeBench uses their
    first, single-stack one as closer to the paper's figure): 3x3 conv; local averages on the attention grid are subtracted
    (removing the low-frequency part); the residual is multiplied by each
    tanh(attention map) (gradient stopped), giving M copies that a densely
    connected block of grouped convs (5x5, 3x3, 3x3, 3x3, 1x1; one group per map)
    enhances separately.
  * bilinear attention pooling: each map pools its own enhanced copy to a part
    vector, L2-normalised (B, M, 32). The deep map (the 1792-channel head) is
    pooled with the summed maps as a weighted average (B, 1792). Parts ->
    Linear(128, 256)-hardswish-Linear(256, 256)-hardswish, deep vector -> dropout
    0.5 -> Linear(1792, 256)-hardswish; both concatenated (``features``, 512) ->
    Linear(512, 256)-hardswish-Linear(256, 1): the fake logit. In training whole
    attention maps are dropped with probability 0.25 per sample and map.

Training terms (``training_losses``, added by the trainer to BCE on the logit):
  * regional independence loss, weight 0.5: part vectors pooled from the
    standardised low-frequency map (the local averages above) are pulled to
    per-part centres -- within 0.05 (real) / 0.1 (fake), Frobenius distance over
    the M parts -- and the centres are pushed apart to at least 0.2 (the inter
    term scaled by 1 / (M alpha)). The centres (buffer ``feature_centers``) move
    by alpha = 0.05 times the batch mean of (part - centre) over the real
    samples (fakes contribute zero), as in the authors' ``Auxiliary_Loss_v2``.
    A negative margin pushes that class at least |margin| away instead (the
    authors' own configs use [0.1, -2] and [0.2, -0.8]).
  * AGDA match loss, weight 0.1: on images AGDA altered, the part vectors of the
    maps it did not use should not change (mean distance to the clean image's).

AGDA (``augment_training_batch``): per sample, one attention map is drawn with
probability proportional to sqrt(its mass + 1), upsampled to the image and
normalised by its maximum; soft mode (the authors' default) blends the image with a
degraded copy (downscaled x0.5, Gaussian blur 11 px / sigma 7, noise 0.1, upscaled)
by a soft threshold of the map (threshold U(0.4, 0.6), steepness U(3, 5)); hard
mode zeroes pixels whose map is at or above the threshold. Bilinear attention
pooling runs in float32 under autocast (its sums over the stride-4 grid can pass
float16's range).

Departures from the authors' code: a one-logit head trained with BCE (fake = 1)
instead of a 2-way softmax; random initialisation (they start from AdvProp ImageNet
weights); one forward per step -- they train on each batch twice, clean and
AGDA-altered, with equal weight, so here each sample is altered with probability
0.5 (``agda_p``) and the match loss compares with the clean parts computed without
gradient; AGDA's maps come from a separate no-grad pass in train-mode batch norm
whose running statistics are restored afterwards (they reuse the training
forward's maps); alpha decays by 0.9 every ``ril_alpha_decay_every`` training
steps (they decay per epoch; 0 = never) and the RIL step counter counts calls of
``training_losses`` in train mode; local average pooling and its nearest
upsampling are written as matrix products (numerically the same, and ONNX-
exportable at sizes adaptive pooling cannot export). Preprocessing: RGB, mean =
std = 0.5 (the AdvProp normalisation their recipe uses), face margin 1.3.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

MAT_PREPROCESS = PreprocessSpec(input_size=380, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), margin=1.3)

#: share of the attention grid zeroed on each side (the authors: 2 of 24 cells)
ATTENTION_BORDER = 2.0 / 24.0


# ----------------------------------------------------------------------------- pooling helpers


def average_pool_matrix(n_in: int, n_out: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n_out, n_in) matrix whose product with a length-n_in signal is
    ``adaptive_avg_pool1d`` to n_out bins (bin i spans floor(i n/m) .. ceil((i+1) n/m))."""
    i = torch.arange(n_out, device=device).unsqueeze(1)
    j = torch.arange(n_in, device=device).unsqueeze(0)
    start = (i * n_in) // n_out
    end = ((i + 1) * n_in + n_out - 1) // n_out
    member = ((j >= start) & (j < end)).to(dtype)
    return member / member.sum(dim=1, keepdim=True)


def nearest_upsample_matrix(n_in: int, n_out: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n_out, n_in) one-hot matrix: output i copies input floor(i n_in / n_out)
    (PyTorch's ``nearest`` interpolation)."""
    src = (torch.arange(n_out, device=device) * n_in) // n_out
    return (src.unsqueeze(1) == torch.arange(n_in, device=device).unsqueeze(0)).to(dtype)


def local_average(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, size)`` as two matrix products."""
    h, w = x.shape[-2:]
    ph = average_pool_matrix(h, size[0], x.device, x.dtype)
    pw = average_pool_matrix(w, size[1], x.device, x.dtype)
    return ph @ x @ pw.transpose(0, 1)


def nearest_upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="nearest")`` as two matrix products."""
    h, w = x.shape[-2:]
    uh = nearest_upsample_matrix(h, size[0], x.device, x.dtype)
    uw = nearest_upsample_matrix(w, size[1], x.device, x.dtype)
    return uh @ x @ uw.transpose(0, 1)


def _resize(maps: torch.Tensor, size) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=True)


def bilinear_attention_pooling(features: torch.Tensor, attention: torch.Tensor, normalize: str = "l2") -> torch.Tensor:
    """(B, M, N) part features: sum over positions of attention_m x features.

    ``features`` is (B, N, H, W), shared by all maps, or (B, M, N, H, W), one copy
    per map. ``attention`` (B, M, h, w) is resized bilinearly to (H, W).
    ``normalize``: "l2" (each part vector to unit length; the textural parts) or
    "mean" (divide by the map's mass: an attention-weighted average; the deep map).
    """
    if normalize not in ("l2", "mean"):
        raise ValueError(f"normalize must be 'l2' or 'mean', not {normalize!r}")
    # in float32 even under autocast: a sum over 95 x 95 positions can pass float16's 65504
    with _full_precision(features.device):
        features, attention = features.float(), _resize(attention.float(), features.shape[-2:])
        if normalize == "mean":
            attention = attention + 1e-8  # so an all-zero map still averages
        if features.dim() == 4:
            parts = torch.einsum("bmhw,bnhw->bmn", attention, features)
        else:
            parts = torch.einsum("bmhw,bmnhw->bmn", attention, features)
        if normalize == "l2":
            return F.normalize(parts, p=2, dim=-1)
        return parts / attention.sum(dim=(2, 3)).unsqueeze(-1)


def _full_precision(device: torch.device):
    """Autocast off (where autocast exists for the device)."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders (per channel)."""
    half = (kernel_size - 1) / 2.0
    t = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - half
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    pad = kernel_size // 2
    x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)


@contextlib.contextmanager
def running_stats_kept(model: nn.Module) -> Iterator[None]:
    """Batch norm keeps its mode (train: batch statistics) but its running
    statistics and counters are put back afterwards."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


# ----------------------------------------------------------------------------- modules


class AttentionModule(nn.Module):
    """Deep feature map (B, C, h, w) -> M positive attention maps (B, M, h, w)."""

    def __init__(self, channels: int, num_maps: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.project = nn.Conv2d(channels, num_maps, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(num_maps)

    @staticmethod
    def border_mask(h: int, w: int, device) -> torch.Tensor:
        # grid cells whose centre lies in the outer ATTENTION_BORDER of the face crop get
        # no attention: mostly background and padding there
        def keep(n: int) -> torch.Tensor:
            centre = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n
            return ((centre >= ATTENTION_BORDER) & (centre <= 1.0 - ATTENTION_BORDER)).float()

        return (keep(h).unsqueeze(1) * keep(w).unsqueeze(0)).view(1, 1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn2(self.project(F.relu(self.bn1(self.conv(x)))))
        maps = F.elu(x) + 1.0
        return maps * self.border_mask(maps.shape[-2], maps.shape[-1], maps.device).to(maps.dtype)


class TextureEnhancer(nn.Module):
    """The authors' second texture enhancement block: one densely connected
    grouped-conv stack per attention map on the high-frequency residual of the
    shallow map. Returns the enhanced copies (B, M, N, H, W) and the local averages
    (B, N, h, w) (the low-frequency part that was removed)."""

    def __init__(self, channels: int, num_maps: int):
        super().__init__()
        n, m = channels, num_maps
        self.num_maps = m
        self.extract = nn.Conv2d(n, n, 3, padding=1)
        self.conv0 = nn.Conv2d(m * n, m * n, 5, padding=2, groups=m)
        self.bn1 = nn.BatchNorm2d(m * n)
        self.conv1 = nn.Conv2d(m * n, m * n, 3, padding=1, groups=m)
        self.bn2 = nn.BatchNorm2d(2 * m * n)
        self.conv2 = nn.Conv2d(2 * m * n, m * n, 3, padding=1, groups=m)
        self.bn3 = nn.BatchNorm2d(3 * m * n)
        self.conv3 = nn.Conv2d(3 * m * n, m * n, 3, padding=1, groups=m)
        self.bn4 = nn.BatchNorm2d(4 * m * n)
        self.conv_last = nn.Conv2d(4 * m * n, m * n, 1, groups=m)
        self.bn_last = nn.BatchNorm2d(m * n)

    def _cat(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Concatenate within each map's group of channels (dense connection per map)."""
        bsz, _, h, w = a.shape
        m = self.num_maps
        return torch.cat([a.reshape(bsz, m, -1, h, w), b.reshape(bsz, m, -1, h, w)], dim=2).reshape(bsz, -1, h, w)

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bsz, n, h, w = x.shape
        x = self.extract(x)
        low = local_average(x, tuple(attention.shape[-2:]))
        if h > low.shape[-2]:
            x = x - nearest_upsample(low, (h, w))
        # the maps only select where to look here; they learn through the pooling
        gate = torch.tanh(_resize(attention.detach(), (h, w))).unsqueeze(2)  # (B, M, 1, H, W)
        x = (x.unsqueeze(1) * gate).reshape(bsz, -1, h, w)
        f0 = self.conv0(x)
        f1 = self._cat(f0, self.conv1(F.relu(self.bn1(f0))))
        f2 = self._cat(f1, self.conv2(F.relu(self.bn2(f1))))
        f3 = self._cat(f2, self.conv3(F.relu(self.bn3(f2))))
        out = F.relu(self.bn_last(self.conv_last(F.relu(self.bn4(f3)))))
        return out.reshape(bsz, self.num_maps, n, h, w), low


def _stage_channels(stage: nn.Module) -> int:
    """Output channels of a timm EfficientNet stage (its last batch norm's width)."""
    return [m for m in stage.modules() if isinstance(m, nn.BatchNorm2d)][-1].num_features


# ----------------------------------------------------------------------------- the detector


@MODELS.register("mat")
class MAT(DetectorModel):
    """MAT (Zhao et al., CVPR 2021): EfficientNet-B4, 4 attention maps pool texture + deep features."""

    default_preprocess = MAT_PREPROCESS

    def __init__(
        self,
        num_attentions: int = 4,
        texture_stage: int = 1,
        attention_stage: int = 4,
        mid_dims: int = 256,
        attention_dropout: float = 0.25,
        final_dropout: float = 0.5,
        drop_path_rate: float = 0.2,
        ril_weight: float = 0.5,
        ril_alpha: float = 0.05,
        ril_alpha_decay: float = 0.9,
        ril_alpha_decay_every: int = 0,
        inner_margins: tuple[float, float] = (0.05, 0.1),
        inter_margin: float = 0.2,
        agda_p: float = 0.5,
        agda_mode: str = "soft",
        agda_match_weight: float = 0.1,
        agda_scale: float = 0.5,
        agda_kernel: int = 11,
        agda_sigma: float = 7.0,
        agda_noise: float = 0.1,
        agda_threshold: tuple[float, float] = (0.4, 0.6),
        agda_zoom: tuple[float, float] = (3.0, 5.0),
    ):
        super().__init__()
        import timm

        if agda_mode not in ("soft", "hard"):
            raise ValueError(f"agda_mode must be 'soft' or 'hard', not {agda_mode!r}")
        if not 0 <= texture_stage < attention_stage < 7:
            raise ValueError("need 0 <= texture_stage < attention_stage < 7 (EfficientNet stages)")
        self.backbone = timm.create_model(
            "tf_efficientnet_b4", pretrained=False, num_classes=0, drop_path_rate=drop_path_rate
        )
        self.texture_stage, self.attention_stage = texture_stage, attention_stage
        self.num_attentions = m = num_attentions
        n = _stage_channels(self.backbone.blocks[texture_stage])
        self.attention = AttentionModule(_stage_channels(self.backbone.blocks[attention_stage]), m)
        self.texture = TextureEnhancer(n, m)
        self.project_local = nn.Sequential(nn.Linear(m * n, mid_dims), nn.Hardswish(), nn.Linear(mid_dims, mid_dims))
        self.project_final = nn.Linear(int(self.backbone.num_features), mid_dims)
        self.classifier = nn.Sequential(nn.Linear(2 * mid_dims, mid_dims), nn.Hardswish(), nn.Linear(mid_dims, 1))
        # drops whole maps per sample, as the authors' Dropout2d over a (B, M, 1) mask of ones
        self.map_dropout = nn.Dropout(attention_dropout)
        self.final_dropout = nn.Dropout(final_dropout)

        self.ril_weight = ril_weight
        self.ril_alpha_decay, self.ril_alpha_decay_every = ril_alpha_decay, int(ril_alpha_decay_every)
        self.inner_margins = (float(inner_margins[0]), float(inner_margins[1]))  # (real, fake)
        self.inter_margin = inter_margin
        self.register_buffer("feature_centers", torch.zeros(m, n))
        self.register_buffer("ril_alpha", torch.tensor(float(ril_alpha)))
        self.register_buffer("ril_steps", torch.tensor(0, dtype=torch.long))

        self.agda_p, self.agda_mode, self.agda_match_weight = agda_p, agda_mode, agda_match_weight
        self.agda_scale, self.agda_kernel = agda_scale, agda_kernel
        self.agda_sigma, self.agda_noise = agda_sigma, agda_noise
        self.agda_threshold, self.agda_zoom = tuple(agda_threshold), tuple(agda_zoom)
        self._agda_cache: Optional[dict] = None
        self._agda_forward = False  # whether the last training forward ran on AGDA's output

    # ---- forward

    def _backbone_maps(self, x: torch.Tensor, full: bool = True):
        """Shallow (texture) map, attention-stage map and, with ``full``, the head's map."""
        b = self.backbone
        x = b.bn1(b.conv_stem(x))
        shallow = deep = None
        for i, stage in enumerate(b.blocks):
            x = stage(x)
            if i == self.texture_stage:
                shallow = x
            elif i == self.attention_stage:
                deep = x
                if not full:
                    return shallow, deep, None
        return shallow, deep, b.bn2(b.conv_head(x))

    @staticmethod
    def _standardize(low: torch.Tensor) -> torch.Tensor:
        low = low.float()  # 1e-8 is 0 in float16
        low = low - low.mean(dim=(2, 3), keepdim=True)
        return low / (low.std(dim=(2, 3), keepdim=True) + 1e-8)

    def _attention_and_parts(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention maps and the low-frequency part vectors, without the deep half of
        the backbone or the dense block (what AGDA needs)."""
        shallow, deep, _ = self._backbone_maps(images, full=False)
        attention = self.attention(deep)
        low = local_average(self.texture.extract(shallow), tuple(attention.shape[-2:]))
        return attention, bilinear_attention_pooling(self._standardize(low), attention, "l2")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.training:
            cache = self._agda_cache
            self._agda_forward = cache is not None and cache["images"]() is x
        shallow, deep, final = self._backbone_maps(x)
        attention = self.attention(deep)
        texture, low = self.texture(shallow, attention)
        part_features = bilinear_attention_pooling(self._standardize(low), attention, "l2")
        parts = bilinear_attention_pooling(texture, attention, "l2")
        pooling_maps = attention
        if self.map_dropout.training and self.map_dropout.p > 0:
            keep = self.map_dropout(torch.ones(x.shape[0], self.num_attentions, device=x.device, dtype=parts.dtype))
            parts = parts * keep.unsqueeze(-1)
            pooling_maps = attention * keep.view(*keep.shape, 1, 1).to(attention.dtype)
        local = F.hardswish(self.project_local(parts.flatten(1)))
        deep_vector = bilinear_attention_pooling(final, pooling_maps.sum(dim=1, keepdim=True), "mean").squeeze(1)
        semantic = F.hardswish(self.project_final(self.final_dropout(deep_vector)))
        features = torch.cat([local, semantic], dim=1)
        return {
            "logits": self.classifier(features).squeeze(1),
            "features": features,
            "attention": attention,
            "part_features": part_features,
        }

    def cam_layer(self) -> nn.Module:
        return self.backbone.bn2  # the head's 1792-channel map, the last backbone stage the deep branch pools

    # ---- regional independence loss

    def regional_independence_loss(self, parts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Unweighted RIL of (B, M, N) part vectors; in train mode also moves the centres."""
        parts = parts.float()
        # copies: the buffers are updated in place below, after these enter the graph
        centers = self.feature_centers.detach().clone().float()
        alpha = self.ril_alpha.detach().clone().float()
        fake = labels.float() > 0.5
        real = (~fake).to(parts.dtype).view(-1, 1, 1)
        # batch mean with fakes counted as zero steps, as the authors do
        moved = centers + alpha * ((parts - centers) * real).mean(dim=0)
        if self.training:
            self._update_centers(moved.detach())
        real_margin, fake_margin = self.inner_margins
        margin = torch.where(fake, parts.new_full(fake.shape, fake_margin), parts.new_full(fake.shape, real_margin))
        distance = torch.linalg.vector_norm(parts - moved, dim=(1, 2))
        # positive margin: stay within it; negative margin: stay at least |margin| away
        intra = F.relu(torch.sign(margin) * distance - margin).mean()
        m = moved.shape[0]
        j, k = torch.triu_indices(m, m, offset=1, device=moved.device)
        inter = F.relu(self.inter_margin - torch.linalg.vector_norm(moved[j] - moved[k], dim=1)).sum()
        inter = inter / m / (alpha if float(alpha) > 0 else 1.0)
        return intra + inter

    @torch.no_grad()
    def _update_centers(self, centers: torch.Tensor) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(centers)
            centers /= torch.distributed.get_world_size()
        self.feature_centers.copy_(centers)
        self.ril_steps += 1
        if self.ril_alpha_decay_every > 0 and int(self.ril_steps) % self.ril_alpha_decay_every == 0:
            self.ril_alpha.mul_(self.ril_alpha_decay)

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = {}
        if self.ril_weight > 0:
            ril = self.regional_independence_loss(out["part_features"], labels)
            losses["regional_independence"] = self.ril_weight * ril
        match = self._agda_match_loss(out)
        if match is not None and self.agda_match_weight > 0:
            losses["agda_match"] = self.agda_match_weight * match
        return losses

    # ---- attention-guided data augmentation

    def _agda_match_loss(self, out: dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """Mean distance, over samples and maps, between the AGDA images' part vectors and
        the clean images', counting the altered samples' unused maps only. Only for
        the forward of the batch the last ``augment_training_batch`` returned."""
        cache = self._agda_cache
        if cache is None or not self.training or not self._agda_forward:
            return None
        parts = out["part_features"].float()
        unused = 1.0 - F.one_hot(cache["index"], self.num_attentions).to(parts.dtype)
        weight = unused * cache["chosen"].to(parts.dtype).unsqueeze(1)
        return (torch.linalg.vector_norm(parts - cache["parts"], dim=-1) * weight).mean()

    def _uniform(self, bounds: tuple[float, float]) -> float:
        lo, hi = bounds
        return lo + (hi - lo) * float(torch.rand(()))

    def agda_apply(self, images: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """Degrade ``images`` where ``region`` (B, 1, H, W), normalised to max 1, is high."""
        threshold = self._uniform(self.agda_threshold)
        if self.agda_mode == "hard":
            return images * (region < threshold).to(images.dtype)
        zoom = self._uniform(self.agda_zoom)
        # soft threshold, rescaled so that zero attention stays exactly zero
        bottom = torch.sigmoid(torch.tensor(-threshold * zoom, dtype=region.dtype, device=region.device))
        weight = (torch.sigmoid((region - threshold) * zoom) - bottom) / (1.0 - bottom)
        weight = weight * (region > 0).to(weight.dtype)
        h, w = images.shape[-2:]
        small = F.interpolate(images, scale_factor=self.agda_scale, mode="bilinear", align_corners=True)
        small = gaussian_blur(small, self.agda_kernel, self.agda_sigma)
        small = small + torch.randn_like(small) * self.agda_noise
        degraded = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=True)
        return images * (1.0 - weight) + degraded * weight

    @torch.no_grad()
    def augment_training_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._agda_cache = None
        if not self.training or self.agda_p <= 0:
            return images
        chosen = torch.rand(images.shape[0], device=images.device) < self.agda_p
        if not bool(chosen.any()):
            return images
        with running_stats_kept(self):
            attention, parts = self._attention_and_parts(images)
        attention, parts = attention.float(), parts.float()
        weights = torch.sqrt(attention.sum(dim=(2, 3)) + 1.0)
        index = torch.multinomial(weights, 1).squeeze(1)
        region = attention[torch.arange(images.shape[0], device=images.device), index].unsqueeze(1)
        region = _resize(region, images.shape[-2:])
        region = region / (region.amax(dim=(2, 3), keepdim=True) + 1e-8)
        altered = self.agda_apply(images.float(), region).to(images.dtype)
        result = torch.where(chosen.view(-1, 1, 1, 1), altered, images)
        self._agda_cache = {"images": weakref.ref(result), "parts": parts, "index": index, "chosen": chosen}
        return result


__all__ = [
    "MAT",
    "MAT_PREPROCESS",
    "AttentionModule",
    "TextureEnhancer",
    "average_pool_matrix",
    "bilinear_attention_pooling",
    "gaussian_blur",
    "local_average",
    "nearest_upsample",
    "running_stats_kept",
]
