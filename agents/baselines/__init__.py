"""The yardsticks every RL agent is compared against: uniform, one-step global ranking, random search."""

from agents.baselines.rate_schedules import GlobalRankingAgent, RandomSearchAgent, UniformAgent

__all__ = ["GlobalRankingAgent", "RandomSearchAgent", "UniformAgent"]
