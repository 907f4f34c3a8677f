"""The base class of prune_gym's agents: one constructor signature, one space check, one episode loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

import prune_gym
from prune_gym.agent_api import check_action_space


class BaseAgent:
    """Shared parts of the ``prune_gym.agent_api.Agent`` protocol.

    Subclasses declare ``supported_action_spaces`` (and, if they only make sense
    on some environments, ``supported_environments``); the constructor checks
    the environment against the declaration, once, with one message.

    Args:
        env: a (possibly wrapped) prune_gym environment.
        seed: seeds the agent's randomness (and the env's first reset).
        hyperparameters: what a declaration depending on hyper-parameters needs (adapters).
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)
    supported_environments: ClassVar[tuple[str, ...] | None] = None
    transfers: ClassVar[bool] = False
    """True for an agent that learns a policy: its saved state, loaded on another environment with the same spaces,
    acts there (the transfer track, ``prune_gym.agent_api.transfers``)."""
    metrics_callback: Callable[[dict[str, float]], None] | None = None
    """Set by the search loop: receives the agent's training metrics (losses, entropy, ...) as they are logged."""

    @classmethod
    def supported_action_spaces_for(cls, hyperparameters: dict[str, Any]) -> tuple[type[gym.Space], ...]:
        """The supported action spaces given the hyper-parameters (the class attribute unless overridden)."""
        return cls.supported_action_spaces

    def __init__(self, env: gym.Env, seed: int | None = None, hyperparameters: dict[str, Any] | None = None) -> None:
        if not isinstance(env.unwrapped, prune_gym.PruningEnv):
            raise TypeError(f"{type(self).__name__} needs a prune_gym environment, got {type(env.unwrapped).__name__}")
        check_action_space(type(self), env, hyperparameters)
        self.env = env
        self._pruning_env: prune_gym.PruningEnv = env.unwrapped
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.episode_length = env.unwrapped.network.num_groups
        self._first_reset = True

    @property
    def pruning_env(self) -> prune_gym.PruningEnv:
        """The unwrapped environment (network, ranking, budget, current state)."""
        return self._pruning_env

    def reset_env(self) -> np.ndarray:
        """Reset the environment (seeded on the first call) and return the observation."""
        observation, _ = self.env.reset(seed=self.seed if self._first_reset else None)
        self._first_reset = False
        return observation

    def run_episode(self, policy: Callable[[np.ndarray, int], Any]) -> list[float]:
        """Play one episode with ``policy(observation, group_index)``; returns the rewards of its steps."""
        observation, rewards, done, group_index = self.reset_env(), [], False, 0
        while not done:
            observation, reward, terminated, truncated, _ = self.env.step(policy(observation, group_index))
            rewards.append(float(reward))
            done, group_index = terminated or truncated, group_index + 1
        return rewards

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Hand training metrics to :attr:`metrics_callback` (nothing happens when none is set)."""
        if self.metrics_callback is not None:
            self.metrics_callback(metrics)

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` more episodes of search."""
        raise NotImplementedError

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for the group about to be decided."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The agent's JSON-serialisable state (its random generator and first-reset flag by default)."""
        return {"rng": self.rng.bit_generator.state, "first_reset": self._first_reset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        self._first_reset = state["first_reset"]

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.state_dict()))

    def load(self, path: str | Path) -> None:
        """Restore the state written by :meth:`save`."""
        self.load_state_dict(json.loads(Path(path).read_text()))
