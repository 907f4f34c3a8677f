"""Adapter: a stable-baselines3 algorithm driven by episodes instead of timesteps."""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import stable_baselines3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file

from ..common import BaseAgent, global_random_state, set_global_random_state

_PROBE_SPACES: tuple[gym.Space, ...] = (gym.spaces.Box(0.0, 1.0, (1,)), gym.spaces.Discrete(2), gym.spaces.MultiBinary(2),
                                        gym.spaces.MultiDiscrete([2, 2]))
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


class MetricsWriter(KVWriter):
    """An SB3 logger output that hands every dump's numbers (``train/actor_loss``, ``rollout/ep_rew_mean``, ...) to ``send``.

    It writes no file and nothing on stdout; other values SB3 records (videos, figures, text) are left out.
    """

    def __init__(self, send: Callable[[dict[str, float]], None]) -> None:
        self.send = send

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        numbers_only = {key: float(value) for key, value in key_values.items() if isinstance(value, numbers.Real)}
        if numbers_only:
            self.send(numbers_only)

    def close(self) -> None:
        """Nothing to close."""


def quiet_logger(send: Callable[[dict[str, float]], None] | None = None) -> Logger:
    """An SB3 logger that writes no file (no /tmp/SB3-* folders) and nothing on stdout; with ``send``, it hands
    each dump's numbers to it (:class:`MetricsWriter`)."""
    return Logger(folder=None, output_formats=[MetricsWriter(send)] if send is not None else [])


def sb3_algorithms() -> dict[str, type[BaseAlgorithm]]:
    """stable-baselines3's algorithm classes by name."""
    return {name: cls for name in dir(stable_baselines3) if isinstance(cls := getattr(stable_baselines3, name), type)
            and issubclass(cls, BaseAlgorithm)}


def algorithm_class(algorithm: str) -> type[BaseAlgorithm]:
    """The stable-baselines3 algorithm class named ``algorithm``; unknown names list the known ones."""
    known = sb3_algorithms()
    if algorithm not in known:
        raise ValueError(f"unknown stable-baselines3 algorithm {algorithm!r}; choose one of {sorted(known)}")
    return known[algorithm]


class _Probe(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (1,))

    def __init__(self, action_space: gym.Space) -> None:
        self.action_space = action_space


@cache
def _sb3_action_spaces(algorithm: str) -> tuple[type[gym.Space], ...]:
    """The action-space classes SB3's ``algorithm`` accepts, as its own constructor checks them."""
    cls = algorithm_class(algorithm)
    supported = []
    for space in _PROBE_SPACES:
        try:
            extra: dict[str, Any] = {"buffer_size": 1} if issubclass(cls, OffPolicyAlgorithm) else {}
            cls("MlpPolicy", _Probe(space), verbose=0, **extra)
        except AssertionError:
            continue
        supported.append(type(space))
    return tuple(supported)


class SB3Agent(BaseAgent):
    """``algorithm`` (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``DDPG``, ``DQN``, ...) from stable-baselines3 on a prune_gym env.

    An episode is ``num_groups`` timesteps; ``learn(episodes)`` trains for
    ``episodes x num_groups`` more timesteps. On-policy algorithms collect
    rollouts of ``n_steps`` (default: 4 episodes), so they may run up to that
    many extra steps. The supported action spaces are those SB3's algorithm
    accepts. Other keyword arguments go to the algorithm's constructor.
    ``save`` writes no pickle: parameters (SB3's zip, read back with
    ``weights_only``), the replay buffer as ``.npz``, counters and random state as JSON.
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiBinary,
                                                            gym.spaces.MultiDiscrete)

    @classmethod
    def supported_action_spaces_for(cls, hyperparameters: dict[str, Any]) -> tuple[type[gym.Space], ...]:
        return _sb3_action_spaces(hyperparameters.get("algorithm", "PPO"))

    @classmethod
    def algorithms(cls) -> dict[str, str]:
        """The algorithms ``sb3:ALGO`` accepts, each with a one-line description (from stable-baselines3's docstring)."""
        return {name: f"stable-baselines3's {(algorithm.__doc__ or name).strip().splitlines()[0].rstrip('.')}"
                for name, algorithm in sb3_algorithms().items()}

    def __init__(self, env: gym.Env, seed: int | None = None, algorithm: str = "PPO", policy: str = "MlpPolicy", **kwargs: Any) -> None:
        cls = algorithm_class(algorithm)
        super().__init__(env, seed, {"algorithm": algorithm})
        if issubclass(cls, OnPolicyAlgorithm):
            kwargs.setdefault("n_steps", 4 * self.episode_length)
            if "batch_size" in cls.__init__.__code__.co_varnames:
                kwargs.setdefault("batch_size", kwargs["n_steps"])
        self.model = self._build(cls, policy, seed, kwargs)
        self.model.set_logger(quiet_logger(self.log_metrics))

    def _build(self, cls: type[BaseAlgorithm], policy: str, seed: int | None, kwargs: dict[str, Any]) -> BaseAlgorithm:
        return cls(policy, self.env, seed=seed, verbose=0, **kwargs)

    def learn(self, episodes: int) -> None:
        """Train ``episodes x num_groups`` more timesteps; SB3's metrics reach :meth:`log_metrics` after every episode
        (off-policy) or rollout (on-policy)."""
        self.model.learn(total_timesteps=episodes * self.episode_length, reset_num_timesteps=False, log_interval=1)

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.model.predict(observation, deterministic=deterministic)[0]

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        model = self.model
        return {**super().state_dict(), "num_timesteps": model.num_timesteps, "episode_num": model._episode_num,
                "n_updates": model._n_updates, "action_space_rng": model.action_space.np_random.bit_generator.state,
                "global_random": global_random_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        model = self.model
        model.num_timesteps, model._episode_num, model._n_updates = state["num_timesteps"], state["episode_num"], state["n_updates"]
        model.action_space.np_random.bit_generator.state = state["action_space_rng"]
        model._last_obs = None  # learn() resets the environment, as the uninterrupted run's auto-reset did
        set_global_random_state(state["global_random"])

    def save(self, path: str | Path) -> None:
        """Parameters (``<path>.zip``), replay buffer (``<path>.buffer.npz``), counters and random state (``<path>.json``)."""
        path = Path(path)
        self.model.save(path.with_suffix(".zip"))
        buffer = getattr(self.model, "replay_buffer", None)
        if isinstance(buffer, ReplayBuffer):
            size = buffer.buffer_size if buffer.full else buffer.pos
            arrays = {name: getattr(buffer, name)[:size] for name in _BUFFER_ARRAYS if getattr(buffer, name, None) is not None}
            with open(path.with_suffix(".buffer.npz"), "wb") as handle:
                np.savez(handle, pos=buffer.pos, full=buffer.full, **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.state_dict()))

    def load(self, path: str | Path) -> None:
        path = Path(path)
        _, params, variables = load_from_zip_file(path.with_suffix(".zip"), device=self.model.device, load_data=False)
        self.model.set_parameters(params, exact_match=True)
        for name, tensor in (variables or {}).items():
            if tensor is not None:
                target: Any = self.model
                for part in name.split("."):
                    target = getattr(target, part)
                target.data.copy_(tensor.data)
        buffer = getattr(self.model, "replay_buffer", None)
        if isinstance(buffer, ReplayBuffer):
            with np.load(path.with_suffix(".buffer.npz"), allow_pickle=False) as archive:
                for name in _BUFFER_ARRAYS:
                    if name in archive.files:
                        getattr(buffer, name)[: len(archive[name])] = archive[name]
                buffer.pos, buffer.full = int(archive["pos"]), bool(archive["full"])
        self.load_state_dict(json.loads(path.with_suffix(".json").read_text()))

