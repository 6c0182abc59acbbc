"""Plain ImageNet-classifier backbones with a binary fake/real head: the "naive"
baselines of the deepfake literature (FaceForensics++, DeepfakeBench).

Three architectures are registered; each is a timm backbone built with
``pretrained=False`` and its 1000-way classifier replaced by dropout -> Linear(D, 1):

``resnet50``
    timm ``resnet50`` (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", CVPR 2016).  224 px, ImageNet mean/std.  DeepfakeBench's
    "CNN-Aug" baseline uses the shallower ResNet-34; ResNet-50 is the usual
    heavier member of the family in FF++-style comparisons.
``xception``
    timm ``legacy_xception``: Chollet's original Xception ("Xception: Deep
    Learning with Depthwise Separable Convolutions", CVPR 2017), the network
    FaceForensics++ (Rössler et al., ICCV 2019) fine-tunes as its strongest
    detector.  299 px, mean/std 0.5 as in the FF++ code.
``vit_b16``
    timm ``vit_base_patch16_224`` (Dosovitskiy et al., "An Image is Worth 16x16
    Words: Transformers for Image Recognition at Scale", ICLR 2021).  224 px,
    mean/std 0.5 (the normalisation of the original JAX/timm ViT weights).

Output (the ``DetectorModel`` contract): ``features`` (B, D) are timm's pooled
pre-logits features, ``backbone.forward_head(backbone.forward_features(x),
pre_logits=True)``: global average pool for the CNNs (D = 2048), the final-norm
class token for the ViT (D = 768); ``logits`` (B,) = Linear(dropout(features)).

Departures from the papers: no ImageNet weights ship with fakescope, so every
backbone starts from timm's random initialisation (FF++ and DeepfakeBench fine-tune
ImageNet weights; bring a checkpoint).  One fake logit with BCE instead of the
two-way softmax FF++/DeepfakeBench train (equivalent up to parametrisation).
Dropout before the head defaults to 0 (FF++'s and DeepfakeBench's default).

Grad-CAM (``cam_layer``): the last spatial map before pooling, ``layer4`` for
ResNet-50 and the exit flow's last ReLU (``act4``) for Xception.  A ViT has no
spatial map, and its class token after the last block does not depend on the last
block's patch tokens at all (so Grad-CAM there would be all zeros).  The ViT forward
therefore runs the patch tokens entering the last block through ``TokenGrid``, a
lossless (B, N, D) -> (B, D, 14, 14) reshape that ``cam_layer`` returns; the tokens
are flattened back before the block, so the forward is numerically timm's own.
Gradients reach that map through the last block's attention from the class token,
the usual Grad-CAM target for ViTs (cf. pytorch-grad-cam's ``blocks[-1].norm1``).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


class _TimmBinaryClassifier(DetectorModel):
    """timm backbone (classifier removed) -> pooled features -> dropout -> Linear(D, 1)."""

    def __init__(self, timm_name: str, dropout: float, **timm_kwargs):
        super().__init__()
        import timm

        # num_classes=0: timm's head becomes Identity; drop_rate stays 0 so timm adds no
        # dropout of its own inside forward_head (ours is self.dropout)
        self.backbone = timm.create_model(timm_name, pretrained=False, num_classes=0, **timm_kwargs)
        self.num_features = int(self.backbone.num_features)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, 1)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.pooled_features(x)
        return {"logits": self.classifier(self.dropout(features)).squeeze(1), "features": features}


@MODELS.register("resnet50")
class ResNet50Detector(_TimmBinaryClassifier):
    """ResNet-50 (He et al., CVPR 2016; timm resnet50, random init), one fake logit."""

    default_preprocess = PreprocessSpec(input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)

    def __init__(self, dropout: float = 0.0):
        super().__init__("resnet50", dropout)

    def cam_layer(self) -> nn.Module:
        return self.backbone.layer4


@MODELS.register("xception")
class XceptionDetector(_TimmBinaryClassifier):
    """Xception (Chollet, CVPR 2017) as FaceForensics++ uses it; timm legacy_xception, random init."""

    default_preprocess = PreprocessSpec(input_size=299, mean=HALF, std=HALF, margin=1.3)

    def __init__(self, dropout: float = 0.0):
        super().__init__("legacy_xception", dropout)

    def cam_layer(self) -> nn.Module:
        return self.backbone.act4


class TokenGrid(nn.Module):
    """Patch tokens (B, h*w, D) -> the spatial map (B, D, h, w) they tile, row-major
    as timm's PatchEmbed flattens them. A pure reshape: no parameters, no arithmetic."""

    def __init__(self, grid_size: tuple[int, int]):
        super().__init__()
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.transpose(1, 2).unflatten(2, self.grid_size)


@MODELS.register("vit_b16")
class ViTB16Detector(_TimmBinaryClassifier):
    """ViT-B/16 (Dosovitskiy et al., ICLR 2021; timm vit_base_patch16_224, random init), class-token fake logit."""

    default_preprocess = PreprocessSpec(input_size=224, mean=HALF, std=HALF, margin=1.3)

    def __init__(self, dropout: float = 0.0, img_size: int = 224):
        # the position embedding fixes the input size; a checkpoint trained at another
        # size records img_size in its arch kwargs
        super().__init__("vit_base_patch16_224", dropout, img_size=img_size)
        self.token_grid = TokenGrid(self.backbone.patch_embed.grid_size)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        # timm's forward_features, with the tokens entering the last block passed
        # through TokenGrid (and back) so Grad-CAM has a spatial map it can explain
        b = self.backbone
        x = b.norm_pre(b.patch_drop(b._pos_embed(b.patch_embed(x))))
        for block in b.blocks[:-1]:
            x = block(x)
        prefix = b.num_prefix_tokens
        grid = self.token_grid(x[:, prefix:])
        x = torch.cat([x[:, :prefix], grid.flatten(2).transpose(1, 2)], dim=1)
        x = b.norm(b.blocks[-1](x))
        return b.forward_head(x, pre_logits=True)

    def cam_layer(self) -> nn.Module:
        return self.token_grid


__all__ = ["ResNet50Detector", "TokenGrid", "ViTB16Detector", "XceptionDetector"]
