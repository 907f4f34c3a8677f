"""Adapter: a stable-baselines3 algorithm driven by episodes instead of timesteps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.common import BaseAgent


def quiet_logger() -> Logger:
    """An SB3 logger that writes nothing (no /tmp/SB3-* folders, no stdout)."""
    return Logger(folder=None, output_formats=[])


class SB3Agent(BaseAgent):
    """``algorithm`` (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``DDPG``, ...) from stable-baselines3 on a prune_gym env.

    An episode is ``num_groups`` timesteps, so ``learn(episodes)`` trains for
    ``episodes x num_groups`` timesteps. On-policy algorithms collect rollouts
    of ``n_steps`` (default: 4 episodes), so they may run up to that many extra steps.
    Other keyword arguments go to the algorithm's constructor.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, algorithm: str = "PPO", policy: str = "MlpPolicy", **kwargs: Any) -> None:
        super().__init__(env, seed)
        cls = getattr(stable_baselines3, algorithm, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseAlgorithm)):
            known = sorted(n for n in dir(stable_baselines3) if isinstance(getattr(stable_baselines3, n), type)
                           and issubclass(getattr(stable_baselines3, n), BaseAlgorithm))
            raise ValueError(f"unknown stable-baselines3 algorithm {algorithm!r}; choose one of {known}")
        if issubclass(cls, OnPolicyAlgorithm):
            kwargs.setdefault("n_steps", 4 * self.episode_length)
            if "batch_size" in cls.__init__.__code__.co_varnames:
                kwargs.setdefault("batch_size", kwargs["n_steps"])
        self.model = self._build(cls, policy, seed, kwargs)
        self.model.set_logger(quiet_logger())

    def _build(self, cls: type[BaseAlgorithm], policy: str, seed: int | None, kwargs: dict[str, Any]) -> BaseAlgorithm:
        return cls(policy, self.env, seed=seed, verbose=0, **kwargs)

    def learn(self, episodes: int) -> None:
        self.model.learn(total_timesteps=episodes * self.episode_length, reset_num_timesteps=False)

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.model.predict(observation, deterministic=deterministic)[0]

    def save(self, path: str | Path) -> None:
        """The algorithm's parameters as SB3's zip archive."""
        self.model.save(path)

    def load(self, path: str | Path) -> None:
        self.model.set_parameters(str(path), exact_match=True)
