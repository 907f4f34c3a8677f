"""Pruning tasks: a dataset + a CNN + its trained checkpoint + fixed splits, addressed by name.

Built-in tasks are listed by ``prune_gym.list_tasks()``; register your own with
:func:`register_task` (any ``nn.Module`` and tensors or torchvision-style
datasets, no subclassing). Checkpoints live in ``prune_gym.paths.cache_dir()``
and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from prune_gym.errors import CheckpointMissingError
from prune_gym.paths import checkpoint_path
from prune_gym.registry import Registry
from prune_gym.tasks.data import DatasetArrays, Splits, check_arrays, load_dataset, make_splits
from prune_gym.tasks.metrics import evaluate, get_metric
from prune_gym.tasks.training import TrainingConfig, TrainResult, load_checkpoint, save_checkpoint, train
from prune_gym.validation import check_device, check_int

if TYPE_CHECKING:  # torch is imported where it runs: `prune-gym list tasks` starts without it
    import torch
    from torch import nn

ModelSource: TypeAlias = "str | nn.Module | Callable[[], nn.Module]"
DataSource = str | Callable[[], DatasetArrays]

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def check_task_name(name: Any) -> str:
    """``name`` if it can name a file in the cache: letters, digits, ``-``, ``_`` and ``.``, not first, at most 200.

    Raises:
        ValueError: one line saying why and what a task name may hold.
    """
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"invalid task name {name!r}: a task's name is its checkpoint's file name in the cache, so it may hold "
                         "only letters, digits, '-', '_' and '.' (not first), at most 200 characters; rename the task")
    return name


@dataclass(frozen=True)
class Task:
    """A named pruning task.

    Attributes:
        name: registry name, also the checkpoint's file name.
        model: a zoo model name, or a zero-argument factory returning a fresh ``nn.Module``.
        dataset: a dataset name (``prune_gym.tasks.data.list_datasets()``) or a zero-argument loader of DatasetArrays.
        reward_size: images held out of the training set as the reward split.
        training: hyper-parameters of ``prune-gym pretrain``.
        auto_pretrain: train automatically on first use (small tasks).
        split_seed: seed of the reward hold-out.
        description: one line for ``prune-gym list tasks``.
        metric: the registered metric the task is scored by (``accuracy``, ``mean-iou``, ...).
    """

    name: str
    model: str | Callable[[], nn.Module]
    dataset: str | Callable[[], DatasetArrays]
    reward_size: int
    training: TrainingConfig = field(default_factory=TrainingConfig)
    auto_pretrain: bool = False
    split_seed: int = 0
    description: str = ""
    metric: str = "accuracy"

    def __post_init__(self) -> None:
        check_task_name(self.name)
        check_int("reward_size", self.reward_size, 1, f"a positive number of held-out images (task {self.name!r})")
        if not isinstance(self.training, TrainingConfig):
            raise ValueError(f"task {self.name!r}: training must be a TrainingConfig, got {type(self.training).__name__}")
        get_metric(self.metric)

    def arrays(self) -> DatasetArrays:
        """The task's dataset (loaded once per process)."""
        return load_dataset(self.dataset) if isinstance(self.dataset, str) else _cached_user_data(self)

    @property
    def num_classes(self) -> int:
        """Number of classes of the dataset."""
        return self.arrays().num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input image."""
        return self.arrays().input_shape

    def build_model(self) -> nn.Module:
        """A freshly initialised (untrained) model for this task."""
        from prune_gym.tasks.models import build_model

        if isinstance(self.model, str):
            return build_model(self.model, num_classes=self.num_classes, in_channels=self.input_shape[0])
        return self.model()

    def splits(self, device: str | torch.device = "cpu") -> Splits:
        """The train / reward / test splits on ``device`` (computed once per process)."""
        return _cached_splits(self).to(device)

    def checkpoint_path(self):
        """Where the trained checkpoint is cached."""
        return checkpoint_path(check_task_name(self.name))

    def pretrain(self, device: str | torch.device = "cpu", epochs: int | None = None, progress: bool = True) -> TrainResult:
        """Train the model from scratch (seeded: same initialisation and batches every time) and cache its checkpoint.

        Raises:
            ValueError: ``epochs`` is not a positive integer, or the model does not fit the data (nothing is written).
        """
        if epochs is not None:
            check_int("epochs", epochs, 1, f"a positive number of training epochs (task {self.name!r}; "
                      "an untrained network is never cached)")
        device = check_device("device", device)
        import torch

        config = self.training if epochs is None else replace(self.training, epochs=epochs)
        _check_fit_once(self)
        torch.manual_seed(self.split_seed)
        model = self.build_model().to(device)
        splits = self.splits(device)
        stats = train(model, splits, config, seed=self.split_seed, progress=progress, description=f"pretrain {self.name}",
                      metric=self.metric)
        result = TrainResult(epochs=config.epochs, seconds=stats.seconds, train_score=stats.train_score,
                             reward_score=evaluate(model, splits.reward_x, splits.reward_y, self.metric),
                             test_score=evaluate(model, splits.test_x, splits.test_y, self.metric))
        save_checkpoint(self.checkpoint_path(), model, {"task": self.name, "model": type(model).__name__, **result.__dict__})
        return result

    def load_model(self, device: str | torch.device = "cpu", *, pretrain: bool | None = None, retrain: bool = False,
                   progress: bool = True) -> nn.Module:
        """The trained model in eval mode on ``device``.

        A missing checkpoint is trained now if ``pretrain`` is True, or if it is
        None and the task pretrains automatically.

        Raises:
            CheckpointMissingError: no checkpoint and no automatic pretraining.
            CheckpointError: the cached checkpoint is corrupted or mismatching.
        """
        device = check_device("device", device)
        path = self.checkpoint_path()
        if retrain or not path.exists():
            if not (retrain or pretrain or (pretrain is None and self.auto_pretrain)):
                raise CheckpointMissingError(f"task {self.name!r} has no trained checkpoint at {path}; "
                                             f"run `prune-gym pretrain {self.name}` first")
            from filelock import FileLock

            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{path}.lock"):  # two processes wanting the same model train it once; the other waits
                if retrain or not path.exists():
                    self.pretrain(device, progress=progress)
        _check_fit_once(self)
        model = self.build_model()
        load_checkpoint(path, model, self.name)
        return model.to(device).eval()


_USER_DATA: dict[str, DatasetArrays] = {}
_SPLITS: dict[tuple[str, int, int], Splits] = {}
_FITTED: set[str] = set()  # tasks whose model was seen to run on their data in this process


def _cached_user_data(task: Task) -> DatasetArrays:
    if task.name not in _USER_DATA:
        arrays = task.dataset()  # type: ignore[operator]
        if not isinstance(arrays, DatasetArrays):
            raise ValueError(f"task {task.name!r}: its data loader returned {type(arrays).__name__}, not DatasetArrays")
        _USER_DATA[task.name] = check_arrays(arrays.x_train, arrays.y_train, arrays.x_test, arrays.y_test, task.name)
    return _USER_DATA[task.name]


def _build(task: Task, arrays: DatasetArrays) -> nn.Module:
    from prune_gym.tasks.models import build_model

    if isinstance(task.model, str):
        return build_model(task.model, num_classes=arrays.num_classes, in_channels=arrays.input_shape[0])
    return task.model()


def check_fit(task: Task, arrays: DatasetArrays) -> None:
    """Refuse a model that cannot be trained on the data: it fails on two of its images, outputs the wrong shape,
    or fewer classes than the labels need.

    Raises:
        ValueError: one line naming the task and the mismatch.
    """
    import torch

    model = _build(task, arrays)
    images, labels = arrays.x_train[:2], arrays.y_train
    try:
        with torch.no_grad():
            output = model.eval()(images)
    except Exception as error:  # a user's model raises whatever its layers raise
        first = (str(error).strip().splitlines() or [""])[0]
        channels, height, width = arrays.input_shape
        raise ValueError(f"task {task.name!r}: the model fails on the data's images of shape (N, {channels}, {height}, {width}) "
                         f"({type(error).__name__}: {first}); make its input layers fit the images' channels and size") from None
    per_pixel = labels.dim() == 3
    expected = f"({len(images)}, classes, {labels.shape[1]}, {labels.shape[2]})" if per_pixel else f"({len(images)}, classes)"
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if not isinstance(output, torch.Tensor) or output.dim() != (4 if per_pixel else 2) or output.shape[0] != len(images) or (
            per_pixel and tuple(output.shape[2:]) != tuple(labels.shape[1:])):
        what = "per-pixel labels" if per_pixel else "one label per image"
        raise ValueError(f"task {task.name!r}: the model outputs {shape} for {len(images)} images but the data has {what}; "
                         f"expected logits of shape {expected}")
    if output.shape[1] < arrays.num_classes:
        raise ValueError(f"task {task.name!r}: the labels go up to {arrays.num_classes - 1} but the model outputs "
                         f"{output.shape[1]} classes; give the model {arrays.num_classes} outputs, or relabel the data "
                         f"from 0 to {output.shape[1] - 1}")


def _check_fit_once(task: Task) -> None:
    if task.name not in _FITTED:
        check_fit(task, task.arrays())
        _FITTED.add(task.name)


def _cached_splits(task: Task) -> Splits:
    key = (task.name, task.reward_size, task.split_seed)
    if key not in _SPLITS:
        _SPLITS[key] = make_splits(task.arrays(), task.reward_size, task.split_seed)
    return _SPLITS[key]


def _as_task(name: str, value: Any) -> Task:
    """A task found as ``module:attribute`` must be a :class:`Task`."""
    if not isinstance(value, Task):
        raise ValueError(f"task {name!r} is a {type(value).__name__}, not a prune_gym Task; name a registered task "
                         "(`prune-gym list tasks`) or a module:attribute holding a Task (e.g. what register_task returns)")
    return value


_TASKS: Registry[Task] = Registry("task", adapt=_as_task)


def _add(task: Task, overwrite: bool = False) -> Task:
    _TASKS.register(task.name, task, overwrite)
    _USER_DATA.pop(task.name, None)
    _FITTED.discard(task.name)
    for key in [k for k in _SPLITS if k[0] == task.name]:
        del _SPLITS[key]
    return task


def _stack(dataset: Any, name: str, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of an indexable (image tensor, label) dataset as two tensors."""
    import torch

    if len(dataset) == 0:
        raise ValueError(f"task {name!r}: the {part} dataset is empty; give it labelled images")
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack([torch.as_tensor(image) for image in images]).float(), torch.as_tensor(labels)


def _as_data_source(data: Any, name: str) -> DataSource:
    """A loader of the task's data; tensors given directly are validated now, loaders on first use."""
    if isinstance(data, str) or callable(data):
        return data
    if isinstance(data, DatasetArrays):
        data = (data.x_train, data.y_train, data.x_test, data.y_test)
    if isinstance(data, Sequence) and len(data) == 4:
        x_train, y_train, x_test, y_test = data
        arrays = check_arrays(x_train, y_train, x_test, y_test, name)
        return _InMemory(arrays)
    if isinstance(data, Sequence) and len(data) == 2:
        train_set, test_set = data
        return lambda: DatasetArrays(*_stack(train_set, name, "train"), *_stack(test_set, name, "test"))
    raise TypeError("data must be a dataset name, DatasetArrays, (x_train, y_train, x_test, y_test) tensors, "
                    f"or a (train_dataset, test_dataset) pair; got {type(data).__name__}")


@dataclass(frozen=True, eq=False)
class _InMemory:
    """The loader of data given as tensors (already checked): the model is checked against it at registration."""

    arrays: DatasetArrays

    def __call__(self) -> DatasetArrays:
        return self.arrays


def check_model(model: Any, name: str) -> None:
    """Refuse, before any training, a model prune_gym cannot prune: not a module, unsupported layers, non-finite weights.

    Raises:
        ValueError: one line naming the task and the offending layer.
    """
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ValueError(f"task {name!r}: the model factory returned {type(model).__name__}, not a torch nn.Module")
    for layer_name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv3d, nn.ConvTranspose2d)):
            raise ValueError(f"task {name!r}: layer {layer_name} is a {type(module).__name__}; prune_gym prunes nn.Conv2d networks")
        if isinstance(module, nn.Conv2d) and module.groups != 1 and not module.groups == module.in_channels == module.out_channels:
            raise ValueError(f"task {name!r}: layer {layer_name} is a grouped conv (groups={module.groups}); only dense "
                             "(groups=1) and depthwise (groups=in_channels) convs are supported")
    for parameter_name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if isinstance(tensor, (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)):
            continue
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"task {name!r}: the model's {parameter_name} holds NaN or inf; initialise it with finite values")
    output_layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not output_layers:
        raise ValueError(f"task {name!r}: the model has no nn.Linear or nn.Conv2d layer; prune_gym prunes CNNs")


def register_task(
    name: str,
    model: ModelSource,
    data: Any,
    *,
    reward_size: int = 1000,
    auto_pretrain: bool = False,
    overwrite: bool = False,
    description: str = "",
    metric: str = "accuracy",
    **training: Any,
) -> Task:
    """Register a task from any model and data; returns it.

    Args:
        name: the task's name (``gymnasium.make(..., task=name)``).
        model: a zoo model name, an ``nn.Module`` (deep-copied for every build) or a factory.
        data: a dataset name, a ``DatasetArrays``, ``(x_train, y_train, x_test, y_test)`` tensors
            (images already normalised, NCHW) or a ``(train_dataset, test_dataset)`` pair of
            indexable datasets yielding ``(image_tensor, label)``.
        reward_size: training images held out as the reward split.
        auto_pretrain: train on first use instead of asking for ``prune-gym pretrain``.
        metric: the registered metric the task is scored by (``accuracy``; ``mean-iou`` for segmentation).
        training: fields of :class:`TrainingConfig` (epochs, batch_size, lr, optimizer, ...).

    Raises:
        ValueError: one line naming the task and the problem: an invalid name, bad data or training options, a
            model prune_gym cannot prune, or (data given as tensors now, else at first pretraining or load) a model
            that does not run on the images or has fewer outputs than the labels need.
    """
    from torch import nn

    check_task_name(name)
    try:
        config = TrainingConfig.from_options(training)
    except ValueError as error:
        raise ValueError(f"task {name!r}: {error}") from None

    factory: str | Callable[[], nn.Module]
    if isinstance(model, nn.Module):
        template = model

        def copy_template() -> nn.Module:
            return copy.deepcopy(template)

        factory = copy_template
    elif isinstance(model, str) or callable(model):
        factory = model
    else:
        raise TypeError(f"model must be a zoo name, an nn.Module or a factory, got {type(model).__name__}")
    from prune_gym.tasks.models import build_model

    check_model(factory() if callable(factory) else build_model(factory), name)
    task = Task(name, factory, _as_data_source(data, name), reward_size, config, auto_pretrain,
                description=description, metric=metric)
    if isinstance(task.dataset, _InMemory):
        check_fit(task, task.dataset.arrays)
    _add(task, overwrite)
    if isinstance(task.dataset, _InMemory):
        _FITTED.add(task.name)
    return task


def list_tasks() -> list[str]:
    """Names of all registered tasks."""
    return _TASKS.names()


def get_task(task: str | Task) -> Task:
    """A task by name, by ``module:attribute`` (a :class:`Task` object), or the task itself.

    Raises:
        ValueError: an unknown name (the message lists the registered ones), a name that cannot name a file in
            the cache, or a ``module:attribute`` that is not a Task.
    """
    if isinstance(task, Task):
        return task
    if isinstance(task, str) and ":" not in task and task not in _TASKS:
        check_task_name(task)
    return _TASKS.get(task)


_LENET: dict[str, Any] = dict(optimizer="adam", lr=2e-3, weight_decay=0.0, batch_size=64)
_CIFAR: dict[str, Any] = dict(optimizer="sgd", lr=0.1, weight_decay=5e-4, batch_size=128, augment=True)
for _task in (
    Task("lenet5-digits", "lenet5", "digits", 300, TrainingConfig(epochs=30, **_LENET), auto_pretrain=True,
         description="LeNet-5 on scikit-learn's 8x8 digits resized to 28x28 (embedded, trains in seconds)"),
    Task("cnn5-digits", "cnn5", "digits", 300, TrainingConfig(epochs=15, **_LENET), auto_pretrain=True,
         description="CNN5 (5 conv groups, a wide last layer) on the embedded digits: a search beats uniform pruning"),
    Task("lenet5-mnist", "lenet5", "mnist", 5000, TrainingConfig(epochs=4, **_LENET), auto_pretrain=True,
         description="LeNet-5 on MNIST"),
    Task("lenet5-fashion-mnist", "lenet5", "fashion-mnist", 5000, TrainingConfig(epochs=10, **_LENET),
         description="LeNet-5 on Fashion-MNIST"),
    Task("resnet20-slim-fashion-mnist", "resnet20-slim", "fashion-mnist", 5000, TrainingConfig(epochs=10, **_CIFAR),
         description="half-width ResNet-20 (residual coupling, 12 groups, 7.8 M MACs) on Fashion-MNIST, 10,000 test images"),
    Task("plain20-slim-fashion-mnist", "plain20-slim", "fashion-mnist", 5000, TrainingConfig(epochs=10, **_CIFAR),
         description="half-width Plain-20 (no shortcuts, 19 independent groups) on Fashion-MNIST, 10,000 test images"),
    Task("resnet20-cifar10", "resnet20", "cifar10", 5000, TrainingConfig(epochs=160, **_CIFAR), description="ResNet-20 on CIFAR-10"),
    Task("resnet56-cifar10", "resnet56", "cifar10", 5000, TrainingConfig(epochs=160, **_CIFAR), description="ResNet-56 on CIFAR-10"),
    Task("vgg16-cifar10", "vgg16", "cifar10", 5000, TrainingConfig(epochs=160, **_CIFAR), description="VGG-16-BN on CIFAR-10"),
    Task("resnet20-cifar10-subset", "resnet20", "cifar10-subset", 1000, TrainingConfig(epochs=30, **_CIFAR),
         description="ResNet-20 on the 8068-image CIFAR-10 subset"),
    Task("fcn-mnist-scenes", "fcn", "mnist-scenes", 1000, TrainingConfig(epochs=6, **{**_LENET, "lr": 5e-3, "batch_size": 32}),
         metric="mean-iou",
         description="FCN segmentation of two-digit MNIST scenes (32x32, 11 classes), scored by mean IoU"),
    Task("vgg16-slim-cifar10-subset", "vgg16-slim", "cifar10-subset", 1000, TrainingConfig(epochs=30, **{**_CIFAR, "lr": 0.05}),
         description="quarter-width VGG-16-BN (13 plain groups, 20 M MACs) on the 8068-image CIFAR-10 subset"),
    Task("resnet56-slim-cifar10-subset", "resnet56-slim", "cifar10-subset", 1000, TrainingConfig(epochs=30, **_CIFAR),
         description="half-width ResNet-56 (a deep residual network, 31 M MACs) on the 8068-image CIFAR-10 subset"),
    Task("vgg16-cifar10-subset", "vgg16", "cifar10-subset", 1000, TrainingConfig(epochs=30, **{**_CIFAR, "lr": 0.05}),
         description="VGG-16-BN on the 8068-image CIFAR-10 subset"),
):
    _add(_task)
