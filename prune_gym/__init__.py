"""prune_gym: a reinforcement-learning gym for CNN filter pruning.

``import prune_gym`` registers the gymnasium environments ``FilterSelect-v0``
and ``LayerRate-v0`` (``gymnasium.make("prune_gym:LayerRate-v0")`` works
without the import). The public API lives here: tasks (dataset + model +
checkpoint), the reward and observation registries, and the pruning core.
"""

import gymnasium as _gym

from prune_gym.envs import FilterSelectEnv, LayerRateEnv, PruningEnv
from prune_gym.observations import Observation, list_observations, register_observation
from prune_gym.pruning import PrunableNetwork, count_macs_params, filter_importance, list_importance_criteria
from prune_gym.rewards import RewardContext, get_reward, list_rewards, register_reward
from prune_gym.tasks import Task, build_model, get_task, list_models, list_tasks, register_task

__version__ = "0.1.0"

ENV_IDS = ("FilterSelect-v0", "LayerRate-v0")
for _env_id, _entry_point in zip(ENV_IDS, ("prune_gym.envs:FilterSelectEnv", "prune_gym.envs:LayerRateEnv")):
    if _env_id not in _gym.registry:
        _gym.register(id=_env_id, entry_point=_entry_point, disable_env_checker=False)

__all__ = [
    "ENV_IDS",
    "FilterSelectEnv",
    "LayerRateEnv",
    "Observation",
    "PrunableNetwork",
    "PruningEnv",
    "RewardContext",
    "Task",
    "build_model",
    "count_macs_params",
    "filter_importance",
    "get_reward",
    "get_task",
    "list_importance_criteria",
    "list_models",
    "list_observations",
    "list_rewards",
    "list_tasks",
    "register_observation",
    "register_reward",
    "register_task",
]
