"""The benchmark protocol: versioned suites, scored runs over seeds, rliable aggregates, leaderboards, proxy fidelity."""

from prune_gym.benchmark.suites import Entry, Recovery, Suite, Transfer, get_suite, list_suites, register_suite

__all__ = ["Entry", "Recovery", "Suite", "Transfer", "get_suite", "list_suites", "register_suite"]
