"""Training, evaluation and checkpoints of task models (tensors in memory, no DataLoader).

A checkpoint is ``{"format", "state_dict", "metadata"}`` saved by ``torch.save`` and read back with
``weights_only=True``. Two digests guard it against bit rot and tampering:

* ``<file>.sha256`` beside it (``sha256sum`` format) records the SHA-256 of the file as written
  (``save_checkpoint``: ``prune-gym pretrain``) or installed (``prune-gym checkpoint import``); every load
  compares it with the file.
* ``metadata["weights_sha256"]``, the SHA-256 of the weights (names, dtypes, shapes and bytes), travels
  inside the file, so a copy is checked on import before it replaces anything.

A checkpoint written by an older prune_gym has neither. Its digest is recorded beside it on its first
load from the cache, with a note (trust on first use): later changes to the file are then detected.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prune_gym.errors import CheckpointError
from prune_gym.paths import checkpoint_path
from prune_gym.storage import file_sha256, write_atomic
from prune_gym.tasks.metrics import get_metric
from prune_gym.validation import check_bool, check_choice, check_int, check_real

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

    def __post_init__(self) -> None:
        """Refuse, in one line, a configuration that would train nothing or diverge (``epochs=0``, ``lr=nan``)."""
        check_int("epochs", self.epochs, 1, "a positive number of training epochs")
        check_int("batch_size", self.batch_size, 1, "a positive batch size")
        check_real("lr", self.lr, 0.0, math.inf, low_open=True, expected="a positive finite learning rate")
        check_choice("optimizer", self.optimizer, ("sgd", "adam"))
        check_real("momentum", self.momentum, 0.0, 1.0, high_open=True)
        check_real("weight_decay", self.weight_decay, 0.0, math.inf, expected="a finite weight decay >= 0")
        check_bool("augment", self.augment)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TrainingConfig:
        """A config from keyword options; unknown names are a one-line ``ValueError`` listing the known ones."""
        known = [field.name for field in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; the options are {known}")
        return cls(**options)


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

    from prune_gym.progress import progress_bar

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if config.optimizer == "adam":
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    elif config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose 'sgd' or 'adam'")
    n = len(splits.train_y)
    total = config.epochs * math.ceil(n / config.batch_size)
    if steps is not None:
        total = min(total, steps)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total, 1))
    start = time.perf_counter()
    model.train()
    bar = progress_bar(total, description, "batch", enabled=progress)
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


DIGEST_SUFFIX = ".sha256"
_HEX = re.compile(r"[0-9a-f]{64}")


def digest_path(path: str | Path) -> Path:
    """The file beside checkpoint ``path`` that records its SHA-256: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def recorded_sha256(path: str | Path) -> str | None:
    """The SHA-256 recorded beside checkpoint ``path``, or None if none is.

    Raises:
        CheckpointError: the digest file is damaged.
    """
    record = digest_path(path)
    if not record.exists():
        return None
    if not record.is_file():  # a FIFO would block the read forever
        raise CheckpointError(f"{record} is not a regular file; delete it and load the checkpoint {Path(path).name} again "
                              "to record its digest anew")
    text = record.read_text(errors="replace")
    digest = (text.split() or [""])[0].lower()
    if not _HEX.fullmatch(digest):
        raise CheckpointError(f"{record} is damaged (not a SHA-256 in `sha256sum` format); delete it and load the checkpoint "
                              f"{Path(path).name} again to record its digest anew")
    return digest


def _default_fix(task_name: str) -> str:
    return (f"run `prune-gym pretrain {task_name} --retrain`, or re-import a good copy with "
            f"`prune-gym checkpoint import {task_name} FILE`")


def verify_sha256(path: str | Path, task_name: str, fix: str | None = None, digest: str | None = None) -> str:
    """The SHA-256 of checkpoint ``path`` (or ``digest``, that of bytes read from it), checked against the digest
    recorded beside it, if any.

    Raises:
        CheckpointError: the file no longer has the digest recorded when it was written or imported.
    """
    digest = digest or file_sha256(path)
    recorded = recorded_sha256(path)
    if recorded is not None and recorded != digest:
        raise CheckpointError(f"checkpoint {path} was modified or corrupted after it was written: its SHA-256 {digest[:16]}... is "
                              f"not the {recorded[:16]}... recorded in {digest_path(path).name}; {fix or _default_fix(task_name)}")
    return digest


def weights_sha256(state: dict[str, Any]) -> str:
    """SHA-256 of a state dict: every tensor's name, dtype, shape and bytes, by name."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state entry {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_checkpoint_file(path: str | Path, data: bytes) -> str:
    """Install checkpoint bytes at ``path`` with their SHA-256 beside them; returns the digest.

    The old digest file goes first, then the checkpoint and its new digest are each written atomically:
    a crash in between leaves a checkpoint without a digest file (recorded again at its next load),
    never one with a wrong digest.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    digest_path(path).unlink(missing_ok=True)
    write_atomic(path, data)
    write_atomic(digest_path(path), f"{digest}  {path.name}\n")
    return digest


def save_checkpoint(path: Path, model: nn.Module, metadata: dict[str, Any]) -> str:
    """Write ``{"format", "state_dict", "metadata"}`` atomically, the weights' digest in the metadata and the
    file's SHA-256 beside it (:func:`write_checkpoint_file`); returns the file's SHA-256."""
    import io

    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": state,
                "metadata": {**metadata, "weights_sha256": weights_sha256(state)}}, buffer)
    return write_checkpoint_file(path, buffer.getvalue())


def load_checkpoint(path: Path, model: nn.Module, task_name: str, *, fix: str | None = None) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (``weights_only=True``: no code runs); returns its metadata.

    The file is checked against the SHA-256 recorded beside it and its weights against the digest in its
    metadata, where these exist. A task's cached checkpoint without a digest file (an interrupted write,
    or an older prune_gym) gets one now, with a note on stderr when nothing vouched for it.

    Args:
        fix: what the user should do about a bad file (default: retrain the task or re-import its checkpoint).

    Raises:
        CheckpointError: unreadable, modified since it was written, written for another task, or keys/shapes
            that do not fit ``model``.
    """
    import torch

    fix = fix or _default_fix(task_name)
    if not Path(path).is_file():  # a folder, or a FIFO that would block the read forever
        raise CheckpointError(f"checkpoint {path} is not a regular file; {fix}")
    digest = verify_sha256(path, task_name, fix)
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
    expected = metadata.get("weights_sha256")
    if expected is not None and weights_sha256(state) != expected:
        raise CheckpointError(f"checkpoint {path} was modified or corrupted: its weights do not match the SHA-256 in its "
                              f"metadata; {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {path} does not match the model of task {task_name!r} ({first}); {fix}") from error
    if recorded_sha256(path) is None and Path(path).resolve() == checkpoint_path(task_name).resolve():
        _record_on_first_load(Path(path), digest, vouched=expected is not None)
    return metadata


def _record_on_first_load(path: Path, digest: str, vouched: bool) -> None:
    """Record the digest of a cached checkpoint that has none (a read-only cache is left as it is)."""
    try:
        write_atomic(digest_path(path), f"{digest}  {path.name}\n")
    except OSError:
        return
    if not vouched:
        print(f"note: checkpoint {path} has no recorded SHA-256 (written by an older prune_gym); recorded {digest[:16]}... in "
              f"{digest_path(path).name}: later changes to the file will be refused", file=sys.stderr)
