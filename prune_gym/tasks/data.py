"""Named image datasets held in memory as normalised tensors, and the three splits of a task.

Datasets: ``digits`` (scikit-learn's 1797 bundled 8x8 digits, resized to
28x28; present everywhere, never downloads), ``mnist``, ``fashion-mnist``,
``cifar10`` (torchvision; downloaded into the data root when missing and
online), ``cifar10-subset`` (``<root>/cifar10-subset.npz``), and
``mnist-scenes`` (segmentation, built from MNIST: see :func:`compose_scenes`).
The data root is ``prune_gym.paths.data_root()``.

Splits: ``train`` (what the model is trained on), ``reward`` (held out of the
training set by a seeded permutation; what environments score accuracy on, as
AMC does) and ``test`` (the dataset's own test set, only for final reports).
Held as tensors, not DataLoaders: twice as fast on a CPU.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prune_gym.errors import DatasetUnavailableError
from prune_gym.paths import cache_dir, data_root
from prune_gym.registry import Registry
from prune_gym.storage import write_atomic

if TYPE_CHECKING:  # torch is imported where it runs: `prune-gym list` starts without it
    import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_STATS = {  # per-channel (mean, std) of the training images in [0, 1]
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
_STATS["cifar10-subset"] = _STATS["cifar10"]


@dataclass(frozen=True)
class DatasetArrays:
    """A labelled dataset: float32 NCHW images (normalised) and int64 labels (N,) or per-pixel labels (N, H, W), train and test."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        """Number of classes (largest label + 1; labels per pixel for segmentation)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class Splits:
    """The three disjoint splits of a task (images normalised as the model was trained)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    reward_x: torch.Tensor
    reward_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: str | torch.device) -> Splits:
        """The same splits as contiguous tensors on ``device``."""
        return Splits(*(getattr(self, name).to(device).contiguous() for name in self.__dataclass_fields__))


def check_arrays(x_train: Any, y_train: Any, x_test: Any, y_test: Any, name: str, kind: str = "task") -> DatasetArrays:
    """Validate user data and return it as :class:`DatasetArrays` (float32 images, int64 labels).

    Images: 4-D (N, C, H, W), finite, not empty. Labels: integers >= 0, one per image
    ``(N,)``, or one per pixel ``(N, H, W)`` for segmentation; at least two classes.

    Raises:
        ValueError: one line naming the task (or ``kind``: the dataset), the part and what is wrong.
    """
    import torch

    parts = {}
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        if x.numel() == 0 or y.numel() == 0:
            raise ValueError(f"{kind} {name!r}: the {part} set is empty (images {tuple(x.shape)}, labels {tuple(y.shape)}); "
                             f"give it labelled images")
        if x.dim() != 4:
            raise ValueError(f"{kind} {name!r}: {part} images have shape {tuple(x.shape)}; expected (N, channels, height, width)")
        if y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex:
            raise ValueError(f"{kind} {name!r}: {part} labels are {y.dtype}; expected integer class indices (cast them with .long())")
        if len(y) != len(x):
            raise ValueError(f"{kind} {name!r}: {len(x)} {part} images but {len(y)} labels; give one label per image")
        if y.shape[1:] not in ((), tuple(x.shape[2:])):
            raise ValueError(f"{kind} {name!r}: {part} labels have shape {tuple(y.shape)}; expected ({len(x)},) or per pixel "
                             f"({len(x)}, {x.shape[2]}, {x.shape[3]})")
        if len(y) and int(y.min()) < 0:
            raise ValueError(f"{kind} {name!r}: {part} labels include {int(y.min())}; class indices start at 0")
        x = x.float()
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{kind} {name!r}: {part} images contain NaN or inf; clean or drop those images")
        parts[part] = (x.contiguous(), y.long())
    if parts["train"][0].shape[1:] != parts["test"][0].shape[1:]:
        raise ValueError(f"{kind} {name!r}: train images are {tuple(parts['train'][0].shape[1:])}, test images "
                         f"{tuple(parts['test'][0].shape[1:])}; both need the same (channels, height, width)")
    arrays = DatasetArrays(*parts["train"], *parts["test"])
    if arrays.num_classes < 2:
        raise ValueError(f"{kind} {name!r}: the labels hold a single class; a classifier needs at least two")
    return arrays


def _normalise(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 or [0, 1] images (N, C, H, W) -> float32 normalised with the dataset's statistics."""
    import torch

    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean, std = _STATS[name]
    return ((x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)).contiguous()


def _unavailable(name: str, folder: Path, how: str, cause: Exception | None = None) -> DatasetUnavailableError:
    detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return DatasetUnavailableError(
        f"dataset {name!r} is not in {folder} and could not be downloaded{detail}. {how} "
        f"(the data root is the `root` argument, else $PRUNE_GYM_DATA, else the prune_gym cache)"
    )


def _load_digits(root: Path, download: bool) -> DatasetArrays:
    """scikit-learn's 1797 bundled 8x8 digits, resized to 28x28 (80/20 stratified train/test; never downloads)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images / 16.0).float().unsqueeze(1)
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    labels = torch.from_numpy(digits.target).long()
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=digits.target, random_state=0)
    mean, std = images[train].mean(), images[train].std()
    images = ((images - mean) / std).contiguous()
    return DatasetArrays(images[train], labels[train], images[test], labels[test])


def _idx_root(root: Path, cls: Any, extra_folders: tuple[Path, ...] = ()) -> Path:
    """The root torchvision should read an MNIST-style dataset from, without writing into ``root``.

    Uncompressed idx files in ``root`` are read in place; ``.gz`` files (in
    ``root`` or ``extra_folders``, e.g. Debian's package) are unpacked into the
    prune_gym cache, which becomes the root. With neither, ``root`` itself (where
    torchvision downloads when online).
    """
    names = [Path(url).name[:-3] for url, _ in cls.resources]  # "train-images-idx3-ubyte.gz" -> without ".gz"
    raw = Path(cls.__name__) / "raw"
    if all((root / raw / name).is_file() for name in names):
        return root
    folders = (root / raw, *extra_folders)
    packed = [next((folder / f"{name}.gz" for folder in folders if (folder / f"{name}.gz").is_file()), None) for name in names]
    if any(source is None for source in packed):
        return root
    unpacked = cache_dir() / "data"
    for name, source in zip(names, packed):
        target = unpacked / raw / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(source, "rb") as compressed:  # type: ignore[arg-type]
                write_atomic(target, compressed.read())
    return unpacked


def _torchvision(name: str, cls_name: str, folder_hint: str, extra_folders: tuple[Path, ...] = ()) -> Callable[[Path, bool], DatasetArrays]:
    def load(root: Path, download: bool) -> DatasetArrays:
        import torch
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        source = _idx_root(root, cls, extra_folders) if hasattr(cls, "resources") else root
        try:
            try:
                train, test = cls(str(source), train=True, download=False), cls(str(source), train=False, download=False)
            except RuntimeError:
                if not download:
                    raise
                train, test = cls(str(root), train=True, download=True), cls(str(root), train=False, download=True)
        except Exception as error:  # torchvision raises RuntimeError, URLError, OSError... when missing and offline
            raise _unavailable(name, root / folder_hint, f"Run once on a machine with internet access (torchvision downloads it), "
                               f"or copy the torchvision files to {root / folder_hint}.", error) from error

        def tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
            data = torch.as_tensor(np.asarray(dataset.data))
            data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
            return _normalise(data, name), torch.as_tensor(np.asarray(dataset.targets)).long()

        return DatasetArrays(*tensors(train), *tensors(test))

    load.__doc__ = f"torchvision's {cls_name} (downloaded into the data root when missing and online)"
    return load


def _load_cifar10_subset(root: Path, download: bool) -> DatasetArrays:
    """A fixed 8068-image subset of CIFAR-10 (``cifar10-subset.npz`` of the shared data; never downloads)."""
    import torch

    path = root / "cifar10-subset.npz"
    if not path.is_file():
        raise _unavailable("cifar10-subset", root, "It is a fixed subset of CIFAR-10 shipped with the project's shared data: "
                           "set PRUNE_GYM_DATA to the folder holding cifar10-subset.npz, or use the task on full 'cifar10'.")
    with np.load(path) as archive:
        arrays = {key: torch.from_numpy(archive[key]) for key in ("x_train", "y_train", "x_test", "y_test")}
    return DatasetArrays(_normalise(arrays["x_train"], "cifar10-subset"), arrays["y_train"].long(),
                         _normalise(arrays["x_test"], "cifar10-subset"), arrays["y_test"].long())


def compose_scenes(digits: torch.Tensor, labels: torch.Tensor, count: int, seed: int, size: int = 32,
                   digit_size: int = 16, per_scene: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Segmentation scenes from digit images: ``count`` canvases of ``size`` x ``size`` pixels.

    Each scene holds ``per_scene`` digits (drawn at random, resized to
    ``digit_size`` pixels) at random positions; overlaps keep the brighter
    pixel. The target of a pixel is 1 + the class of the digit drawn there where
    that digit's intensity is above 0.5, else 0 (background): ``num_classes``
    is 11. ``digits`` are (N, 1, 28, 28) intensities in [0, 1].

    Returns:
        (images (count, 1, size, size) in [0, 1], per-pixel labels (count, size, size) int64).
    """
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(seed)
    small = F.interpolate(digits, size=(digit_size, digit_size), mode="bilinear", align_corners=False).clamp(0, 1)
    images = torch.zeros(count, 1, size, size)
    targets = torch.zeros(count, size, size, dtype=torch.long)
    picks = torch.randint(len(digits), (count, per_scene), generator=generator)
    corners = torch.randint(size - digit_size + 1, (count, per_scene, 2), generator=generator)
    for scene in range(count):
        for slot in range(per_scene):
            index, (top, left) = picks[scene, slot], corners[scene, slot].tolist()
            window = (slice(top, top + digit_size), slice(left, left + digit_size))
            digit = small[index, 0]
            images[scene, 0][window] = torch.maximum(images[scene, 0][window], digit)
            targets[scene][window] = torch.where(digit > 0.5, labels[index] + 1, targets[scene][window])
    return images, targets


def _load_mnist_scenes(root: Path, download: bool) -> DatasetArrays:
    """12,000 training and 2,000 test scenes composed from MNIST's training and test digits (seeded)."""
    mnist = load_dataset("mnist", root, download)
    mean, std = _STATS["mnist"]
    train = compose_scenes(mnist.x_train * std[0] + mean[0], mnist.y_train, 12_000, seed=0)
    test = compose_scenes(mnist.x_test * std[0] + mean[0], mnist.y_test, 2_000, seed=1)
    scene_mean, scene_std = train[0].mean(), train[0].std()
    return DatasetArrays((train[0] - scene_mean) / scene_std, train[1], (test[0] - scene_mean) / scene_std, test[1])


DatasetLoader = Callable[[Path, bool], DatasetArrays]
_DATASETS: Registry[DatasetLoader] = Registry("dataset")


@lru_cache(maxsize=8)
def _cached(name: str, root: Path, download: bool) -> DatasetArrays:
    arrays = _DATASETS.get(name)(root, download)
    if not isinstance(arrays, DatasetArrays):
        raise ValueError(f"dataset {name!r}: its loader returned {type(arrays).__name__}, not DatasetArrays; "
                         "return DatasetArrays(x_train, y_train, x_test, y_test)")
    return check_arrays(arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test, name, kind="dataset")


def register_dataset(name: str, loader: DatasetLoader | None = None, *, overwrite: bool = False) -> Any:
    """Register a dataset under ``name``; usable as ``@register_dataset("name")`` or directly.

    ``loader(root, download)`` returns the dataset's :class:`DatasetArrays` (normalised
    float32 NCHW images, int64 labels) from the data root ``root``, downloading into it
    if ``download`` and it is missing; it raises :class:`DatasetUnavailableError` otherwise.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False.
    """

    _cached.cache_clear()
    return _DATASETS.decorator(name, loader, lambda fn: fn, overwrite)


for _name, _loader in (
    ("digits", _load_digits),
    ("mnist", _torchvision("mnist", "MNIST", "MNIST/raw")),
    ("fashion-mnist", _torchvision("fashion-mnist", "FashionMNIST", "FashionMNIST/raw", (DEBIAN_FASHION_MNIST,))),
    ("cifar10", _torchvision("cifar10", "CIFAR10", "cifar-10-batches-py")),
    ("cifar10-subset", _load_cifar10_subset),
    ("mnist-scenes", _load_mnist_scenes),
):
    register_dataset(_name, _loader)


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return _DATASETS.names()


def get_dataset_loader(name: str) -> DatasetLoader:
    """The registered loader of dataset ``name``: ``loader(root, download)`` reads it afresh (:func:`load_dataset` caches).

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    return _DATASETS.get(name)


def load_dataset(name: str, root: str | Path | None = None, download: bool = True) -> DatasetArrays:
    """Load a registered dataset into memory (cached per process).

    Raises:
        ValueError: unknown name (the message lists the registered ones).
        DatasetUnavailableError: the files are missing and cannot be downloaded.
    """
    _DATASETS.get(name)
    return _cached(name, data_root(root).expanduser().resolve(), download)


def make_splits(arrays: DatasetArrays, reward_size: int, seed: int = 0) -> Splits:
    """Hold ``reward_size`` training images out as the reward split (seeded permutation); test = the test set."""
    n = len(arrays.y_train)
    if not 0 < reward_size < n:
        raise ValueError(f"reward_size must be between 1 and {n - 1} (the training set has {n} images), got {reward_size}")
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    reward, train = order[:reward_size].sort().values, order[reward_size:].sort().values
    return Splits(arrays.x_train[train].contiguous(), arrays.y_train[train], arrays.x_train[reward].contiguous(),
                  arrays.y_train[reward], arrays.x_test, arrays.y_test)
