"""Adapter: a stable-baselines3 algorithm driven by episodes instead of timesteps."""

from __future__ import annotations

import json
import math
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
from stable_baselines3.common.logger import KVWriter, Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file

from prune_gym.validation import check_bool, check_int, check_real, invalid

from ..common import BaseAgent, global_random_state, set_global_random_state

_PROBE_SPACES: tuple[gym.Space, ...] = (gym.spaces.Box(0.0, 1.0, (1,)), gym.spaces.Discrete(2), gym.spaces.MultiBinary(2),
                                        gym.spaces.MultiDiscrete([2, 2]))
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _real(low: float, high: float, expected: str, *, low_open: bool = False, high_open: bool = False, schedule: bool = False,
          optional: bool = False) -> Callable[[str, Any], Any]:
    """A check of a real hyper-parameter in an interval (a callable passes where SB3 takes a schedule, None where optional)."""

    def check(name: str, value: Any) -> None:
        if (schedule and callable(value)) or (optional and value is None):
            return
        check_real(name, value, low, high, low_open=low_open, high_open=high_open, expected=expected)

    return check


def _integer(minimum: int, expected: str) -> Callable[[str, Any], Any]:
    return lambda name, value: check_int(name, value, minimum, expected)


def _gradient_steps(name: str, value: Any) -> None:
    if check_int(name, value, -1, "-1 (as many as the rollout's steps) or a positive number of gradient steps") == 0:
        raise invalid(name, value, "-1 (as many as the rollout's steps) or a positive number: 0 would never train")


def _entropy_coefficient(name: str, value: Any) -> None:
    if isinstance(value, str) and value.startswith("auto"):
        return
    check_real(name, value, 0.0, math.inf, high_open=True, expected="an entropy coefficient >= 0 (SAC: or 'auto')")


SB3_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "learning_rate": _real(0.0, math.inf, "a positive learning rate (or a schedule), e.g. 3e-4", low_open=True, high_open=True,
                           schedule=True),
    "gamma": _real(0.0, 1.0, "a discount in [0, 1]"),
    "gae_lambda": _real(0.0, 1.0, "a GAE lambda in [0, 1]"),
    "tau": _real(0.0, 1.0, "a soft target-update rate in (0, 1]", low_open=True),
    "batch_size": _integer(1, "a positive minibatch size"),
    "n_steps": _integer(1, "a positive number of steps"),
    "n_epochs": _integer(1, "a positive number of epochs per update"),
    "buffer_size": _integer(1, "a positive number of transitions"),
    "learning_starts": _integer(0, "a number of steps >= 0 before learning starts"),
    "target_update_interval": _integer(1, "a positive number of steps"),
    "policy_delay": _integer(1, "a positive number of critic updates per actor update"),
    "stats_window_size": _integer(1, "a positive number of episodes"),
    "sde_sample_freq": _integer(-1, "-1 (only at the start of a rollout) or a number of steps >= 0"),
    "gradient_steps": _gradient_steps,
    "exploration_fraction": _real(0.0, 1.0, "a fraction of the training in [0, 1]"),
    "exploration_initial_eps": _real(0.0, 1.0, "a probability in [0, 1]"),
    "exploration_final_eps": _real(0.0, 1.0, "a probability in [0, 1]"),
    "ent_coef": _entropy_coefficient,
    "vf_coef": _real(0.0, math.inf, "a value-loss coefficient >= 0", high_open=True),
    "max_grad_norm": _real(0.0, math.inf, "a positive gradient-norm bound", low_open=True, high_open=True),
    "clip_range": _real(0.0, math.inf, "a positive clipping range (or a schedule), e.g. 0.2", low_open=True, high_open=True,
                        schedule=True),
    "clip_range_vf": _real(0.0, math.inf, "a positive clipping range, a schedule or None", low_open=True, high_open=True,
                           schedule=True, optional=True),
    "target_kl": _real(0.0, math.inf, "a positive KL bound or None", low_open=True, high_open=True, optional=True),
    "target_policy_noise": _real(0.0, math.inf, "a noise scale >= 0", high_open=True),
    "target_noise_clip": _real(0.0, math.inf, "a noise clip >= 0", high_open=True),
    "rms_prop_eps": _real(0.0, math.inf, "a positive epsilon", low_open=True, high_open=True),
    **{flag: check_bool for flag in ("normalize_advantage", "use_sde", "use_sde_at_warmup", "optimize_memory_usage", "use_rms_prop")},
}
"""Range checks of stable-baselines3's numeric hyper-parameters (SB3 takes most of them unchecked: a batch size of 0 or a
negative warm-up would run, silently wrong)."""


def check_sb3_hyperparameters(hyperparameters: dict[str, Any]) -> None:
    """Refuse, in one line, a known SB3 hyper-parameter out of its range (unknown names are SB3's to refuse), and
    ``tensorboard_log``, which SB3 would ignore under the adapter's logger."""
    if "tensorboard_log" in hyperparameters:
        raise ValueError("tensorboard_log is no agent argument here: pass --tensorboard DIR to the search (RunSpec.tensorboard), "
                         "which puts SB3's own logs beside the search's curves (or call SB3Agent.log_to_tensorboard(DIR))")
    for name, value in hyperparameters.items():
        if name in SB3_CHECKS:
            SB3_CHECKS[name](name, value)


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


def quiet_logger(send: Callable[[dict[str, float]], None] | None = None, tensorboard: str | Path | None = None) -> Logger:
    """An SB3 logger that writes nothing on stdout and no file (no /tmp/SB3-* folders) but, with ``tensorboard``, SB3's
    TensorBoard event files in that folder (its ``"tensorboard"`` output format); with ``send``, it hands each dump's
    numbers to it (:class:`MetricsWriter`)."""
    outputs: list[KVWriter] = [MetricsWriter(send)] if send is not None else []
    if tensorboard is not None:
        outputs.append(make_output_format("tensorboard", str(tensorboard)))
    return Logger(folder=None if tensorboard is None else str(tensorboard), output_formats=outputs)


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


def _restore_buffer(buffer: ReplayBuffer, saved: dict[str, np.ndarray], pos: int, full: bool) -> None:
    """Put the transitions a replay buffer saved (its arrays up to its size, its ``pos`` and ``full``) into ``buffer``.

    Into a buffer of the same capacity, exactly as they were (a resumed run continues as an uninterrupted one). A
    buffer sized for another environment (AMC's DDPG holds 100 episodes of the network's length: a transfer to a
    network with fewer groups) gets the newest transitions that fit, oldest first.
    """
    length = len(next(iter(saved.values()))) if saved else 0
    if length <= buffer.buffer_size and (length == buffer.buffer_size or not full):
        for name, values in saved.items():
            getattr(buffer, name)[:length] = values
        buffer.pos, buffer.full = pos, full
        return
    order = np.roll(np.arange(length), -pos) if full else np.arange(length)  # oldest first
    kept = order[-buffer.buffer_size:]
    for name, values in saved.items():
        getattr(buffer, name)[: len(kept)] = values[kept]
    buffer.pos, buffer.full = len(kept) % buffer.buffer_size, len(kept) == buffer.buffer_size


class SB3Agent(BaseAgent):
    """``algorithm`` (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``DDPG``, ``DQN``, ...) from stable-baselines3 on a prune_gym env.

    An episode is ``num_groups`` timesteps; ``learn(episodes)`` trains for
    ``episodes x num_groups`` more timesteps. On-policy algorithms collect
    rollouts of ``n_steps`` (default: 4 episodes), so they may run up to that
    many extra steps. The supported action spaces are those SB3's algorithm
    accepts. Other keyword arguments go to the algorithm's constructor.
    SB3's logged metrics reach :meth:`log_metrics` (the search's trackers) and,
    after :meth:`log_to_tensorboard`, SB3's own TensorBoard event files.
    ``save`` writes no pickle: parameters (SB3's zip, read back with
    ``weights_only``), the replay buffer as ``.npz``, counters and random state as JSON.
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiBinary,
                                                            gym.spaces.MultiDiscrete)
    transfers = True  # a policy: its saved state acts on any environment with the same spaces

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
        check_sb3_hyperparameters(kwargs)
        super().__init__(env, seed, {"algorithm": algorithm})
        if issubclass(cls, OnPolicyAlgorithm):
            kwargs.setdefault("n_steps", 4 * self.episode_length)
            if "batch_size" in cls.__init__.__code__.co_varnames:
                kwargs.setdefault("batch_size", kwargs["n_steps"])
        try:
            self.model = self._build(cls, policy, seed, kwargs)
        except AssertionError as error:  # SB3 checks some combinations with assert (PPO: batch_size > 1, ...)
            detail = " ".join(str(error).split()) or "an assertion failed"
            raise ValueError(f"stable-baselines3 {algorithm} refused its hyper-parameters: {detail}") from None
        self.model.set_logger(quiet_logger(self.log_metrics))

    def _build(self, cls: type[BaseAlgorithm], policy: str, seed: int | None, kwargs: dict[str, Any]) -> BaseAlgorithm:
        return cls(policy, self.env, seed=seed, verbose=0, **kwargs)

    def log_to_tensorboard(self, folder: str | Path) -> Logger:
        """Have SB3's logger also write its TensorBoard event files (``train/*``, ``rollout/*``, ``time/*``, against
        timesteps) in ``folder``, as SB3's ``tensorboard_log`` does; returns the logger, to close when done."""
        logger = quiet_logger(self.log_metrics, tensorboard=folder)
        self.model.set_logger(logger)
        return logger

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
                _restore_buffer(buffer, {name: archive[name] for name in _BUFFER_ARRAYS if name in archive.files},
                                int(archive["pos"]), bool(archive["full"]))
        self.load_state_dict(json.loads(path.with_suffix(".json").read_text()))

