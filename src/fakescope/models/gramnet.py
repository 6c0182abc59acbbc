"""Gram-Net: ResNet-18 with Gram-matrix (global texture) branches.

Zhengzhe Liu, Xiaojuan Qi, Philip H. S. Torr, "Global Texture Enhancement for
Fake Face Detection in the Wild", CVPR 2020. Structure and channel counts follow
the authors' ``resnet18_gram.py`` (github.com/liuzhengzhe/Global_Texture_Enhancement_
for_Fake_Face_Detection_in_the-Wild). Six Gram blocks tap the ResNet-18 at the
input image, the stem (after conv1-BN-ReLU), after the max pool, and after
residual stages 1, 2 and 3 (layer4 has none; the code taps those six points, not
"every stage"). Each block: 3x3 conv to 32 channels + BN + ReLU, the 32 x 32 Gram
matrix of that map divided by C·H·W, then the Gram matrix is treated as a
one-channel 32 x 32 image: two 3x3 stride-2 conv-BN-ReLU (16, then 32 channels)
and a global average pool give a 32-d vector. One learnt scalar, shared by all six
blocks, scales the texture vectors. The 512-d pooled layer4 features and the six
32-d vectors are concatenated (704-d) and classified by Linear(704, 512), ReLU,
dropout 0.5, Linear. Because the Gram matrix is C x C whatever the spatial size,
the texture branches see any input resolution, as the authors' code relies on.

Departures from the authors' code: one fake logit instead of a 2-way
log-softmax (their class 0 was fake); the backbone's stages are timm's
``resnet18`` (same layers as torchvision's) with random weights, while the
authors fine-tuned from ImageNet; the input is RGB normalised with the ImageNet
mean/std, while their loader fed raw BGR 0-255 pixels (it defines that
normalisation but never applies it; every branch starts with a BN, so only
the scale of the first convs' weights depends on it); the Gram product divides
each feature by sqrt(H·W) before the matrix product and by C after, the
same quantity, so that it cannot overflow under float16 autocast (at 512 px
the undivided sum reaches 2.6e5, past float16's 65504).

Input 512 px: the authors' training loader resizes every face to 512 x 512
(after a random down-scaling to 64-256 px, their resize augmentation; see
configs/zoo/gramnet.yaml). ``features`` is the 704-d concatenation; Grad-CAM
explains layer4.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

GRAMNET_PREPROCESS = PreprocessSpec(input_size=512, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)

#: Channels of each Gram block's reducing conv, hence each Gram matrix is 32 x 32.
GRAM_CHANNELS = 32
#: Length of each Gram block's output vector.
GRAM_VECTOR = 32
#: Where the Gram blocks tap the network, with the channels there (ResNet-18).
TAP_POINTS = (("image", 3), ("stem", 64), ("maxpool", 64), ("layer1", 64), ("layer2", 128), ("layer3", 256))


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): G[i, j] = sum_p F[i, p] F[j, p] / (C·H·W).

    The sum runs over pixels, so G ignores where things are (a spatial permutation
    leaves it unchanged) and keeps which channels fire together: a texture statistic.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w) / float(h * w) ** 0.5  # keeps the sum in float16's range
    return torch.bmm(flat, flat.transpose(1, 2)) / c


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class GramBlock(nn.Module):
    """Feature map (B, C_in, H, W) -> (B, 32) global-texture vector."""

    def __init__(self, in_channels: int, channels: int = GRAM_CHANNELS, out_dim: int = GRAM_VECTOR):
        super().__init__()
        self.reduce = _conv_bn_relu(in_channels, channels, stride=1)
        # the C x C Gram matrix is read as a one-channel image
        self.encode = nn.Sequential(_conv_bn_relu(1, out_dim // 2, stride=2), _conv_bn_relu(out_dim // 2, out_dim, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gram = gram_matrix(self.reduce(x)).unsqueeze(1)
        return self.encode(gram).mean(dim=(2, 3))


@MODELS.register("gramnet")
class GramNet(DetectorModel):
    """Gram-Net (Liu et al., CVPR 2020): ResNet-18 plus six Gram-matrix texture branches, 512 px."""

    default_preprocess = GRAMNET_PREPROCESS

    def __init__(self, dropout: float = 0.5, hidden: int = 512):
        super().__init__()
        import timm

        self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=0)
        self.gram_blocks = nn.ModuleDict({name: GramBlock(ch) for name, ch in TAP_POINTS})
        for module in self.gram_blocks.modules():  # the authors' init (timm's for the backbone)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.gram_scale = nn.Parameter(torch.ones(1))  # one scalar for all six texture vectors
        self.num_features = int(self.backbone.num_features) + GRAM_VECTOR * len(TAP_POINTS)  # 512 + 6 x 32
        self.head = nn.Sequential(
            nn.Linear(self.num_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = self.backbone
        taps = {"image": x}
        x = taps["stem"] = b.act1(b.bn1(b.conv1(x)))
        x = taps["maxpool"] = b.maxpool(x)
        x = taps["layer1"] = b.layer1(x)
        x = taps["layer2"] = b.layer2(x)
        x = taps["layer3"] = b.layer3(x)
        pooled = b.layer4(x).mean(dim=(2, 3))
        textures = [self.gram_blocks[name](taps[name]) * self.gram_scale for name, _ in TAP_POINTS]
        features = torch.cat([pooled, *textures], dim=1)
        return {"logits": self.head(features).squeeze(1), "features": features}

    def cam_layer(self) -> nn.Module:
        return self.backbone.layer4


__all__ = ["GRAMNET_PREPROCESS", "GRAM_CHANNELS", "TAP_POINTS", "GramBlock", "GramNet", "gram_matrix"]
