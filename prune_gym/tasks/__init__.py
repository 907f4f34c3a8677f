"""Tasks: datasets, the model zoo, training and checkpoints, and the task registry.

The model zoo (``ModelSpec``, ``build_model``, ``default_input_shape``, ``get_model``,
``list_models``, ``register_model``) defines ``nn.Module`` classes, so it is imported on first
use: listing tasks or datasets does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prune_gym.tasks.data import (
    DatasetArrays,
    DatasetLoader,
    Splits,
    get_dataset_loader,
    list_datasets,
    load_dataset,
    make_splits,
    register_dataset,
)
from prune_gym.tasks.metrics import evaluate, get_metric, list_metrics, register_metric, sample_correctness
from prune_gym.tasks.registry import Task, get_task, list_tasks, register_task
from prune_gym.tasks.training import TrainingConfig, TrainResult, TrainStats, recover, recovery_config, train

if TYPE_CHECKING:
    from prune_gym.tasks.models import ModelSpec, build_model, default_input_shape, get_model, list_models, register_model

_MODEL_ZOO = ("ModelSpec", "build_model", "default_input_shape", "get_model", "list_models", "register_model")


def __getattr__(name: str) -> Any:
    if name in _MODEL_ZOO:
        return getattr(importlib.import_module("prune_gym.tasks.models"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DatasetArrays",
    "DatasetLoader",
    "ModelSpec",
    "Splits",
    "Task",
    "TrainResult",
    "TrainStats",
    "TrainingConfig",
    "build_model",
    "default_input_shape",
    "evaluate",
    "get_dataset_loader",
    "get_metric",
    "get_model",
    "get_task",
    "list_datasets",
    "list_metrics",
    "list_models",
    "list_tasks",
    "load_dataset",
    "make_splits",
    "recover",
    "recovery_config",
    "register_dataset",
    "register_metric",
    "register_model",
    "register_task",
    "sample_correctness",
    "train",
]
