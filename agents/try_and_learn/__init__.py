"""The try-and-learn filter-pruning agents (Huang et al., arXiv 1801.07365) and the search over their drop allowance."""

from .agent import FilterPolicy, TryAndLearnAgent
from .budget import DropAllowanceProbe, fit_drop_allowance, learn_decision

__all__ = ["DropAllowanceProbe", "FilterPolicy", "TryAndLearnAgent", "fit_drop_allowance", "learn_decision"]
