"""Tasks: datasets, the model zoo, training and checkpoints, and the task registry."""

from prune_gym.tasks.data import DatasetArrays, Splits, list_datasets, load_dataset, make_splits
from prune_gym.tasks.models import build_model, default_input_shape, list_models
from prune_gym.tasks.registry import Task, get_task, list_tasks, register_task
from prune_gym.tasks.training import TrainingConfig, TrainResult, evaluate, finetune, fit, recovery_config, train

__all__ = [
    "DatasetArrays",
    "Splits",
    "Task",
    "TrainResult",
    "TrainingConfig",
    "build_model",
    "default_input_shape",
    "evaluate",
    "finetune",
    "fit",
    "recovery_config",
    "get_task",
    "list_datasets",
    "list_models",
    "list_tasks",
    "load_dataset",
    "make_splits",
    "register_task",
    "train",
]
