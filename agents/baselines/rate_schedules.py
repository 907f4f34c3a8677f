"""Baseline agents for LayerRate-v0: each plays a per-group pruning-rate schedule.

* :class:`UniformAgent`: the same rate for every group, the largest kept width
  that meets the MACs budget (found by bisection on the analytic MACs count).
* :class:`GlobalRankingAgent`: the one-step pruning of the ICTAI 2019 paper:
  importance is normalised per group (divided by its maximum) and ranked
  globally; one threshold, raised until the budget is met, sets every group's
  rate adaptively.
* :class:`RandomSearchAgent`: uniformly random rates in [0, max_rate] each
  episode, projected onto the MACs budget by :class:`RateBudget` (the episode
  recorder keeps the best).

:class:`RateSearchAgent` is the episode loop every black-box search over rate
vectors shares (random search here, CMA-ES and TPE in ``agents.blackbox``):
one proposed vector per episode, one reward evaluation each. Filters inside a
group are ranked by the environment's ``criterion``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import prune_gym
from agents.common import BaseAgent


def _bisect(meets_budget: Callable[[float], bool], low: float, high: float, iterations: int = 40) -> float:
    """Smallest x in [low, high] with ``meets_budget(x)`` (monotone), or ``high``."""
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (low, middle) if meets_budget(middle) else (middle, high)
    return high


class RateBudget:
    """Per-group pruning rates (fractions pruned) against an environment's MACs budget.

    A rate vector is *feasible* when its pruned network keeps at most
    ``macs_budget`` of the original MACs (analytic MACs of the keep-masks the
    env's ``criterion`` ranking gives) and every group keeps at least its
    ``max_rate`` floor, ceil(C x (1 - max_rate)) of its C channels. Played on
    LayerRate-v0, a feasible vector is never touched by the env's budget
    clipping: that clipping assumes every later group keeps only its floor, so
    with the floors respected it only sees MACs <= the final, budget-meeting ones.
    """

    def __init__(self, env: prune_gym.PruningEnv) -> None:
        self.env = env
        self.channels = np.array([group.num_channels for group in env.network.groups])
        self.min_keep = np.array([max(1, int(np.ceil(c * (1.0 - env.max_rate)))) for c in self.channels])

    def kept_counts(self, rates: np.ndarray) -> np.ndarray:
        """Channels each group keeps when LayerRate-v0 plays ``rates`` (as float32 actions): round(C x (1 - rate))."""
        played = np.asarray(rates, dtype=np.float32).astype(np.float64)
        return np.array([int(round(c * (1.0 - rate))) for c, rate in zip(self.channels, played)])

    def keep_masks(self, counts: np.ndarray) -> list[np.ndarray]:
        """Keep-masks keeping each group's ``counts`` most important channels under the env's criterion."""
        env = self.env
        return [env.ranking.keep_most_important(g, int(n), env.criterion) for g, n in enumerate(counts)]

    def meets_budget(self, counts: np.ndarray) -> bool:
        """Whether keeping ``counts`` channels per group keeps at most ``macs_budget`` of the original MACs."""
        network = self.env.network
        return network.macs_params(self.keep_masks(counts))[0] <= self.env.macs_budget * network.original_macs

    def is_feasible(self, rates: np.ndarray) -> bool:
        """Whether ``rates`` meets the budget with every group at or above its ``max_rate`` floor."""
        counts = self.kept_counts(rates)
        return bool(np.all(counts >= self.min_keep)) and self.meets_budget(counts)

    def check_reachable(self) -> None:
        """Raise ValueError when pruning every group by ``max_rate`` still misses the budget."""
        if not self.meets_budget(self.min_keep):
            raise ValueError(f"macs_budget={self.env.macs_budget} cannot be met with every group pruned by at most "
                             f"max_rate={self.env.max_rate}: raise macs_budget or max_rate (--env-arg max_rate=0.9)")

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
        if rates.shape != self.channels.shape or not np.all((rates >= 0) & (rates <= self.env.max_rate)):
            raise ValueError(f"expected {len(self.channels)} pruning rates in [0, max_rate={self.env.max_rate}] "
                             f"(one per group), got {rates!r}")
        if self.is_feasible(rates):
            return rates
        kept = self.kept_counts(rates) / self.channels

        def counts(shrink: float) -> np.ndarray:
            return np.maximum(self.min_keep, np.round(self.channels * (1.0 - shrink) * kept).astype(int))

        return 1.0 - counts(_bisect(lambda shrink: self.meets_budget(counts(shrink)), 0.0, 1.0)) / self.channels


class ScheduleAgent(BaseAgent):
    """An agent that plays ``self.rates`` (one pruned fraction per group) every episode."""

    supported_environments = ("LayerRate-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.budget = RateBudget(self.pruning_env)
        self.rates = np.zeros(self.episode_length)

    def _meets_budget_at(self, rates: np.ndarray) -> bool:
        return self.budget.meets_budget(self.budget.kept_counts(rates))

    def play(self) -> float:
        """Play ``self.rates`` for one episode; returns the episode's return."""
        return sum(self.run_episode(lambda observation, group_index: self.predict(observation)))

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            self.play()

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        group_index = min(self.pruning_env.state.group_index, self.episode_length - 1)
        return np.array([self.rates[group_index]], dtype=np.float32)


class UniformAgent(ScheduleAgent):
    """The same pruning rate for every group: the smallest one that meets the MACs budget."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.rates = np.full(self.episode_length, _bisect(lambda rate: self._meets_budget_at(np.full(self.episode_length, rate)), 0.0, 1.0))


class GlobalRankingAgent(ScheduleAgent):
    """ICTAI 2019 one-step pruning: one global threshold on group-normalised importance."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        ranking = self.pruning_env.ranking.scores(self.pruning_env.criterion)
        scores = [s / s.max() if s.max() > 0 else np.ones_like(s) for s in ranking]

        def rates_at(threshold: float) -> np.ndarray:
            return np.array([1 - max(int((s > threshold).sum()), 1) / len(s) for s in scores])

        self.rates = rates_at(_bisect(lambda threshold: self._meets_budget_at(rates_at(threshold)), 0.0, 1.0))


class RateSearchAgent(ScheduleAgent):
    """Black-box search over rate vectors: each episode plays one proposal, projected onto the budget.

    Subclasses propose a vector in [0, max_rate]^groups (:meth:`propose`) and
    learn from its episode's return (:meth:`observe`, with the vector as
    proposed, before projection). Every episode is one reward evaluation, and
    the env's budget clipping never acts (:class:`RateBudget`). ``predict``
    plays the latest episode's (projected) rates.

    Raises:
        ValueError: the budget cannot be met within the env's ``max_rate``.
    """

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.budget.check_reachable()
        self.max_rate = self.pruning_env.max_rate

    def propose(self) -> np.ndarray:
        """The next rate vector to try, in [0, max_rate]^groups."""
        raise NotImplementedError

    def observe(self, proposed: np.ndarray, episode_return: float) -> None:
        """Learn from the return of the episode that played ``proposed`` (projected)."""

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            proposed = self.propose()
            self.rates = self.budget.project(proposed)
            self.observe(proposed, self.play())

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rates": self.rates.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rates = np.array(state["rates"])


class RandomSearchAgent(RateSearchAgent):
    """Uniformly random rates in [0, the env's max_rate] for every group, new each episode, projected onto the budget."""

    def propose(self) -> np.ndarray:
        return self.rng.uniform(0.0, self.max_rate, self.episode_length)
