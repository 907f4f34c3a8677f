"""The base class of prune_gym's agents: one constructor signature, one episode loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

import prune_gym


class BaseAgent:
    """Shared parts of the ``prune_gym.agent_api.Agent`` protocol.

    Args:
        env: a (possibly wrapped) prune_gym environment.
        seed: seeds the agent's randomness (and the env's first reset).
    """

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        if not isinstance(env.unwrapped, prune_gym.PruningEnv):
            raise TypeError(f"{type(self).__name__} needs a prune_gym environment, got {type(env.unwrapped).__name__}")
        self.env = env
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.episode_length = env.unwrapped.network.num_groups
        self._first_reset = True

    @property
    def pruning_env(self) -> prune_gym.PruningEnv:
        """The unwrapped environment (network, budget, current step)."""
        return self.env.unwrapped

    def reset_env(self) -> np.ndarray:
        """Reset the environment (seeded on the first call) and return the observation."""
        observation, _ = self.env.reset(seed=self.seed if self._first_reset else None)
        self._first_reset = False
        return observation

    def run_episode(self, policy: Callable[[np.ndarray, int], Any]) -> list[float]:
        """Play one episode with ``policy(observation, step)``; returns the rewards of its steps."""
        observation, rewards, done, step = self.reset_env(), [], False, 0
        while not done:
            observation, reward, terminated, truncated, _ = self.env.step(policy(observation, step))
            rewards.append(float(reward))
            done, step = terminated or truncated, step + 1
        return rewards

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` episodes of search."""
        raise NotImplementedError

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for the group about to be decided."""
        raise NotImplementedError

    def save(self, path: str | Path) -> None:
        """Write the agent's state to ``path`` (nothing to save by default)."""
        Path(path).write_text("{}")

    def load(self, path: str | Path) -> None:
        """Restore the state written by :meth:`save`."""
