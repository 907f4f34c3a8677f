"""prune_gym's gymnasium environments: the shared episode loop and one file per environment."""

from prune_gym.envs.base import PruningEnv
from prune_gym.envs.filter_select import FilterSelectEnv
from prune_gym.envs.layer_rate import LayerRateEnv

__all__ = ["FilterSelectEnv", "LayerRateEnv", "PruningEnv"]
