"""The try-and-learn policy-gradient pruner (Huang et al., arXiv 1801.07365)."""

from agents.try_and_learn.agent import TryAndLearnAgent

__all__ = ["TryAndLearnAgent"]
