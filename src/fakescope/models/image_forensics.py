"""Whole-image detectors of generated (GAN, diffusion) pictures: the ``subject: "image"`` models.

They score input_size x input_size views cut from a picture at its own resolution (never a resize
of the whole picture: the generator's traces are in the fine structure; scan/whole_image.py), so
every ``default_preprocess`` here sets ``subject="image"``. Six architectures are registered:

``dct_spectrum_linear`` / ``dct_spectrum_cnn``
    Frank, Eisenhofer, Schönherr, Fischer, Kolossa & Holz, "Leveraging Frequency Analysis for Deep
    Fake Image Recognition", ICML 2020: GAN up-sampling leaves grid artefacts that are plain in
    the 2-D DCT spectrum. The model computes the orthonormal 2-D DCT-II of the view itself (a fixed
    matrix product, ``D X D^T``, so it exports to ONNX), takes ``log(|DCT| + 1e-4)`` and
    standardises every coefficient with its own running mean and variance over the training
    batches (``SpectrumStandardiser``: a cumulative average, frozen outside training). The linear
    head is the paper's logistic regression on that log-spectrum; the CNN head a small conv net
    over it (three conv-BN-ReLU + 2x2 average-pool stages, 16/32/64 channels, then flatten ->
    Linear(., 128) -> ReLU -> Linear): flattening, not global pooling, keeps *which* frequency
    fired. kwargs: ``input_size`` (default 64; the views must have exactly this side, so a config
    that changes ``preprocess.input_size`` sets it too), ``color`` (False: the luma
    0.299 R + 0.587 G + 0.114 B; True: each RGB channel transformed separately). 64 px by default
    so that CIFAKE's 32 px pictures need only a 2x up-scale and larger pictures give many
    views; the paper worked at 128 px (``input_size: 128``). Input RGB in [0, 1] (mean 0, std 1).
    Departures: the paper's epsilon was tiny; 1e-4 (an order below 8-bit quantisation noise in
    the spectrum) keeps round-off in near-zero coefficients from dominating. The paper estimated
    the statistics on the training set beforehand; here they accumulate during training (the
    first batches see incomplete ones). Our CNN's widths are ours, not the paper's. No Grad-CAM:
    the maps are over frequencies, not pixels.

``cnnf``
    Wang, Wang, Zhang, Owens & Efros, "CNN-generated images are surprisingly easy to spot... for
    now", CVPR 2020: an ImageNet classifier fine-tuned for real/fake; its generalisation came from
    the training recipe (Gaussian blur, sigma ~ U[0, 3], and JPEG re-compression, quality ~ U[30,
    100], each with probability 0.5), which belongs to the training config, not the model. Departure: EfficientNet-Lite0 (the ImageNet
    weights packaged offline, backbones.py), not ResNet-50; hence its normalisation ``(x - 0.5) /
    0.5`` (what those weights were trained with) rather than the ImageNet mean/std. 224 px.

``patch_forensics``
    Chai, Bau, Lim & Isola, "What makes fake images detectable? Understanding properties that
    generalize", ECCV 2020: a classifier with a small receptive field, truncated early, sees local
    artefacts that generalise across generators better than a whole-image one. Here the stem and
    the first ``stages`` (default 3: stride 8, a 67 px receptive field) stages of EfficientNet-Lite0,
    then 1x1 conv-BN-ReLU (``hidden`` = 128) and a 1x1 conv: one logit per stride-8 patch, returned
    as ``"mask"`` (B, 1, ceil(H/8), ceil(W/8)); the image logit is the mean of the patch logits (the
    paper averages patch predictions). ``training_losses`` adds ``patch_weight`` x BCE of every
    patch against its image's label (the paper's patch-level loss); the trainer's BCE on the mean
    logit stays on top. Departures: Lite0 instead of the paper's truncated Xception/ResNet; one
    logit per patch instead of a two-way softmax, and the image score averages patch logits. 128 px views (16 x 16 patches; CIFAKE 4x up).

``wavelet_branch``
    After FSBI (Hasanaath, Luqman, Katib & Anwar, "FSBI: Deepfakes Detection with Frequency
    Enhanced Self-Blended Images", arXiv 2406.08625, 2024): discrete-wavelet sub-bands as input
    features beside the RGB pixels, to expose blending and up-sampling traces. A one-level Haar
    DWT of each RGB channel (fixed 2x2 stride-2 convolutions; per channel the sub-bands in
    ``pywt.dwt2`` order LL, LH (cH), HL (cV), HH (cD): 12 channels at half resolution) feeds a
    small CNN (32, 64, 128, 256 channels; strides 1, 2, 2, 2; global average pool -> 256-d) whose
    vector is concatenated with the pooled 1280-d features of an ImageNet EfficientNet-Lite0 on the
    RGB view, then dropout (0.2) -> Linear. Departure: the two-branch layout and its late fusion
    are ours, not FSBI's network (which is also trained on self-blended faces: a data recipe).
    224 px, ``(x - 0.5) / 0.5``.

``linear_probe``
    Ojha, Li & Lee, "Towards Universal Fake Image Detectors that Generalize Across Generative
    Models", CVPR 2023: a frozen foundation-model feature space plus one trained linear layer
    generalises to unseen generators. Departure: no CLIP ViT-L/14 (nor DINOv2) ships offline, so
    the frozen space is the strongest packaged one, EfficientNet-Lite0 ImageNet features (1280-d,
    global average pool), far weaker than CLIP's; the backbone's parameters have
    ``requires_grad=False`` and it stays in eval mode (BN statistics frozen) even in ``train()``.

Generator attribution (Sha, Li, Yu & Zhang, "DE-FAKE: Detection and Attribution of Fake Images
Generated by Text-to-Image Generation Models", ACM CCS 2023): every architecture takes
``attribution_classes`` (e.g. ``["real", "gan", "diffusion"]``) and ``attribution_weight`` (1.0).
With classes, a second Linear on the same ``features`` returns ``out["attribution"]`` (B, K)
logits and the model has ``attribution_classes`` (the list; scan/whole_image.py reads it). The
binary ``logits`` stay P(fake). The attribution is not part of the ONNX export (models/onnx.py
exports logits, mask and features only).

**Attribution targets: the trainer's side.** ``training_losses`` only receives binary labels, so
the trainer hands the class targets to the unwrapped model (DDP's ``.module``), where it has
``attribution_classes``, before each training forward::

    model.set_attribution_targets(targets)   # (B,) int64, the index into attribution_classes
                                             # of each sample's generator; -1 = unknown (ignored)
    out = model(images); ... model.training_losses(out, labels)  # adds "attribution": weight x CE

``attribution_targets(model.attribution_classes, names)`` turns a batch's class names (e.g. a
manifest column; None or an unlisted name -> -1) into that tensor. ``training_losses`` consumes the
targets (they apply to one forward only); without targets set it adds no attribution term.
Cross-entropy is averaged over the samples with a known class (0 when there is none).

``pretrained`` (default True) loads the packaged EfficientNet-Lite0 weights; it is an
``init_only_kwargs`` entry, so checkpoints do not store it (loading one builds with the default
and then replaces every weight; the package is a ``fakescope[train]`` dependency). Tests pass
``pretrained=False``. Built on the meta device (``models/profile.py``), no weights are read.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import EFFICIENTNET_LITE0_PREPROCESS, efficientnet_lite0_imagenet
from .base import MODELS, DetectorModel, PreprocessSpec

HALF = EFFICIENTNET_LITE0_PREPROCESS["mean"]  # (0.5, 0.5, 0.5): mean and std of the packaged weights
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, RGB -> grayscale
SPECTRUM_EPS = 1e-4  # log(|DCT| + eps), on RGB scaled to [0, 1]
DCT_INPUT_SIZE = 64
PATCH_INPUT_SIZE = 128
LITE0_INPUT_SIZE = EFFICIENTNET_LITE0_PREPROCESS["input_size"]  # 224

DCT_PREPROCESS = PreprocessSpec(input_size=DCT_INPUT_SIZE, subject="image")
LITE0_IMAGE_PREPROCESS = PreprocessSpec(input_size=LITE0_INPUT_SIZE, mean=HALF, std=HALF, subject="image")
PATCH_PREPROCESS = PreprocessSpec(input_size=PATCH_INPUT_SIZE, mean=HALF, std=HALF, subject="image")

#: ignore index of attribution targets (a sample whose generator is not known)
UNKNOWN_CLASS = -1


# ------------------------------------------------------------------------------------------ transforms


def dct_matrix(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(n, n) orthonormal DCT-II matrix D: D @ x is scipy.fft.dct(x, norm="ortho") along axis 0.

    D[k, i] = sqrt(2 / n) cos(pi (2 i + 1) k / (2 n)), row 0 scaled by 1 / sqrt(2). Built with torch
    factory functions, so it follows a ``torch.device`` context (the meta device of the profiler)."""
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] = d[0] / math.sqrt(2.0)
    return d.to(dtype)


def _full_precision(x: torch.Tensor):
    """Autocast off for a block (the log-spectrum spans many decades: float16 would round it)."""
    if x.device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()


class DCT2d(nn.Module):
    """(B, C, n, n) -> (B, C, n, n) orthonormal 2-D DCT-II, as scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.register_buffer("matrix", dct_matrix(n), persistent=False)  # a function of n: not in checkpoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.n, self.n):
            raise ValueError(f"the DCT is built for {self.n}x{self.n} views, got {tuple(x.shape[-2:])} "
                             f"(set the model's input_size to the preprocess input_size)")
        return torch.matmul(torch.matmul(self.matrix, x), self.matrix.transpose(0, 1))


class HaarDWT2d(nn.Module):
    """(B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)): one-level 2-D Haar DWT of each channel.

    Channels per input channel in ``pywt.dwt2(x, "haar")`` order: LL (cA), LH (cH: low-pass along
    the width, high-pass along the height), HL (cV), HH (cD). On each 2x2 block [[a, b], [c, d]]:
    (a+b+c+d)/2, (a+b-c-d)/2, (a-b+c-d)/2, (a-b-c+d)/2. A grouped stride-2 conv with fixed weights,
    so it exports to ONNX. An odd side is extended by repeating the last row/column (pywt's
    "symmetric" mode gives the same for Haar)."""

    def __init__(self, channels: int = 3):
        super().__init__()
        self.channels = channels
        bands = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [-1.0, -1.0]],
                              [[1.0, -1.0], [1.0, -1.0]], [[1.0, -1.0], [-1.0, 1.0]]]) * 0.5
        self.register_buffer("weight", bands.unsqueeze(1).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return F.conv2d(x, self.weight.to(x.dtype), stride=2, groups=self.channels)


class SpectrumStandardiser(nn.Module):
    """Per-coefficient standardisation with statistics accumulated over the training batches.

    In training mode every forward folds its batch into a cumulative mean of x and x^2 (equal
    weight per batch: after n batches, the mean over all of them) and normalises with the updated
    statistics; in eval mode the statistics are fixed. A BatchNorm would share one mean per channel,
    but the log-spectrum's level varies by decades between low and high frequencies."""

    def __init__(self, shape: Sequence[int], eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(*shape))
        self.register_buffer("sq_mean", torch.ones(*shape))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.batches += 1
                rate = 1.0 / self.batches.to(x.dtype)
                self.mean.add_((x.detach().mean(0) - self.mean) * rate)
                self.sq_mean.add_((x.detach().square().mean(0) - self.sq_mean) * rate)
        var = (self.sq_mean - self.mean.square()).clamp(min=0.0)
        return (x - self.mean) * torch.rsqrt(var + self.eps)


# ------------------------------------------------------------------------------------------ attribution


def attribution_targets(classes: Sequence[str], names: Iterable[str | None]) -> torch.Tensor:
    """(B,) int64 targets for ``set_attribution_targets``: each name's index in ``classes``, -1 for
    None or a name not in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    return torch.tensor([index.get(n, UNKNOWN_CLASS) if n is not None else UNKNOWN_CLASS for n in names],
                        dtype=torch.long)


class _ImageForensicsModel(DetectorModel):
    """Shared by the whole-image detectors: the binary head and the optional attribution head."""

    def _heads(self, num_features: int, attribution_classes: Sequence[str] | None, attribution_weight: float,
               binary: bool = True) -> None:
        self.num_features = num_features
        if binary:
            self.classifier = nn.Linear(num_features, 1)
        classes = list(attribution_classes) if attribution_classes else None
        if classes is not None and (len(classes) < 2 or len(set(classes)) != len(classes)):
            raise ValueError(f"attribution_classes: two or more distinct names, got {classes}")
        self.attribution_classes: list[str] | None = classes
        self.attribution_weight = float(attribution_weight)
        self.attribution_head = nn.Linear(num_features, len(classes)) if classes else None
        self._attribution_targets: torch.Tensor | None = None

    def _outputs(self, logits: torch.Tensor, features: torch.Tensor, **extra: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"logits": logits, "features": features, **extra}
        if self.attribution_head is not None:
            out["attribution"] = self.attribution_head(features)
        return out

    def set_attribution_targets(self, targets: torch.Tensor | None) -> None:
        """The next training forward's (B,) class indices into ``attribution_classes`` (-1: unknown),
        consumed by ``training_losses``; None clears them. See the module docstring."""
        if targets is not None and self.attribution_head is None:
            raise ValueError(f"{type(self).__name__} was built without attribution_classes")
        self._attribution_targets = None if targets is None else targets.long()

    def _attribution_loss(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        targets, self._attribution_targets = self._attribution_targets, None
        if targets is None or "attribution" not in out:
            return {}
        logits = out["attribution"].float()
        if targets.shape != logits.shape[:1]:
            raise ValueError(f"attribution targets {tuple(targets.shape)} do not fit a batch of {logits.shape[0]}")
        targets = targets.to(logits.device)
        known = targets != UNKNOWN_CLASS
        per_sample = F.cross_entropy(logits, targets.clamp(min=0), reduction="none")
        loss = (per_sample * known).sum() / known.sum().clamp(min=1)  # no host sync
        return {"attribution": self.attribution_weight * loss}

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._attribution_loss(out)


def _on_meta_device() -> bool:
    return torch.empty(()).device.type == "meta"


def _lite0(pretrained: bool) -> nn.Module:
    """timm tf_efficientnet_lite0 without classifier: the packaged ImageNet weights, or random ones."""
    if pretrained and not _on_meta_device():
        return efficientnet_lite0_imagenet(num_classes=0)
    import timm

    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


# ------------------------------------------------------------------------------------------ DCT spectrum


class _DCTSpectrumModel(_ImageForensicsModel):
    default_preprocess = DCT_PREPROCESS

    def _spectrum_layers(self, input_size: int, color: bool) -> None:
        if input_size < 8:
            raise ValueError(f"input_size: at least 8 px, got {input_size}")
        self.input_size = int(input_size)
        self.color = bool(color)
        self.spectrum_channels = 3 if color else 1
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        self.dct = DCT2d(self.input_size)
        self.standardise = SpectrumStandardiser((self.spectrum_channels, self.input_size, self.input_size))

    def log_spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, n, n) RGB in [0, 1] -> (B, C, n, n) standardised log |DCT| (C = 1, or 3 with color)."""
        with _full_precision(x):
            x = x.float()
            if not self.color:
                x = (x * self.luma).sum(1, keepdim=True)
            return self.standardise(torch.log(self.dct(x).abs() + SPECTRUM_EPS))

    def cam_layer(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} sees a frequency spectrum: a Grad-CAM there is not "
                                  "a map of the picture")


@MODELS.register("dct_spectrum_linear")
class DCTSpectrumLinear(_DCTSpectrumModel):
    """DCT-spectrum logistic regression (Frank et al., ICML 2020): standardised log |DCT-II| -> Linear, 64 px."""

    def __init__(self, input_size: int = DCT_INPUT_SIZE, color: bool = False,
                 attribution_classes: list[str] | None = None, attribution_weight: float = 1.0):
        super().__init__()
        self._spectrum_layers(input_size, color)
        self._heads(self.spectrum_channels * self.input_size ** 2, attribution_classes, attribution_weight)
        nn.init.zeros_(self.classifier.weight)  # logistic regression from zero, as a convex fit starts
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.log_spectrum(x).flatten(1)
        return self._outputs(self.classifier(features).squeeze(1), features)


@MODELS.register("dct_spectrum_cnn")
class DCTSpectrumCNN(_DCTSpectrumModel):
    """DCT-spectrum CNN (Frank et al., ICML 2020): standardised log |DCT-II| -> small conv net, 64 px."""

    def __init__(self, input_size: int = DCT_INPUT_SIZE, color: bool = False, channels: Sequence[int] = (16, 32, 64),
                 hidden: int = 128, dropout: float = 0.0,
                 attribution_classes: list[str] | None = None, attribution_weight: float = 1.0):
        super().__init__()
        self._spectrum_layers(input_size, color)
        layers: list[nn.Module] = []
        cin = self.spectrum_channels
        for cout in channels:
            layers += [_conv_bn_relu(cin, cout), nn.AvgPool2d(2, ceil_mode=True)]
            cin = cout
        self.convs = nn.Sequential(*layers)
        side = self.input_size
        for _ in channels:
            side = math.ceil(side / 2)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self._heads(hidden, attribution_classes, attribution_weight)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.fc(self.convs(self.log_spectrum(x)))
        return self._outputs(self.classifier(self.dropout(features)).squeeze(1), features)


# ------------------------------------------------------------------------------------------ pretrained backbones


@MODELS.register("cnnf")
class CNNF(_ImageForensicsModel):
    """CNNDetection (Wang et al., CVPR 2020): ImageNet EfficientNet-Lite0 fine-tuned real/fake, 224 px."""

    default_preprocess = LITE0_IMAGE_PREPROCESS
    init_only_kwargs = ("pretrained",)

    def __init__(self, pretrained: bool = True, dropout: float = 0.0,
                 attribution_classes: list[str] | None = None, attribution_weight: float = 1.0):
        super().__init__()
        self.backbone = _lite0(pretrained)
        self.dropout = nn.Dropout(dropout)
        self._heads(int(self.backbone.num_features), attribution_classes, attribution_weight)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        return self._outputs(self.classifier(self.dropout(features)).squeeze(1), features)

    def cam_layer(self) -> nn.Module:
        return self.backbone.bn2


@MODELS.register("patch_forensics")
class PatchForensics(_ImageForensicsModel):
    """Patch forensics (Chai et al., ECCV 2020): Lite0 truncated at stride 8, 1x1 patch classifiers, mean logit."""

    default_preprocess = PATCH_PREPROCESS
    init_only_kwargs = ("pretrained",)

    def __init__(self, pretrained: bool = True, stages: int = 3, hidden: int = 128, patch_weight: float = 1.0,
                 attribution_classes: list[str] | None = None, attribution_weight: float = 1.0):
        super().__init__()
        backbone = _lite0(pretrained)
        if not 1 <= stages <= len(backbone.blocks):
            raise ValueError(f"stages: 1 to {len(backbone.blocks)}, got {stages}")
        self.stem = nn.Sequential(backbone.conv_stem, backbone.bn1)  # bn1 holds the activation (timm BatchNormAct2d)
        self.blocks = nn.Sequential(*list(backbone.blocks)[:stages])
        convs = [m for m in [*self.stem.modules(), *self.blocks.modules()] if isinstance(m, nn.Conv2d)]
        channels = convs[-1].out_channels
        self.stride = math.prod(m.stride[0] for m in convs)  # 8 with the default 3 stages
        self.patch_hidden = _conv_bn_relu(channels, hidden, kernel=1)
        self.patch_weight = float(patch_weight)
        self._heads(hidden, attribution_classes, attribution_weight, binary=False)
        self.patch_classifier = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.patch_hidden(self.blocks(self.stem(x)))
        patches = self.patch_classifier(hidden)  # (B, 1, h, w) patch logits
        features = hidden.mean(dim=(2, 3))  # the classifier is linear: mean patch logit = classifier(features)
        return self._outputs(patches.mean(dim=(1, 2, 3)), features, mask=patches)

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = self._attribution_loss(out)
        if self.patch_weight > 0:
            patches = out["mask"].float()
            target = labels.float().view(-1, 1, 1, 1).expand_as(patches)
            losses["patch_bce"] = self.patch_weight * F.binary_cross_entropy_with_logits(patches, target)
        return losses

    def cam_layer(self) -> nn.Module:
        return self.patch_hidden


class _WaveletBranch(nn.Module):
    """(B, 3, H, W) -> (B, channels[-1]): Haar sub-bands (12 channels, H/2) -> conv net -> global mean."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256)):
        super().__init__()
        self.dwt = HaarDWT2d(3)
        layers, cin = [], 12
        for i, cout in enumerate(channels):
            layers.append(_conv_bn_relu(cin, cout, stride=1 if i == 0 else 2))
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.out_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(self.dwt(x)).mean(dim=(2, 3))


@MODELS.register("wavelet_branch")
class WaveletBranch(_ImageForensicsModel):
    """Wavelet branch (after FSBI, Hasanaath et al., 2024): Haar DWT sub-band CNN + ImageNet Lite0, 224 px."""

    default_preprocess = LITE0_IMAGE_PREPROCESS
    init_only_kwargs = ("pretrained",)

    def __init__(self, pretrained: bool = True, wavelet_channels: Sequence[int] = (32, 64, 128, 256),
                 dropout: float = 0.2, attribution_classes: list[str] | None = None,
                 attribution_weight: float = 1.0):
        super().__init__()
        self.backbone = _lite0(pretrained)
        self.wavelet = _WaveletBranch(wavelet_channels)
        self.dropout = nn.Dropout(dropout)
        self._heads(int(self.backbone.num_features) + self.wavelet.out_features, attribution_classes,
                    attribution_weight)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rgb = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        features = torch.cat([rgb, self.wavelet(x)], dim=1)
        return self._outputs(self.classifier(self.dropout(features)).squeeze(1), features)

    def cam_layer(self) -> nn.Module:
        return self.backbone.bn2


@MODELS.register("linear_probe")
class LinearProbe(_ImageForensicsModel):
    """Linear probe (after UnivFD, Ojha et al., CVPR 2023): frozen ImageNet Lite0 features -> Linear, 224 px."""

    default_preprocess = LITE0_IMAGE_PREPROCESS
    init_only_kwargs = ("pretrained",)

    def __init__(self, pretrained: bool = True, attribution_classes: list[str] | None = None,
                 attribution_weight: float = 1.0):
        super().__init__()
        self.backbone = _lite0(pretrained).requires_grad_(False)
        self._heads(int(self.backbone.num_features), attribution_classes, attribution_weight)
        self.train()

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.backbone.eval()  # frozen: BN keeps the ImageNet statistics
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        return self._outputs(self.classifier(features).squeeze(1), features)

    def cam_layer(self) -> nn.Module:
        return self.backbone.bn2


__all__ = [
    "CNNF",
    "DCT_PREPROCESS",
    "LITE0_IMAGE_PREPROCESS",
    "PATCH_PREPROCESS",
    "UNKNOWN_CLASS",
    "DCT2d",
    "DCTSpectrumCNN",
    "DCTSpectrumLinear",
    "HaarDWT2d",
    "LinearProbe",
    "PatchForensics",
    "SpectrumStandardiser",
    "WaveletBranch",
    "attribution_targets",
    "dct_matrix",
]
