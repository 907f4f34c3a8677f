"""Moving a task's pretrained checkpoint between machines, so a submission and the leaderboard use the same network.

A seeded ``prune-gym pretrain`` on another machine, or with another thread
count, does not give bit-identical weights, and every benchmark number depends
on them: results record the checkpoint's SHA-256, and these functions export
and import the exact file. An imported file keeps its bytes (and so its
SHA-256); its digest is recorded beside it in the cache (``<task>.pt.sha256``)
and checked at every load, like a pretrained one's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prune_gym.errors import CheckpointMissingError
from prune_gym.storage import write_atomic
from prune_gym.tasks.registry import Task, get_task
from prune_gym.tasks.training import load_checkpoint, verify_sha256, write_checkpoint_file


def _cached_bytes(definition: Task) -> tuple[bytes, str]:
    """The task's cached checkpoint and its SHA-256, checked against the digest recorded when it was written or imported."""
    path = definition.checkpoint_path()
    if not path.exists():
        raise CheckpointMissingError(f"task {definition.name!r} has no checkpoint at {path}; "
                                     f"run `prune-gym pretrain {definition.name}` or import one")
    data = path.read_bytes()
    return data, verify_sha256(path, definition.name, digest=hashlib.sha256(data).hexdigest())


def task_checkpoint_sha256(task: str | Task) -> str:
    """SHA-256 of the task's cached checkpoint, checked against the digest recorded when it was written or imported.

    Raises:
        CheckpointMissingError: the task has no checkpoint yet.
        CheckpointError: the file changed since its digest was recorded.
    """
    return _cached_bytes(get_task(task))[1]


def export_checkpoint(task: str | Task, file: str | Path) -> str:
    """Copy the task's checkpoint to ``file`` (atomically) after checking its recorded digest; returns its SHA-256."""
    definition = get_task(task)
    target = Path(file)
    if not target.parent.is_dir():
        raise ValueError(f"cannot write {target}: folder {target.parent} does not exist")
    data, digest = _cached_bytes(definition)
    write_atomic(target, data)
    return digest


def import_checkpoint(task: str | Task, file: str | Path) -> str:
    """Check that ``file`` is an intact checkpoint of ``task`` (weights_only, finite, the right shapes, the digests it
    carries), then install its exact bytes with their SHA-256 recorded beside them; returns the SHA-256.

    Raises:
        CheckpointError: the file is not an intact checkpoint of this task's model.
    """
    definition = get_task(task)
    source = Path(file)
    if not source.is_file():
        raise ValueError(f"no checkpoint file at {source}")
    fix = f"it was not imported; export it again from an intact copy (`prune-gym checkpoint export {definition.name} FILE`)"
    load_checkpoint(source, definition.build_model(), definition.name, fix=fix)
    return write_checkpoint_file(definition.checkpoint_path(), source.read_bytes())
