"""The pruning core: channel groups from torch-pruning's dependency graph, masks, MACs, export, importance."""

from prune_gym.pruning.batchnorm import recalibrate_batchnorm
from prune_gym.pruning.importance import IMPORTANCE_CRITERIA, filter_importance, list_importance_criteria
from prune_gym.pruning.network import ChannelGroup, KeepMask, LayerInfo, PrunableNetwork, classifier_layer, count_macs_params

__all__ = [
    "IMPORTANCE_CRITERIA",
    "ChannelGroup",
    "KeepMask",
    "LayerInfo",
    "PrunableNetwork",
    "classifier_layer",
    "count_macs_params",
    "filter_importance",
    "list_importance_criteria",
    "recalibrate_batchnorm",
]
