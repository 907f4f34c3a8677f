"""Black-box optimisers over the per-group pruning-rate vector: CMA-ES (``cmaes``) and TPE (Optuna).

What a user would run instead of RL: every episode plays one rate vector,
projected onto the MACs budget (``prune_gym.pruning.RateBudget``), and tells the
optimiser the episode's return. One episode is one reward evaluation, as for
every other agent.
"""

from .cma_es import CMAESAgent
from .tpe import TPEAgent

__all__ = ["CMAESAgent", "TPEAgent"]
