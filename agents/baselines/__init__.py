"""The yardsticks every RL agent is compared against: uniform, one-step global ranking, random search.

``RateSearchAgent`` (one rate vector per episode, projected onto the budget by
``prune_gym.pruning.RateBudget``) is shared with ``prune_gym_agents.blackbox``.
"""

from .rate_schedules import GlobalRankingAgent, RandomSearchAgent, RateSearchAgent, UniformAgent

__all__ = ["GlobalRankingAgent", "RandomSearchAgent", "RateSearchAgent", "UniformAgent"]
