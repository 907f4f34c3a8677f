"""The model zoo: the CNNs of the pruning literature, in their CIFAR/MNIST variants.

=================  =====================================  =================
name               what                                   published (MACs / params)
=================  =====================================  =================
``lenet5``         LeNet-5 for 28x28 grey images           -
``cnn5``           five convs, a wide last one (28x28)     -
``vgg16``          VGG-16 with BatchNorm (Li et al. 2017)  3.13e8 / 1.5e7
``resnet20``       CIFAR ResNet-20 (He et al. 2016)        4.1e7 / 2.7e5
``resnet56``       CIFAR ResNet-56                         1.25e8 / 8.5e5
``resnet110``      CIFAR ResNet-110                        2.53e8 / 1.72e6
``plain20``        ResNet-20 without shortcuts (AMC)       -
``vgg16-slim``     VGG-16-BN at a quarter width            -
``resnet56-slim``  ResNet-56 at half width (8/16/32)       -
``resnet20-slim``  ResNet-20 at half width (8/16/32)       -
``plain20-slim``   Plain-20 at half width (8/16/32)        -
``mobilenetv2``    MobileNetV2 for 32x32 inputs            -
``fcn``            segmentation encoder-decoder, 32x32     -
=================  =====================================  =================

The ResNets use projection shortcuts (1x1 conv + BatchNorm) where the shape
changes, so torch-pruning can trace the channel coupling of residual adds.
Every classifier ends with its last ``nn.Linear`` in module order; the
segmentation network (``fcn``) with its last ``nn.Conv2d``: the output layer,
whose outputs are never pruned.
MACs are multiply-accumulates of conv and linear layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn

from prune_gym.registry import Registry

_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_CNN5_LAYOUT = (16, 16, "M", 32, 32, "M", 256)
_MOBILENETV2_LAYOUT = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels)]


def _plain_features(layout: tuple[int | str, ...], in_channels: int, width: float = 1.0) -> tuple[nn.Sequential, int]:
    """3x3 conv-BN-ReLU layers of ``layout``'s widths (times ``width``), "M" a 2x2 max-pooling; and the last width."""
    layers: list[nn.Module] = []
    for channels in layout:
        if isinstance(channels, str):  # "M": max-pooling
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [*_conv_bn(in_channels, int(channels * width)), nn.ReLU()]
            in_channels = int(channels * width)
    return nn.Sequential(*layers), in_channels


def _init_weights(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 inputs: two 5x5 convs (6, 16 filters) and three linear layers."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class CNN5(nn.Module):
    """Five 3x3 conv-BN-ReLU layers (16, 16, pool, 32, 32, pool, 256 filters), global average pooling, a linear layer.

    For 28x28 grey images. The last conv holds 44% of the 8.2 M MACs and most of the redundancy, so where the
    filters are removed matters: uniform pruning thins the narrow early layers as much as the wide one.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features, channels = _plain_features(_CNN5_LAYOUT, in_channels)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
        _init_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))


class VGG16(nn.Module):
    """VGG-16 with BatchNorm for CIFAR (Li et al. 2017): 13 3x3 convs, then 512-512-classes linear layers;
    ``width`` scales every layer's channels (``vgg16-slim``: a quarter)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        self.features, channels = _plain_features(_VGG16_LAYOUT, in_channels, width)
        hidden = int(512 * width)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )
        _init_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or projection shortcut (none for plain networks)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.residual = residual
        self.conv1, self.bn1 = _conv_bn(in_channels, out_channels, stride=stride)
        self.conv2, self.bn2 = _conv_bn(out_channels, out_channels)
        self.relu = nn.ReLU()
        projection = residual and (stride != 1 or in_channels != out_channels)
        self.shortcut = nn.Sequential(*_conv_bn(in_channels, out_channels, kernel=1, stride=stride)) if projection else nn.Identity()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + self.shortcut(x)
        return self.relu(out)


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet of depth 6n+2, stages of ``base``/2 ``base``/4 ``base`` channels (16/32/64);
    ``residual=False`` gives the plain net."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, residual: bool = True, base: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 56, 110, ...), got {depth}")
        blocks = (depth - 2) // 6
        self.stem = nn.Sequential(*_conv_bn(in_channels, base), nn.ReLU())
        stages, width = [], base
        for stage, out_channels in enumerate((base, 2 * base, 4 * base)):
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                stages.append(BasicBlock(width, out_channels, stride, residual))
                width = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * base, num_classes)
        _init_weights(self)

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 projection; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [*_conv_bn(in_channels, hidden, kernel=1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, stride=stride, groups=hidden), nn.ReLU6(), *_conv_bn(hidden, out_channels, kernel=1)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 for 32x32 inputs: stride-1 stem and second stage (as in kuangliu/pytorch-cifar)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(in_channels, 32), nn.ReLU6()]
        width = 32
        for expansion, out_channels, repeats, stride in _MOBILENETV2_LAYOUT:
            for index in range(repeats):
                layers.append(InvertedResidual(width, out_channels, stride if index == 0 else 1, expansion))
                width = out_channels
        layers += [*_conv_bn(width, 1280, kernel=1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, num_classes)
        _init_weights(self)

    def forward(self, x):
        return self.classifier(self.features(x))


class FCN(nn.Module):
    """A small fully convolutional segmentation network (encoder-decoder with additive skips).

    Two stride-2 stages (16, 32, 64 channels), bilinear upsampling back to the
    input size with the encoder's features added at each scale (so torch-pruning
    couples those channels, as residual adds do), and a 1x1 output conv giving
    per-pixel logits ``(N, num_classes, H, W)``; H and W divisible by 4.
    """

    def __init__(self, num_classes: int = 11, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, 16), nn.ReLU())
        self.down1 = nn.Sequential(*_conv_bn(16, 32, stride=2), nn.ReLU(), *_conv_bn(32, 32), nn.ReLU())
        self.down2 = nn.Sequential(*_conv_bn(32, 64, stride=2), nn.ReLU(), *_conv_bn(64, 64), nn.ReLU())
        self.up1 = nn.Sequential(*_conv_bn(64, 32), nn.ReLU())
        self.up2 = nn.Sequential(*_conv_bn(32, 16), nn.ReLU())
        self.head = nn.Conv2d(16, num_classes, 1)
        _init_weights(self)

    def forward(self, x):
        full = self.stem(x)
        half = self.down1(full)
        quarter = self.down2(half)
        half = self.up1(nn.functional.interpolate(quarter, scale_factor=2.0, mode="bilinear", align_corners=False)) + half
        full = self.up2(nn.functional.interpolate(half, scale_factor=2.0, mode="bilinear", align_corners=False)) + full
        return self.head(full)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: a factory ``f(num_classes=..., in_channels=...) -> nn.Module`` and the (C, H, W) input it is built for."""

    name: str
    factory: Callable[..., nn.Module]
    input_shape: tuple[int, int, int]


_MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, factory: Callable[..., nn.Module] | None = None, *, input_shape: tuple[int, int, int],
                   overwrite: bool = False) -> Any:
    """Register a model under ``name``; usable as ``@register_model("name", input_shape=(3, 32, 32))`` or directly.

    ``factory(num_classes=..., in_channels=...)`` returns a freshly initialised
    network whose last ``nn.Linear`` (or, without one, last ``nn.Conv2d``) is its output layer (never pruned).

    Raises:
        ValueError: the name is taken and ``overwrite`` is False, or ``input_shape`` is not (C, H, W).
    """
    if len(tuple(input_shape)) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(f"invalid input_shape={input_shape!r} for model {name!r}: expected (channels, height, width)")

    shape = (int(input_shape[0]), int(input_shape[1]), int(input_shape[2]))
    return _MODELS.decorator(name, factory, lambda fn: ModelSpec(name, fn, shape), overwrite)


for _name, _factory, _shape in (
    ("lenet5", LeNet5, (1, 28, 28)),
    ("cnn5", CNN5, (1, 28, 28)),
    ("vgg16", VGG16, (3, 32, 32)),
    ("resnet20", partial(CifarResNet, 20), (3, 32, 32)),
    ("resnet56", partial(CifarResNet, 56), (3, 32, 32)),
    ("resnet110", partial(CifarResNet, 110), (3, 32, 32)),
    ("plain20", partial(CifarResNet, 20, residual=False), (3, 32, 32)),
    ("vgg16-slim", partial(VGG16, width=0.25), (3, 32, 32)),
    ("resnet56-slim", partial(CifarResNet, 56, base=8), (3, 32, 32)),
    ("resnet20-slim", partial(CifarResNet, 20, base=8), (1, 28, 28)),
    ("plain20-slim", partial(CifarResNet, 20, residual=False, base=8), (1, 28, 28)),
    ("mobilenetv2", MobileNetV2, (3, 32, 32)),
    ("fcn", FCN, (1, 32, 32)),
):
    register_model(_name, _factory, input_shape=_shape)


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return _MODELS.names()


def get_model(name: str) -> ModelSpec:
    """The registered model ``name``: its factory and input shape.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    return _MODELS.get(name)


def default_input_shape(name: str) -> tuple[int, int, int]:
    """The (C, H, W) input a registered model is built for."""
    return _MODELS.get(name).input_shape


def build_model(name: str, num_classes: int = 10, in_channels: int | None = None) -> nn.Module:
    """A freshly initialised registered model (``in_channels`` defaults to the model's usual input)."""
    spec = _MODELS.get(name)
    return spec.factory(num_classes=num_classes, in_channels=spec.input_shape[0] if in_channels is None else in_channels)
