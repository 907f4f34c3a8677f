"""prune_gym: a reinforcement-learning gym for CNN filter pruning.

``import prune_gym`` registers the gymnasium environments ``FilterSelect-v0``
and ``LayerRate-v0`` (``gymnasium.make("prune_gym:LayerRate-v0")`` works
without the import) and nothing heavier: the public API below is imported on
first use, so the ``prune-gym`` command starts fast. It covers tasks (dataset +
model + checkpoint), the episode state, the reward, observation, criterion,
model, dataset, metric and benchmark-suite registries, and the pruning core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import prune_gym.envs  # registers the environments with gymnasium

__version__ = "0.2.0"

_PUBLIC = {
    "prune_gym.envs": ["FilterSelectEnv", "LayerRateEnv", "PruningEnv", "environment_class", "list_environments"],
    "prune_gym.state": ["EpisodeState"],
    "prune_gym.observations": ["Observation", "get_observation", "list_observations", "register_observation"],
    "prune_gym.rewards": ["get_reward", "list_rewards", "register_reward"],
    "prune_gym.pruning": ["ImportanceRanking", "PrunableNetwork", "count_macs_params", "filter_importance",
                          "list_importance_criteria", "register_importance"],
    "prune_gym.tasks": ["Task", "build_model", "get_metric", "get_task", "list_datasets", "list_metrics", "list_models", "list_tasks",
                        "register_dataset", "register_metric", "register_model", "register_task"],
    "prune_gym.envs.sampler": ["PairSampler"],
    "prune_gym.benchmark.suites": ["Entry", "Recovery", "Suite", "Transfer", "get_suite", "list_suites", "register_suite"],
    "prune_gym.runs": ["RunFolder", "RunSpec"],
    "prune_gym.search": ["resume_search", "run_search"],
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}

if TYPE_CHECKING:
    from prune_gym.benchmark.suites import Entry, Recovery, Suite, Transfer, get_suite, list_suites, register_suite
    from prune_gym.envs import FilterSelectEnv, LayerRateEnv, PruningEnv, environment_class, list_environments
    from prune_gym.envs.sampler import PairSampler
    from prune_gym.observations import Observation, get_observation, list_observations, register_observation
    from prune_gym.pruning import (
        ImportanceRanking,
        PrunableNetwork,
        count_macs_params,
        filter_importance,
        list_importance_criteria,
        register_importance,
    )
    from prune_gym.rewards import get_reward, list_rewards, register_reward
    from prune_gym.runs import RunFolder, RunSpec
    from prune_gym.search import resume_search, run_search
    from prune_gym.state import EpisodeState
    from prune_gym.tasks import (
        Task,
        build_model,
        get_metric,
        get_task,
        list_datasets,
        list_metrics,
        list_models,
        list_tasks,
        register_dataset,
        register_metric,
        register_model,
        register_task,
    )


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prune_gym' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = sorted(_WHERE)
