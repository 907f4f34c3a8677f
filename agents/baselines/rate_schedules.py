"""Baseline agents for LayerRate-v0: each plays a per-group pruning-rate schedule.

* :class:`UniformAgent`: the same rate for every group, the largest kept width
  that meets the budget (found by bisection on the analytic MACs count); with
  ``filled``, channels given back one at a time while the budget still holds
  (one common rate undershoots: every group rounds down at once).
* :class:`GlobalRankingAgent`: the one-step pruning of the ICTAI 2019 paper:
  importance is normalised per group (divided by its maximum) and ranked
  globally; one threshold, raised until the budget is met, sets every group's
  rate adaptively.
* :class:`RandomSearchAgent`: uniformly random rates in [0, max_rate] each
  episode, projected onto the MACs budget by :class:`RateBudget` (the episode
  recorder keeps the best).

:class:`RateSearchAgent` is the episode loop every black-box search over rate
vectors shares (random search here, CMA-ES and TPE in ``prune_gym_agents.blackbox``):
one proposed vector per episode, one reward evaluation each. Filters inside a
group are ranked by the environment's ``criterion``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from prune_gym.pruning import bisect

from ..common import BaseAgent


class ScheduleAgent(BaseAgent):
    """An agent that plays ``self.rates`` (one pruned fraction per group) every episode."""

    supported_environments = ("LayerRate-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.budget = self.pruning_env.rate_budget()
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
    """The same pruning rate for every group: the smallest one that meets the budget; ``filled``: then the budget used
    up, one channel at a time to the group keeping the smallest fraction (``RateBudget.uniform_counts``; the
    baseline of suites with ``filled_uniform``, cpu-v1 on)."""

    def __init__(self, env: gym.Env, seed: int | None = None, filled: bool = False) -> None:
        super().__init__(env, seed)
        self.rates = self.budget.uniform_rates()
        if filled:
            self.rates = 1.0 - self.budget.uniform_counts(filled=True) / np.asarray(self.budget.channels, dtype=float)


class GlobalRankingAgent(ScheduleAgent):
    """ICTAI 2019 one-step pruning: one global threshold on group-normalised importance."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        ranking = self.pruning_env.ranking.scores(self.pruning_env.criterion)
        scores = [s / s.max() if s.max() > 0 else np.ones_like(s) for s in ranking]

        def rates_at(threshold: float) -> np.ndarray:
            return np.array([1 - max(int((s > threshold).sum()), 1) / len(s) for s in scores])

        self.rates = rates_at(bisect(lambda threshold: self._meets_budget_at(rates_at(threshold)), 0.0, 1.0))


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
