"""Training, evaluation and checkpoints of task models (tensors in memory, no DataLoader)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prune_gym.errors import CheckpointError
from prune_gym.storage import write_atomic
from prune_gym.tasks.metrics import get_metric
from prune_gym.validation import check_int

if TYPE_CHECKING:  # torch is imported where it runs: `prune-gym list` starts without it
    import torch
    from torch import nn

    from prune_gym.tasks.data import Splits

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of a task's training: SGD with momentum and a cosine schedule, or Adam."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = False


@dataclass(frozen=True)
class TrainResult:
    """What a task's pretraining achieved; scores are the task's metric, in [0, 1]."""

    epochs: int
    seconds: float
    train_score: float
    reward_score: float
    test_score: float


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crop and horizontal flip (the CIFAR standard), on tensors."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = batch.shape
    padded = F.pad(batch, (4, 4, 4, 4))
    dx, dy = torch.randint(0, 9, (2, n), generator=generator).tolist()
    crops = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1).to(batch.device), crops.flip(3), crops)


@dataclass(frozen=True)
class TrainStats:
    """What one call of :func:`train` did: wall time, batches run, the metric on the training batches of its last epoch."""

    seconds: float
    steps: int
    train_score: float


def train(
    model: nn.Module,
    splits: Splits,
    config: TrainingConfig,
    *,
    seed: int = 0,
    steps: int | None = None,
    progress: bool = True,
    description: str = "train",
    metric: str = "accuracy",
) -> TrainStats:
    """Train ``model`` in place on ``splits.train_*`` only.

    ``config.epochs`` epochs of shuffled batches of cross-entropy (per pixel for
    segmentation), or only the first ``steps`` batches (a short recovery); the
    cosine schedule spans the batches actually run.
    Leaves the model in eval mode. Neither the reward nor the test split is touched.
    """
    if steps is not None:
        steps = check_int("steps", steps, 1, "a positive number of training batches, or None for whole epochs")
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    elif config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay, nesterov=True)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adam'")
    n = len(splits.train_y)
    total = config.epochs * math.ceil(n / config.batch_size)
    if steps is not None:
        total = min(total, steps)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=total, desc=description, disable=not progress, unit="batch")
    spec = get_metric(metric)
    done = 0
    epoch_statistics: torch.Tensor | None = None
    while done < total:
        order = torch.randperm(n, generator=generator)
        epoch_statistics = None
        for begin in range(0, n, config.batch_size):
            if done == total:
                break
            index = order[begin:begin + config.batch_size]
            x, y = splits.train_x[index].to(device), splits.train_y[index].to(device)
            if config.augment:
                x = _augment(x, generator)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            batch_statistics = spec.statistics(logits.detach(), y)
            epoch_statistics = batch_statistics if epoch_statistics is None else epoch_statistics + batch_statistics
            done += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    train_score = spec.final(epoch_statistics) if epoch_statistics is not None else 0.0
    return TrainStats(time.perf_counter() - start, done, train_score)


def recovery_config(config: TrainingConfig, **overrides: Any) -> TrainingConfig:
    """The task's training config for recovering a pruned model: a tenth of its learning rate, then ``overrides``."""
    return replace(config, **{"lr": config.lr * 0.1, **overrides})


def recover(model: nn.Module, splits: Splits, config: TrainingConfig, *, epochs: int | None = None, steps: int | None = None,
              seed: int = 0, progress: bool = True, metric: str = "accuracy", **overrides: Any) -> TrainStats:
    """Recover a (pruned) model: the task's optimiser at a tenth of its learning rate (:func:`recovery_config`).

    ``epochs`` whole epochs (default: the config's), or only ``steps`` batches; ``overrides`` replace config fields (``lr=...``).
    """
    if epochs is not None:
        overrides["epochs"] = check_int("epochs", epochs, 1, "a positive number of fine-tuning epochs")
    return train(model, splits, recovery_config(config, **overrides), seed=seed, steps=steps, progress=progress,
                 description="recovery", metric=metric)


def save_checkpoint(path: Path, model: nn.Module, metadata: dict[str, Any]) -> None:
    """Write ``{"format", "state_dict", "metadata"}`` atomically (:func:`prune_gym.storage.write_atomic`)."""
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state, "metadata": metadata}, handle))


def load_checkpoint(path: Path, model: nn.Module, task_name: str) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (``weights_only=True``: no code runs); returns its metadata.

    Raises:
        CheckpointError: unreadable, written for another task, or keys/shapes that do not fit ``model``.
    """
    import torch

    fix = f"delete it or run `prune-gym pretrain {task_name} --retrain`"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        state, metadata = payload["state_dict"], payload["metadata"]
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is corrupted or not a prune_gym checkpoint ({type(error).__name__}); {fix}") from error
    if not isinstance(metadata, dict) or not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not a prune_gym checkpoint (its metadata or state is not a dict); {fix}")
    if metadata.get("task") != task_name:
        raise CheckpointError(f"checkpoint {path} was written for task {metadata.get('task')!r}, not {task_name!r}; {fix}")
    broken = [name for name, tensor in state.items()
              if not isinstance(tensor, torch.Tensor) or (tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()))]
    if broken:
        raise CheckpointError(f"checkpoint {path} holds non-finite or non-tensor weights ({broken[0]}...); {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not match the model of task {task_name!r} ({first}); {fix}") from error
    return metadata
