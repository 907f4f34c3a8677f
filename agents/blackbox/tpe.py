"""TPE over the per-group pruning rates: Optuna's ``TPESampler`` through the ask-tell interface."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution

from prune_gym.validation import check_bool, check_int

from ..baselines import RateSearchAgent
from ..common import random_state_to_json, set_random_state_from_json


class TPEAgent(RateSearchAgent):
    """Optuna's tree-structured Parzen estimator on the vector of per-group pruned fractions in [0, max_rate].

    Each episode asks one trial (one ``rate_<group>`` parameter per group),
    plays it projected onto the MACs budget and tells the study the episode's
    return (maximised). Optuna's own log lines are silenced to warnings.

    Args:
        env: a LayerRate-v0 environment (continuous actions).
        seed: seeds the sampler (and the env's first reset).
        n_startup_trials: episodes of uniform random rates before TPE models them (Optuna's default 10: 10% of a
            100-episode search).
        n_ei_candidates: candidates drawn from the good-trials density per proposal, the one with the best
            expected improvement is played (Optuna's default 24).
        multivariate: model the groups' rates jointly (Optuna's default for one objective) rather than one by one.
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)
    supported_environments = ("LayerRate-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None, n_startup_trials: int = 10, n_ei_candidates: int = 24,
                 multivariate: bool = True) -> None:
        super().__init__(env, seed)
        n_startup_trials = check_int("n_startup_trials", n_startup_trials, 1)
        n_ei_candidates = check_int("n_ei_candidates", n_ei_candidates, 1)
        multivariate = check_bool("multivariate", multivariate)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions: dict[str, BaseDistribution] = {
            f"rate_{g}": FloatDistribution(0.0, self.max_rate) for g in range(self.episode_length)}
        self._new_sampler = partial(optuna.samplers.TPESampler, seed=seed, n_startup_trials=n_startup_trials,
                                    n_ei_candidates=n_ei_candidates, multivariate=multivariate)
        self.study = self._new_study()
        self.trial: optuna.Trial | None = None

    def _new_study(self) -> optuna.Study:
        return optuna.create_study(sampler=self._new_sampler(), direction="maximize")

    def propose(self) -> np.ndarray:
        self.trial = self.study.ask(self.distributions)
        return np.array([self.trial.params[name] for name in self.distributions])

    def observe(self, proposed: np.ndarray, episode_return: float) -> None:
        assert self.trial is not None
        self.study.tell(self.trial, episode_return)
        self.trial = None

    def _generators(self) -> list[np.random.RandomState]:
        """The sampler's random generators: TPE's own and that of its random start-up sampler."""
        sampler = self.study.sampler
        assert isinstance(sampler, optuna.samplers.TPESampler)
        return [sampler._rng.rng, sampler._random_sampler._rng.rng]

    def state_dict(self) -> dict[str, Any]:
        """The finished trials (rates and returns) and the sampler's random generators, as JSON."""
        return {
            **super().state_dict(),
            "trials": [{"params": trial.params, "value": trial.value} for trial in self.study.trials],
            "sampler_rngs": [random_state_to_json(generator) for generator in self._generators()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay the finished trials into a fresh study and restore the sampler's generators."""
        super().load_state_dict(state)
        self.study = self._new_study()
        for trial in state["trials"]:
            self.study.add_trial(optuna.trial.create_trial(params=trial["params"], distributions=self.distributions, value=trial["value"]))
        for generator, generator_state in zip(self._generators(), state["sampler_rngs"]):
            set_random_state_from_json(generator, generator_state)
