"""Any stable-baselines3 algorithm as a prune_gym agent (``--agent sb3:PPO``)."""

from .adapter import SB3Agent, algorithm_class, quiet_logger

__all__ = ["SB3Agent", "algorithm_class", "quiet_logger"]
