"""AMC's DDPG (He et al., ECCV 2018, and its published code mit-han-lab/amc), built on stable-baselines3's ``DDPG``.

What AMC changes in plain DDPG, and where it lives here:

* warm-up: ``warmup_episodes`` (100) episodes of uniformly random actions
  (SB3's ``learning_starts`` = warm-up episodes x episode length);
* bounded actions: LayerRate-v0's pruned fraction is kept in [0, ``max_rate``]
  of the environment (AMC: 0.8): the model acts in that Box, so SB3 scales
  the actor's tanh output, the warm-up draws and the noise into it;
* exploration: truncated normal noise around the actor's action, truncated to
  the action bounds, sigma 0.5 (in action units: pruned fraction) decaying
  x0.95 per episode after the warm-up (:class:`TruncatedNormalNoise`, drawn by
  :meth:`_AMCDDPG._sample_action`);
* credit: every transition of an episode is stored with the episode's return
  (AMC's final reward for the sparse presets), gamma = 1, and each sampled
  minibatch's rewards are centred on a moving average of the minibatch means
  (AMC's ``moving_alpha`` 0.5; :class:`EpisodeRewardBuffer`);
* two learning rates: actor 1e-4, critic 1e-3 (SB3 has one; :class:`_AMCDDPG`);
* updates after every episode, as many gradient steps as the episode had steps;
  actor and critic MLPs with two hidden layers of 300 units; tau 0.01;
  minibatches of 64; a replay memory of the last 100 episodes (AMC's ``rmsize`` 100 per layer).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from scipy.stats import truncnorm
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import update_learning_rate
from stable_baselines3.common.vec_env import VecNormalize

import prune_gym
from prune_gym.validation import check_int, check_real, check_sizes

from ..sb3 import SB3Agent


class TruncatedNormalNoise(ActionNoise):
    """AMC's exploration: a truncated normal around the action, its sigma decaying after the warm-up.

    ``sigma`` is in action units (for LayerRate-v0, a pruned fraction); after
    ``warmup_episodes`` it is ``initial_sigma x decay^(episodes - warmup)``.
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

    def sample_around(self, scaled_action: np.ndarray, action_width: np.ndarray) -> np.ndarray:
        """A draw from N(action, sigma^2) truncated to the action bounds, in SB3's scaled space [-1, 1]
        (where an action range ``action_width`` wide is 2 wide)."""
        scale = np.maximum(2.0 * self.sigma / action_width, 1e-8)
        low, high = (-1.0 - scaled_action) / scale, (1.0 - scaled_action) / scale
        return truncnorm.rvs(low, high, loc=scaled_action, scale=scale, size=np.shape(scaled_action),
                             random_state=self.rng).astype(np.float32)


class EpisodeRewardBuffer(ReplayBuffer):
    """Holds an episode's transitions until it ends, then stores them all with the episode's return R;
    each sampled minibatch's rewards are centred on a moving average of the minibatch mean rewards.

    ``baseline_alpha``: weight of the newest minibatch mean in the moving average (AMC's moving_alpha, 0.5).
    Single environment only.
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
        episode_return = np.array([sum(item[3] for item in self._pending)], dtype=np.float32)
        for obs_, next_obs_, action_, _, done_, infos_ in self._pending:
            super().add(obs_, next_obs_, action_, episode_return, done_, infos_)
        self._pending.clear()

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        samples = super().sample(batch_size, env)
        batch_mean = float(samples.rewards.mean())
        self.baseline = batch_mean if self.baseline is None else self.baseline + self.baseline_alpha * (batch_mean - self.baseline)
        return samples._replace(rewards=samples.rewards - self.baseline)


class _AMCDDPG(DDPG):
    """SB3 DDPG with AMC's two learning rates, exploring with a truncated normal around the actor's action."""

    def __init__(self, policy: str, env: gym.Env, *, actor_learning_rate: float, critic_learning_rate: float, **kwargs: Any) -> None:
        self.actor_learning_rate, self.critic_learning_rate = actor_learning_rate, critic_learning_rate
        super().__init__(policy, env, learning_rate=critic_learning_rate, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

    def _update_learning_rate(self, optimizers: Any) -> None:
        """SB3 sets one schedule's rate on both optimisers before every update; AMC's actor learns 10x slower."""
        update_learning_rate(self.actor.optimizer, self.actor_learning_rate)
        update_learning_rate(self.critic.optimizer, self.critic_learning_rate)

    def _sample_action(self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1):
        if self.num_timesteps < learning_starts:  # warm-up: uniformly random actions, no noise
            return super()._sample_action(learning_starts, None, n_envs)
        if not isinstance(action_noise, TruncatedNormalNoise):
            return super()._sample_action(learning_starts, action_noise, n_envs)
        action_noise.set_episode(self._episode_num)
        assert self._last_obs is not None and isinstance(self.action_space, gym.spaces.Box)
        action, _ = self.predict(self._last_obs, deterministic=True)
        scaled = action_noise.sample_around(self.policy.scale_action(action), self.action_space.high - self.action_space.low)
        return self.policy.unscale_action(scaled), scaled


AMC_DERIVED = {
    "learning_rate": "from actor_learning_rate and critic_learning_rate",
    "buffer_size": "from buffer_episodes",
    "learning_starts": "from warmup_episodes",
    "train_freq": "one update after every episode",
    "gradient_steps": "as many gradient steps as the episode had steps",
    "action_noise": "from sigma and sigma_decay",
    "replay_buffer_class": "its buffer storing every transition with the episode's return",
    "replay_buffer_kwargs": "from baseline_alpha",
    "policy_kwargs": "from hidden",
}
"""SB3 ``DDPG`` arguments :class:`AMCAgent` sets itself, and how (a user's value for one is refused, not overridden)."""


class AMCAgent(SB3Agent):
    """AMC's DDPG agent for LayerRate-v0 or FilterSelect-v0 with ``action_type="continuous"``.

    On LayerRate-v0 every action (warm-up, explored, predicted) is a pruned
    fraction in [0, ``env.max_rate``]; FilterSelect-v0's per-filter keep scores
    keep their [0, 1] range.

    Args:
        env: a prune_gym env with a Box action space.
        seed: seeds networks, noise and the warm-up actions.
        warmup_episodes: episodes of uniformly random actions before learning (AMC: 100).
        sigma, sigma_decay: exploration noise, sigma in action units (AMC: 0.5, x0.95 per episode after the warm-up).
        hidden: hidden layers of actor and critic (AMC: 300, 300).
        actor_learning_rate, critic_learning_rate: Adam learning rates (AMC: 1e-4 and 1e-3).
        gamma: discount (AMC: 1).
        tau: soft target-update rate (AMC: 0.01).
        batch_size: minibatch size (AMC: 64).
        buffer_episodes: episodes the replay memory holds (AMC's rmsize: 100 transitions per layer).
        baseline_alpha: weight of the newest minibatch mean reward in the moving-average baseline (AMC: 0.5).
        Other keyword arguments go to SB3's ``DDPG``.
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = (gym.spaces.Box,)

    @classmethod
    def supported_action_spaces_for(cls, hyperparameters: dict[str, Any]) -> tuple[type[gym.Space], ...]:
        return cls.supported_action_spaces

    def __init__(self, env: gym.Env, seed: int | None = None, warmup_episodes: int = 100, sigma: float = 0.5,
                 sigma_decay: float = 0.95, hidden: tuple[int, ...] = (300, 300), actor_learning_rate: float = 1e-4,
                 critic_learning_rate: float = 1e-3, gamma: float = 1.0, tau: float = 0.01, batch_size: int = 64,
                 buffer_episodes: int = 100, baseline_alpha: float = 0.5, **kwargs: Any) -> None:
        derived = sorted(set(kwargs) & set(AMC_DERIVED))
        if derived:
            name = derived[0]
            raise ValueError(f"invalid {name}={kwargs[name]!r} for AMC's DDPG: it sets {name} itself "
                             f"({AMC_DERIVED[name]}); leave it out")
        warmup_episodes = check_int("warmup_episodes", warmup_episodes, 0, "a number of random-action episodes >= 0 (AMC: 100)")
        sigma = check_real("sigma", sigma, 0.0, math.inf, high_open=True, expected="an exploration noise scale >= 0 (AMC: 0.5)")
        sigma_decay = check_real("sigma_decay", sigma_decay, 0.0, 1.0, low_open=True,
                                 expected="a per-episode noise decay in (0, 1] (AMC: 0.95)")
        hidden = check_sizes("hidden", hidden, "a list of positive hidden-layer sizes (AMC: [300, 300])")
        actor_learning_rate = check_real("actor_learning_rate", actor_learning_rate, 0.0, math.inf, low_open=True, high_open=True,
                                         expected="a positive learning rate (AMC: 1e-4)")
        critic_learning_rate = check_real("critic_learning_rate", critic_learning_rate, 0.0, math.inf, low_open=True,
                                          high_open=True, expected="a positive learning rate (AMC: 1e-3)")
        gamma = check_real("gamma", gamma, 0.0, 1.0, expected="a discount in [0, 1] (AMC: 1)")
        tau = check_real("tau", tau, 0.0, 1.0, low_open=True, expected="a soft target-update rate in (0, 1] (AMC: 0.01)")
        batch_size = check_int("batch_size", batch_size, 1, "a positive minibatch size (AMC: 64)")
        buffer_episodes = check_int("buffer_episodes", buffer_episodes, 1, "a positive number of episodes (AMC: 100)")
        baseline_alpha = check_real("baseline_alpha", baseline_alpha, 0.0, 1.0, low_open=True,
                                    expected="the newest minibatch's weight in the reward baseline, in (0, 1] (AMC: 0.5)")
        self.noise = TruncatedNormalNoise(sigma, sigma_decay, warmup_episodes, seed)
        length = env.unwrapped.network.num_groups  # type: ignore[attr-defined]
        amc = dict(
            actor_learning_rate=actor_learning_rate, critic_learning_rate=critic_learning_rate, gamma=gamma, tau=tau,
            batch_size=batch_size, buffer_size=buffer_episodes * length, learning_starts=warmup_episodes * length,
            train_freq=(1, "episode"), gradient_steps=-1, action_noise=self.noise,
            replay_buffer_class=EpisodeRewardBuffer, replay_buffer_kwargs={"baseline_alpha": baseline_alpha},
            policy_kwargs={"net_arch": list(hidden)},
        )
        super().__init__(env, seed, algorithm="DDPG", **amc, **kwargs)

    def _build(self, cls, policy, seed, kwargs):
        env = self.env
        if isinstance(env.unwrapped, prune_gym.LayerRateEnv):  # actions are pruned fractions: AMC bounds them by max_rate
            space = env.action_space
            assert isinstance(space, gym.spaces.Box)
            bounded = gym.spaces.Box(space.low, np.minimum(space.high, env.unwrapped.max_rate), dtype=np.float32)
            env = gym.wrappers.TransformAction(env, lambda action: action, bounded)
        return _AMCDDPG(policy, env, seed=seed, verbose=0, **kwargs)

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
