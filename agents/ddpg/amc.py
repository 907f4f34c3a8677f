"""AMC's DDPG, built on stable-baselines3's ``DDPG``.

What AMC changes in plain DDPG, and where it lives here:

* warm-up: ``warmup_episodes`` (100) episodes of uniformly random actions
  (SB3's ``learning_starts`` = warm-up episodes x episode length);
* exploration: truncated normal noise around the actor's action, truncated to
  the action bounds, sigma 0.5 (in units of the action range) decaying x0.95
  per episode after the warm-up (:class:`TruncatedNormalNoise`, drawn by
  :class:`_AMCDDPG._sample_action`);
* credit: every transition of an episode is stored with the episode's return
  (= its final reward for the sparse presets) minus a moving-average baseline
  (:class:`EpisodeRewardBuffer`), and gamma = 1;
* updates after every episode, as many gradient steps as the episode had steps.

SB3's DDPG has one learning rate for actor and critic (AMC: 1e-4 / 1e-3); we use 1e-3.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from scipy.stats import truncnorm
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise

from agents.sb3 import SB3Agent


class TruncatedNormalNoise(ActionNoise):
    """AMC's exploration: a truncated normal around the action, its sigma decaying after the warm-up.

    ``sigma`` is in units of the action range (SB3 acts in [-1, 1], twice that
    range); after ``warmup_episodes`` it is ``initial_sigma x decay^(episodes - warmup)``.
    """

    def __init__(self, sigma: float = 0.5, decay: float = 0.95, warmup_episodes: int = 100, seed: int | None = None) -> None:
        super().__init__()
        self.initial_sigma, self.decay, self.warmup_episodes = sigma, decay, warmup_episodes
        self.sigma = sigma
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> np.ndarray:
        raise RuntimeError("TruncatedNormalNoise is drawn around the action with sample_around(); use it with AMCAgent")

    def set_episode(self, episodes_done: int) -> None:
        """Update sigma for the episode about to run (``episodes_done`` finished before it)."""
        self.sigma = self.initial_sigma * self.decay ** max(0, episodes_done - self.warmup_episodes)

    def sample_around(self, scaled_action: np.ndarray) -> np.ndarray:
        """A draw from N(action, (2 sigma)^2) truncated to [-1, 1] (SB3's scaled action space)."""
        scale = max(2.0 * self.sigma, 1e-8)
        low, high = (-1.0 - scaled_action) / scale, (1.0 - scaled_action) / scale
        return truncnorm.rvs(low, high, loc=scaled_action, scale=scale, size=np.shape(scaled_action),
                             random_state=self.rng).astype(np.float32)


class EpisodeRewardBuffer(ReplayBuffer):
    """Holds an episode's transitions until it ends, then stores them all with reward R - baseline.

    R is the episode's return; the baseline is an exponential moving average of
    past returns (``baseline_alpha``: AMC's moving_alpha, 0.5). Single environment only.
    """

    def __init__(self, *args: Any, baseline_alpha: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError("EpisodeRewardBuffer supports one environment")
        self.baseline_alpha = baseline_alpha
        self.baseline: float | None = None
        self._pending: list[tuple] = []

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        self._pending.append((obs, next_obs, action, float(np.asarray(reward).sum()), done, infos))
        if not bool(np.asarray(done).any()):
            return
        episode_return = sum(item[3] for item in self._pending)
        if self.baseline is None:
            self.baseline = episode_return
        self.baseline += self.baseline_alpha * (episode_return - self.baseline)
        for obs_, next_obs_, action_, _, done_, infos_ in self._pending:
            super().add(obs_, next_obs_, action_, np.array([episode_return - self.baseline], dtype=np.float32), done_, infos_)
        self._pending.clear()


class _AMCDDPG(DDPG):
    """SB3 DDPG whose exploration draws a truncated normal around the actor's action."""

    def _sample_action(self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1):
        if self.num_timesteps < learning_starts:  # warm-up: uniformly random actions, no noise
            return super()._sample_action(learning_starts, None, n_envs)
        if not isinstance(action_noise, TruncatedNormalNoise):
            return super()._sample_action(learning_starts, action_noise, n_envs)
        action_noise.set_episode(self._episode_num)
        assert self._last_obs is not None
        action, _ = self.predict(self._last_obs, deterministic=True)
        scaled = action_noise.sample_around(self.policy.scale_action(action))
        return self.policy.unscale_action(scaled), scaled


class AMCAgent(SB3Agent):
    """AMC's DDPG agent for LayerRate-v0 or FilterSelect-v0 with ``action_type="continuous"``.

    Args:
        env: a prune_gym env with a Box action space.
        seed: seeds networks, noise and the warm-up actions.
        warmup_episodes: episodes of random actions before learning (AMC: 100).
        sigma, sigma_decay: exploration noise (AMC: 0.5, x0.95 per episode).
        hidden: actor and critic hidden layers (AMC: 400, 300).
        baseline_alpha: weight of the newest return in the moving-average baseline (AMC: 0.5).
        Other keyword arguments go to SB3's ``DDPG``.
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)

    @classmethod
    def supported_action_spaces_for(cls, hyperparameters: dict[str, Any]) -> tuple[type[gym.Space], ...]:
        return cls.supported_action_spaces

    def __init__(self, env: gym.Env, seed: int | None = None, warmup_episodes: int = 100, sigma: float = 0.5,
                 sigma_decay: float = 0.95, hidden: tuple[int, ...] = (400, 300), baseline_alpha: float = 0.5, **kwargs: Any) -> None:
        self.noise = TruncatedNormalNoise(sigma, sigma_decay, warmup_episodes, seed)
        length = env.unwrapped.network.num_groups  # type: ignore[attr-defined]
        defaults = dict(
            learning_rate=1e-3, gamma=1.0, tau=0.01, batch_size=64,
            buffer_size=max(2000, 200 * length), learning_starts=warmup_episodes * length,
            train_freq=(1, "episode"), gradient_steps=-1, action_noise=self.noise,
            replay_buffer_class=EpisodeRewardBuffer, replay_buffer_kwargs={"baseline_alpha": baseline_alpha},
            policy_kwargs={"net_arch": list(hidden)},
        )
        super().__init__(env, seed, algorithm="DDPG", **{**defaults, **kwargs})

    def _build(self, cls, policy, seed, kwargs):
        return _AMCDDPG(policy, self.env, seed=seed, verbose=0, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        """SB3's counters and random state, plus the noise generator and the reward baseline."""
        return {**super().state_dict(), "noise_rng": self.noise.rng.bit_generator.state, "baseline": self._buffer.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.noise.rng.bit_generator.state = state["noise_rng"]
        self.noise.set_episode(self.model._episode_num)
        self._buffer.baseline = state["baseline"]

    @property
    def _buffer(self) -> EpisodeRewardBuffer:
        buffer = getattr(self.model, "replay_buffer", None)
        assert isinstance(buffer, EpisodeRewardBuffer)
        return buffer
