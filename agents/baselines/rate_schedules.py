"""Baseline agents for LayerRate-v0: each plays a per-group pruning-rate schedule.

* :class:`UniformAgent`: the same rate for every group, the largest kept width
  that meets the MACs budget (found by bisection on the analytic MACs count).
* :class:`GlobalRankingAgent`: the one-step pruning of the ICTAI 2019 paper:
  importance is normalised per group (divided by its maximum) and ranked
  globally; one threshold, raised until the budget is met, sets every group's
  rate adaptively.
* :class:`RandomSearchAgent`: uniformly random rates in [0, max_rate] each
  episode (the episode recorder keeps the best).

Filters inside a group are ranked by the environment's ``criterion``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from agents.common import BaseAgent


def _bisect(meets_budget: Callable[[float], bool], low: float, high: float, iterations: int = 40) -> float:
    """Smallest x in [low, high] with ``meets_budget(x)`` (monotone), or ``high``."""
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (low, middle) if meets_budget(middle) else (middle, high)
    return high


class ScheduleAgent(BaseAgent):
    """An agent that plays ``self.rates`` (one pruned fraction per group) every episode."""

    supported_environments = ("LayerRate-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        self.rates = np.zeros(self.episode_length)

    def _keep_for_rates(self, rates: np.ndarray) -> list[np.ndarray]:
        env = self.pruning_env
        return [env.ranking.keep_most_important(g, round(group.num_channels * (1 - rate)), env.criterion)
                for g, (group, rate) in enumerate(zip(env.network.groups, rates))]

    def _meets_budget(self, keep: list[np.ndarray]) -> bool:
        network = self.pruning_env.network
        return network.macs_params(keep)[0] <= self.pruning_env.macs_budget * network.original_macs

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            self.run_episode(lambda observation, group_index: self.predict(observation))

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        group_index = min(self.pruning_env.state.group_index, self.episode_length - 1)
        return np.array([self.rates[group_index]], dtype=np.float32)


class UniformAgent(ScheduleAgent):
    """The same pruning rate for every group: the smallest one that meets the MACs budget."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        uniform = lambda rate: self._meets_budget(self._keep_for_rates(np.full(self.episode_length, rate)))  # noqa: E731
        self.rates = np.full(self.episode_length, _bisect(uniform, 0.0, 1.0))


class GlobalRankingAgent(ScheduleAgent):
    """ICTAI 2019 one-step pruning: one global threshold on group-normalised importance."""

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        super().__init__(env, seed)
        ranking = self.pruning_env.ranking.scores(self.pruning_env.criterion)
        scores = [s / s.max() if s.max() > 0 else np.ones_like(s) for s in ranking]

        def rates_at(threshold: float) -> np.ndarray:
            return np.array([1 - max(int((s > threshold).sum()), 1) / len(s) for s in scores])

        threshold = _bisect(lambda t: self._meets_budget(self._keep_for_rates(rates_at(t))), 0.0, 1.0)
        self.rates = rates_at(threshold)


class RandomSearchAgent(ScheduleAgent):
    """Uniformly random rates in [0, the env's max_rate] for every group, new each episode."""

    def learn(self, episodes: int) -> None:
        for _ in range(episodes):
            self.rates = self.rng.uniform(0.0, self.pruning_env.max_rate, self.episode_length)
            super().learn(1)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rates": self.rates.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rates = np.array(state["rates"])
