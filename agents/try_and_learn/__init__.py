"""The try-and-learn filter-pruning agents (Huang et al., arXiv 1801.07365) and the search over their drop allowance."""

from agents.try_and_learn.agent import FilterPolicy, TryAndLearnAgent
from agents.try_and_learn.budget import DropAllowanceProbe, fit_drop_allowance, learn_decision

__all__ = ["DropAllowanceProbe", "FilterPolicy", "TryAndLearnAgent", "fit_drop_allowance", "learn_decision"]
