"""Budget-feasible per-group pruning rates: what the rate-playing agents, the benchmark and the fidelity study share."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prune_gym.pruning.importance import ImportanceRanking
from prune_gym.pruning.network import PrunableNetwork


def bisect(meets_budget: Callable[[float], bool], low: float, high: float, iterations: int = 40) -> float:
    """Smallest x in [low, high] with ``meets_budget(x)`` (monotone), or ``high``."""
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (low, middle) if meets_budget(middle) else (middle, high)
    return high


class RateBudget:
    """Per-group pruning rates (fractions pruned) against a MACs budget and a parameter budget.

    A rate vector is *feasible* when its pruned network keeps at most
    ``macs_budget`` of the original MACs and ``params_budget`` of the original
    parameters (analytic counts of the keep-masks the
    ``criterion`` ranking gives) and every group keeps at least its
    ``max_rate`` floor, ceil(C x (1 - max_rate)) of its C channels. Played on
    LayerRate-v0, a feasible vector is never touched by the env's budget
    clipping: that clipping assumes every later group keeps only its floor, so
    with the floors respected it only sees MACs <= the final, budget-meeting ones.
    ``PruningEnv.rate_budget()`` builds one from an environment.
    """

    def __init__(self, network: PrunableNetwork, ranking: ImportanceRanking, criterion: str, macs_budget: float,
                 max_rate: float, params_budget: float = 1.0) -> None:
        self.network, self.ranking, self.criterion = network, ranking, criterion
        self.macs_budget, self.max_rate, self.params_budget = macs_budget, max_rate, params_budget
        self.channels = np.array([group.num_channels for group in network.groups])
        self.min_keep = np.array([max(1, int(np.ceil(c * (1.0 - max_rate)))) for c in self.channels])

    def kept_counts(self, rates: np.ndarray) -> np.ndarray:
        """Channels each group keeps when LayerRate-v0 plays ``rates`` (as float32 actions): round(C x (1 - rate))."""
        played = np.asarray(rates, dtype=np.float32).astype(np.float64)
        return np.array([int(round(c * (1.0 - rate))) for c, rate in zip(self.channels, played)])

    def keep_masks(self, counts: np.ndarray) -> list[np.ndarray]:
        """Keep-masks keeping each group's ``counts`` most important channels under the criterion."""
        return [self.ranking.keep_most_important(g, int(n), self.criterion) for g, n in enumerate(counts)]

    def meets_budget(self, counts: np.ndarray) -> bool:
        """Whether keeping ``counts`` channels per group keeps at most ``macs_budget`` of the original MACs and
        ``params_budget`` of the original parameters."""
        macs, params = self.network.macs_params(self.keep_masks(counts))
        return macs <= self.macs_budget * self.network.original_macs and params <= self.params_budget * self.network.original_params

    def uniform_rates(self) -> np.ndarray:
        """The same rate for every group: the smallest that meets the budget (bisection on the analytic MACs)."""
        groups = len(self.channels)
        return np.full(groups, bisect(lambda rate: self.meets_budget(self.kept_counts(np.full(groups, rate))), 0.0, 1.0))

    def uniform_counts(self, filled: bool = False) -> np.ndarray:
        """Channels kept per group by uniform pruning: :meth:`uniform_rates` rounded per group, or with ``filled``,
        then one channel at a time given back to the group keeping the smallest fraction while the budget is still met.

        One common rate undershoots (every group rounds down at once: uniform FPGM keeps 0.174 of the MACs at a 0.2
        budget on resnet20-slim); filled, the kept fractions stay as equal as whole channels allow and the budget is
        used up to the last channel that fits.
        """
        counts = self.kept_counts(self.uniform_rates())
        if not filled:
            return counts
        open_groups = set(np.flatnonzero(counts < self.channels))
        while open_groups:
            group = min(open_groups, key=lambda g: (counts[g] / self.channels[g], g))
            counts[group] += 1
            if not self.meets_budget(counts):
                counts[group] -= 1
                open_groups.discard(group)
            elif counts[group] == self.channels[group]:
                open_groups.discard(group)
        return counts

    def is_feasible(self, rates: np.ndarray) -> bool:
        """Whether ``rates`` meets the budget with every group at or above its ``max_rate`` floor."""
        counts = self.kept_counts(rates)
        return bool(np.all(counts >= self.min_keep)) and self.meets_budget(counts)

    def check_reachable(self) -> None:
        """Raise ValueError when pruning every group by ``max_rate`` still misses the budget."""
        if not self.meets_budget(self.min_keep):
            params = f", params_budget={self.params_budget}" if self.params_budget < 1 else ""
            raise ValueError(f"macs_budget={self.macs_budget}{params} cannot be met with every group pruned by at most "
                             f"max_rate={self.max_rate}: raise the budget or max_rate (--env-arg max_rate=0.9)")

    def project(self, rates: np.ndarray) -> np.ndarray:
        """The feasible rate vector closest to ``rates`` along a common shrink of the kept fractions.

        A feasible ``rates`` is returned unchanged. Otherwise every group's kept
        fraction 1 - rate is multiplied by the largest common factor s in [0, 1]
        (bisection on the analytic MACs) whose channel counts
        max(floor, round(C x s x (1 - rate))) meet the budget, so the proposal's
        relative allocation between groups is kept; the result is the rates
        1 - n / C of those counts. Needs :meth:`check_reachable` to hold.
        """
        rates = np.asarray(rates, dtype=np.float64)
        if rates.shape != self.channels.shape or not np.all((rates >= 0) & (rates <= self.max_rate)):
            raise ValueError(f"expected {len(self.channels)} pruning rates in [0, max_rate={self.max_rate}] "
                             f"(one per group), got {rates!r}")
        if self.is_feasible(rates):
            return rates
        kept = self.kept_counts(rates) / self.channels

        def counts(shrink: float) -> np.ndarray:
            return np.maximum(self.min_keep, np.round(self.channels * (1.0 - shrink) * kept).astype(int))

        return 1.0 - counts(bisect(lambda shrink: self.meets_budget(counts(shrink)), 0.0, 1.0)) / self.channels
