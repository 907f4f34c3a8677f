"""The pruning core: channel groups from torch-pruning's dependency graph, masks, MACs, export, importance."""

from prune_gym.pruning.batchnorm import recalibrate_batchnorm
from prune_gym.pruning.budget import RateBudget, bisect
from prune_gym.pruning.importance import (
    ImportanceRanking,
    UndefinedImportanceError,
    filter_importance,
    get_importance,
    list_importance_criteria,
    register_importance,
)
from prune_gym.pruning.network import ChannelGroup, ChannelMap, KeepMask, LayerInfo, PrunableNetwork, count_macs_params, output_layer

__all__ = [
    "ChannelGroup",
    "ChannelMap",
    "ImportanceRanking",
    "KeepMask",
    "LayerInfo",
    "PrunableNetwork",
    "RateBudget",
    "UndefinedImportanceError",
    "bisect",
    "count_macs_params",
    "filter_importance",
    "get_importance",
    "list_importance_criteria",
    "output_layer",
    "recalibrate_batchnorm",
    "register_importance",
]
