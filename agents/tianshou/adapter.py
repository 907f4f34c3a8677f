"""Adapter: tianshou 2.0's off-policy actor-critic algorithms (SAC, DDPG) driven by episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm.modelfree.ddpg import DDPG, ContinuousDeterministicPolicy
from tianshou.algorithm.modelfree.sac import SAC, SACPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Batch, Collector, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net
from tianshou.utils.net.continuous import ContinuousActorDeterministic, ContinuousActorProbabilistic, ContinuousCritic

from agents.common import BaseAgent

ALGORITHMS = ("SAC", "DDPG")


class _StepInfoOnly(gym.Wrapper):
    """Keeps only the info keys every step has: tianshou stacks infos into arrays, and the
    end-of-episode extras (masks, lists) would become NaN-padded objects in its buffer."""

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        self._keys = tuple(key for key, value in info.items() if np.isscalar(value))
        return observation, {key: info[key] for key in self._keys}

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, {key: info[key] for key in self._keys}


class TianshouAgent(BaseAgent):
    """``algorithm`` (``SAC`` or ``DDPG``) from tianshou on a prune_gym env with a Box action space.

    ``learn(episodes)`` runs one tianshou training epoch of ``episodes x num_groups``
    environment steps, collecting one episode between updates; no test collector
    (the env's reward split is the only score).
    """

    def __init__(self, env: gym.Env, seed: int | None = None, algorithm: str = "SAC", hidden: tuple[int, ...] = (64, 64),
                 lr: float = 1e-3, gamma: float = 0.99, buffer_size: int = 10_000, batch_size: int = 64) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown tianshou algorithm {algorithm!r}; this adapter supports {list(ALGORITHMS)}")
        super().__init__(env, seed, {"algorithm": algorithm})
        if seed is not None:
            torch.manual_seed(seed)
        obs_shape, action_shape = tuple(env.observation_space.shape or ()), tuple(env.action_space.shape or ())

        def critic() -> ContinuousCritic:
            return ContinuousCritic(preprocess_net=Net(state_shape=obs_shape, action_shape=action_shape, hidden_sizes=hidden, concat=True))

        optimiser = AdamOptimizerFactory(lr=lr)
        self.algorithm: SAC | DDPG
        if algorithm == "SAC":
            probabilistic = ContinuousActorProbabilistic(preprocess_net=Net(state_shape=obs_shape, hidden_sizes=hidden),
                                                         action_shape=action_shape, unbounded=True, conditioned_sigma=True)
            self.algorithm = SAC(policy=SACPolicy(actor=probabilistic, action_space=env.action_space), policy_optim=optimiser,
                                 critic=critic(), critic_optim=optimiser, critic2=critic(), critic2_optim=optimiser, gamma=gamma)
        else:
            deterministic = ContinuousActorDeterministic(preprocess_net=Net(state_shape=obs_shape, hidden_sizes=hidden),
                                                         action_shape=action_shape)
            policy = ContinuousDeterministicPolicy(actor=deterministic, action_space=env.action_space, exploration_noise="default")
            self.algorithm = DDPG(policy=policy, policy_optim=optimiser, critic=critic(), critic_optim=optimiser, gamma=gamma)
        self.envs = DummyVectorEnv([lambda: _StepInfoOnly(env)])
        self.envs.seed(seed)
        self.collector: Collector = Collector(self.algorithm, self.envs, VectorReplayBuffer(buffer_size, 1), exploration_noise=True)
        self.batch_size = batch_size

    def learn(self, episodes: int) -> None:
        self.collector.reset()
        self.algorithm.run_training(OffPolicyTrainerParams(
            training_collector=self.collector, max_epochs=1, epoch_num_steps=episodes * self.episode_length,
            collection_step_num_env_steps=self.episode_length, batch_size=self.batch_size,
            test_collector=None, verbose=False, show_progress=False,
        ))

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        policy = self.algorithm.policy
        policy.eval()
        with torch.no_grad():
            result = policy(Batch(obs=observation[None], info={}))
        action = policy.map_action(result.act)
        return np.asarray(action.cpu().numpy() if isinstance(action, torch.Tensor) else action)[0]

    def save(self, path: str | Path) -> None:
        """The algorithm's state dict (tensors only)."""
        torch.save(self.algorithm.state_dict(), path)

    def load(self, path: str | Path) -> None:
        self.algorithm.load_state_dict(torch.load(path, weights_only=True))
