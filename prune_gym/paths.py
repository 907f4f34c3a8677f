"""Where prune_gym reads data and caches checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The per-user cache: ``$PRUNE_GYM_CACHE``, else the platform's user cache folder for prune_gym."""
    return Path(os.environ.get("PRUNE_GYM_CACHE") or platformdirs.user_cache_dir("prune_gym"))


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$PRUNE_GYM_DATA``, else ``cache_dir()/data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("PRUNE_GYM_DATA") or cache_dir() / "data")


def checkpoint_path(task_name: str) -> Path:
    """The cached checkpoint of a task: ``cache_dir()/checkpoints/<task>.pt``."""
    return cache_dir() / "checkpoints" / f"{task_name}.pt"
