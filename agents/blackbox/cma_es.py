"""CMA-ES over the per-group pruning rates: ``cmaes.CMA`` asked and told one episode at a time."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from cmaes import CMA

from prune_gym.validation import check_int, check_real

from ..baselines import RateSearchAgent
from ..common import random_state_to_json, set_random_state_from_json


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype)}
    return value.item() if isinstance(value, np.generic) else value


def _from_json(value: Any) -> Any:
    return np.array(value["ndarray"], dtype=value["dtype"]) if isinstance(value, dict) else value


class CMAESAgent(RateSearchAgent):
    """CMA-ES (Hansen's, ``cmaes.CMA``) on the vector of per-group pruned fractions, bounded to [0, max_rate].

    Each episode asks one vector, plays it projected onto the MACs budget and
    keeps the episode's return; after ``population_size`` episodes the
    generation is told (CMA minimises, so it gets minus the return). A
    generation may span several ``learn`` calls and checkpoints.

    Args:
        env: a LayerRate-v0 environment (continuous actions).
        seed: seeds CMA's sampling (and the env's first reset).
        population_size: episodes per generation (default cmaes': 4 + floor(3 ln groups): 6 for LeNet-5's 2
            groups, 16 generations in 100 episodes; 11 for ResNet-20's 12 groups, 36 generations in 400).
        sigma0: initial step size in pruned-fraction units (default max_rate / 4, a quarter of the box).
        mean0: initial pruned fraction of every group (default max_rate / 2, the box's centre).
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)
    supported_environments = ("LayerRate-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None, population_size: int | None = None, sigma0: float | None = None,
                 mean0: float | None = None) -> None:
        super().__init__(env, seed)
        sigma0 = self.max_rate / 4 if sigma0 is None else sigma0
        mean0 = self.max_rate / 2 if mean0 is None else mean0
        if population_size is not None:
            population_size = check_int("population_size", population_size, 2, "an integer >= 2 (or None for cmaes' default)")
        sigma0 = check_real("sigma0", sigma0, 0.0, math.inf, low_open=True, high_open=True,
                            expected="a positive step size in pruned-fraction units, e.g. 0.2")
        mean0 = check_real("mean0", mean0, 0.0, self.max_rate, expected=f"a pruned fraction in [0, max_rate={self.max_rate}]")
        self.optimizer = CMA(mean=np.full(self.episode_length, mean0), sigma=sigma0,
                             bounds=np.tile([0.0, self.max_rate], (self.episode_length, 1)), seed=seed,
                             population_size=population_size)
        self.evaluated: list[tuple[np.ndarray, float]] = []
        """The current generation's (proposed rates, minus the return) so far."""

    def propose(self) -> np.ndarray:
        return self.optimizer.ask()

    def observe(self, proposed: np.ndarray, episode_return: float) -> None:
        self.evaluated.append((proposed, -episode_return))
        if len(self.evaluated) == self.optimizer.population_size:
            returns = [-value for _, value in self.evaluated]
            self.optimizer.tell(self.evaluated)
            self.evaluated = []
            self.log_metrics({"train/generation_best_return": max(returns), "train/generation_mean_return": float(np.mean(returns))})

    def state_dict(self) -> dict[str, Any]:
        """Everything CMA holds (mean, sigma, covariance and its eigen-decomposition, evolution paths, generation
        counter, ...), its random generator and the current generation's evaluated solutions (not yet told), as JSON."""
        return {
            **super().state_dict(),
            "cma": {name: _to_json(value) for name, value in self.optimizer.__getstate__().items()},
            "cma_rng": random_state_to_json(self.optimizer._rng),
            "evaluated": [[x.tolist(), value] for x, value in self.evaluated],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer.__setstate__({name: _from_json(value) for name, value in state["cma"].items()})
        set_random_state_from_json(self.optimizer._rng, state["cma_rng"])
        self.evaluated = [(np.array(x), value) for x, value in state["evaluated"]]
