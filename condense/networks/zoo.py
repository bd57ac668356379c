"""Cross-architecture evaluation networks of the DC/DSA/DM/DataDAM code (``networks.py``).

MLP, LeNet, AlexNet(BN), VGG11(BN), ResNet18(BN) and ResNet18BN_AP, as in the official
``networks.py``, except that the classifier's input size is computed from the image size, so the
same definitions serve 28, 32 and 64 px inputs (the official code hard-codes 28/32). "instancenorm"
is GroupNorm(C, C) as everywhere in the field. PyTorch default initialisation.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

ZOO_NORMS = ("instancenorm", "batchnorm", "none")


def _norm2d(kind: str, c: int) -> nn.Module:
    if kind == "instancenorm":
        return nn.GroupNorm(c, c, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(c)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {kind!r}; valid: {', '.join(ZOO_NORMS)}")


class MLP(nn.Module):
    """Flatten -> 128 -> 128 -> classes, ReLU (784 or 3072 inputs at 28/32 px)."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = image_size
        self.fc_1 = nn.Linear(channels * h * w, 128)
        self.fc_2 = nn.Linear(128, 128)
        self.fc_3 = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], -1)
        x = F.relu(self.fc_1(x))
        x = F.relu(self.fc_2(x))
        return self.fc_3(x)


class LeNet(nn.Module):
    """conv5×5(6) (pad 2 on 1-channel input), ReLU, maxpool, conv5×5(16), ReLU, maxpool, 3 FCs."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        pad = 2 if channels == 1 else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=pad), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        )
        h, w = image_size
        h, w = (h + 2 * pad - 4) // 2, (w + 2 * pad - 4) // 2
        h, w = (h - 4) // 2, (w - 4) // 2
        self.fc_1 = nn.Linear(16 * h * w, 120)
        self.fc_2 = nn.Linear(120, 84)
        self.fc_3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).reshape(x.shape[0], -1)
        x = F.relu(self.fc_1(x))
        x = F.relu(self.fc_2(x))
        return self.fc_3(x)


class AlexNet(nn.Module):
    """The field's small AlexNet (5 convs, 3 max-pools, one Linear); ``norm`` after every conv."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int],
                 norm: str = "none") -> None:
        super().__init__()
        pad = 4 if channels == 1 else 2

        def conv(i: int, o: int, k: int, p: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, kernel_size=k, padding=p), _norm2d(norm, o),
                    nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(channels, 128, 5, pad), nn.MaxPool2d(2, 2),
            *conv(128, 192, 5, 2), nn.MaxPool2d(2, 2),
            *conv(192, 256, 3, 1), *conv(256, 192, 3, 1), *conv(192, 192, 3, 1),
            nn.MaxPool2d(2, 2),
        )
        h, w = image_size
        h, w = h + 2 * pad - 4, w + 2 * pad - 4
        self.fc = nn.Linear(192 * (h // 8) * (w // 8), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).reshape(x.shape[0], -1))


_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG11 without dropout or FC stack: conv3×3 + norm + ReLU blocks, 5 max-pools, Linear."""

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int],
                 norm: str = "instancenorm") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_c = channels
        h, w = image_size
        if channels == 1:  # first conv pad 3: 28 -> 32
            h, w = h + 4, w + 4
        for i, v in enumerate(_VGG11):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                h, w = h // 2, w // 2
                continue
            assert isinstance(v, int)
            pad = 3 if channels == 1 and i == 0 else 1
            layers += [nn.Conv2d(in_c, v, 3, padding=pad), _norm2d(norm, v), nn.ReLU(inplace=True)]
            in_c = v
        layers.append(nn.AvgPool2d(kernel_size=1, stride=1))  # the official no-op
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512 * h * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).reshape(x.shape[0], -1))


class BasicBlock(nn.Module):
    """ResNet basic block; ``ap`` replaces the strided convs by stride 1 + avg-pool(2)."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str,
                 ap: bool = False) -> None:
        super().__init__()
        self.stride = stride
        self.ap = ap
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=1 if ap else stride, padding=1,
                               bias=False)
        self.bn1 = _norm2d(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm2d(norm, planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if ap:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=1, bias=False),
                    nn.AvgPool2d(kernel_size=2, stride=2), _norm2d(norm, planes))
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    _norm2d(norm, planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        if self.ap and self.stride != 1:
            out = F.avg_pool2d(out, kernel_size=2, stride=2)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images: 3×3 stem, no max-pool, [2,2,2,2] blocks, avg-pool(4), Linear.

    ``ap=True`` is ResNet18BN_AP: stride-1 convs plus avg-pool, no global pool before the head.
    """

    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int],
                 norm: str = "instancenorm", ap: bool = False) -> None:
        super().__init__()
        self.ap = ap
        self.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm2d(norm, 64)
        blocks: list[nn.Module] = []
        in_planes = 64
        h, w = image_size
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for s in (stride, 1):
                blocks.append(BasicBlock(in_planes, planes, s, norm, ap))
                in_planes = planes
                if s == 2:
                    h, w = (h // 2, w // 2) if ap else ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
        self.layers = nn.Sequential(*blocks)
        if not ap:
            h, w = h // 4, w // 4
        self.classifier = nn.Linear(512 * h * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        if not self.ap:
            out = F.avg_pool2d(out, 4)
        return self.classifier(out.reshape(out.shape[0], -1))


__all__ = ["MLP", "VGG11", "ZOO_NORMS", "AlexNet", "BasicBlock", "LeNet", "ResNet18"]
