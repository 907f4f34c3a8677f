"""Moving a task's pretrained checkpoint between machines, so a submission and the leaderboard use the same network.

A seeded ``prune-gym pretrain`` on another machine, or with another thread
count, does not give bit-identical weights, and every benchmark number depends
on them: results record the checkpoint's SHA-256, and these functions export
and import the exact file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prune_gym.errors import CheckpointMissingError
from prune_gym.storage import file_sha256, write_atomic
from prune_gym.tasks.registry import get_task
from prune_gym.tasks.training import load_checkpoint


def task_checkpoint_sha256(task: str) -> str:
    """SHA-256 of the task's cached checkpoint.

    Raises:
        CheckpointMissingError: the task has no checkpoint yet.
    """
    path = get_task(task).checkpoint_path()
    if not path.exists():
        raise CheckpointMissingError(f"task {task!r} has no checkpoint at {path}; run `prune-gym pretrain {task}` or import one")
    return file_sha256(path)


def export_checkpoint(task: str, file: str | Path) -> str:
    """Copy the task's checkpoint to ``file`` (atomically); returns its SHA-256."""
    digest = task_checkpoint_sha256(task)
    target = Path(file)
    if not target.parent.is_dir():
        raise ValueError(f"cannot write {target}: folder {target.parent} does not exist")
    write_atomic(target, get_task(task).checkpoint_path().read_bytes())
    return digest


def import_checkpoint(task: str, file: str | Path) -> str:
    """Check that ``file`` is a valid checkpoint of ``task`` (weights_only, finite, the right shapes), then install it.

    Raises:
        CheckpointError: the file is not a checkpoint of this task's model.
    """
    source = Path(file)
    if not source.is_file():
        raise ValueError(f"no checkpoint file at {source}")
    definition = get_task(task)
    load_checkpoint(source, definition.build_model(), definition.name)
    target = definition.checkpoint_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as handle:
        write_atomic(target, lambda out: shutil.copyfileobj(handle, out))
    return file_sha256(target)
