"""Tasks: datasets, the model zoo, training and checkpoints, and the task registry."""

from prune_gym.tasks.data import DatasetArrays, Splits, list_datasets, load_dataset, make_splits, register_dataset
from prune_gym.tasks.metrics import evaluate, get_metric, list_metrics, register_metric
from prune_gym.tasks.models import build_model, default_input_shape, list_models, register_model
from prune_gym.tasks.registry import Task, get_task, list_tasks, register_task
from prune_gym.tasks.training import TrainingConfig, TrainResult, TrainStats, fine_tune, recovery_config, train

__all__ = [
    "DatasetArrays",
    "Splits",
    "Task",
    "TrainResult",
    "TrainStats",
    "TrainingConfig",
    "build_model",
    "default_input_shape",
    "evaluate",
    "fine_tune",
    "get_metric",
    "get_task",
    "list_datasets",
    "list_metrics",
    "list_models",
    "list_tasks",
    "load_dataset",
    "make_splits",
    "recovery_config",
    "register_dataset",
    "register_metric",
    "register_model",
    "register_task",
    "train",
]
