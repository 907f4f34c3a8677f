"""The yardsticks every RL agent is compared against: uniform, one-step global ranking, random search.

``RateBudget`` (budget-feasible rate vectors) and ``RateSearchAgent`` (one
projected rate vector per episode) are shared with ``agents.blackbox``.
"""

from agents.baselines.rate_schedules import GlobalRankingAgent, RandomSearchAgent, RateBudget, RateSearchAgent, UniformAgent

__all__ = ["GlobalRankingAgent", "RandomSearchAgent", "RateBudget", "RateSearchAgent", "UniformAgent"]
