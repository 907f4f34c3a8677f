"""AMC's DDPG as published: two learning rates, actions in [0, max_rate], AMC's defaults, exact continuation after load."""

import gymnasium as gym
import numpy as np
import pytest

from prune_gym.agent_api import make_agent
from prune_gym.wrappers import EpisodeRecorder


class ActionLog(gym.Wrapper):
    """Records every action the agent hands to the environment."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action, dtype=np.float64))
        return self.env.step(action)


def logged_env(env_id: str = "LayerRate-v0", **kwargs) -> ActionLog:
    return ActionLog(EpisodeRecorder(gym.make(f"prune_gym:{env_id}", task="lenet5-digits", reward_samples=200, **kwargs)))


def test_amc_defaults_learning_rates_and_actions_bounded_by_max_rate():
    env = logged_env(max_rate=0.5)
    agent = make_agent("ddpg", env, seed=0, warmup_episodes=10)
    model, groups = agent.model, env.unwrapped.network.num_groups

    def learning_rates():
        return [group["lr"] for group in model.actor.optimizer.param_groups + model.critic.optimizer.param_groups]

    assert learning_rates() == [1e-4, 1e-3]
    assert (model.gamma, model.tau, model.batch_size) == (1.0, 0.01, 64)
    assert model.replay_buffer.buffer_size == 100 * groups and model.learning_starts == 10 * groups
    assert [layer.out_features for layer in model.actor.mu if hasattr(layer, "out_features")] == [300, 300, 1]
    agent.learn(16)
    assert learning_rates() == [1e-4, 1e-3], "SB3 resets one rate on both optimisers before every update"
    actions = np.concatenate(env.actions)
    assert len(actions) == 16 * groups
    assert actions.min() >= 0.0 and actions.max() <= np.float32(0.5), "warm-up and explored rates stay in [0, max_rate]"
    assert actions[: 10 * groups].max() > 0.35, "warm-up draws cover [0, max_rate], not a shrunken range"
    assert agent.noise.sigma == pytest.approx(0.5 * 0.95 ** (15 - 10))
    predicted = agent.predict(env.reset(seed=0)[0])
    assert 0.0 <= predicted[0] <= np.float32(0.5)


def test_filter_select_keeps_its_keep_score_range():
    env = logged_env("FilterSelect-v0", action_type="continuous")
    agent = make_agent("ddpg", env, seed=0, warmup_episodes=2)
    assert agent.model.action_space == env.action_space
    agent.learn(4)
    assert len(env.env.episodes) == 4 and np.concatenate(env.actions).max() > 0.8


def test_save_and_load_continue_exactly_like_the_uninterrupted_agent(tmp_path):
    env = logged_env()
    agent = make_agent("ddpg", env, seed=1, warmup_episodes=3)
    agent.learn(6)
    agent.save(tmp_path / "agent")
    agent.learn(5)
    resumed_env = logged_env()
    resumed = make_agent("ddpg", resumed_env, seed=2, warmup_episodes=3)
    resumed.load(tmp_path / "agent")
    resumed.learn(5)
    np.testing.assert_array_equal(np.concatenate(resumed_env.actions), np.concatenate(env.actions[6 * 2:]))
    observation = env.reset(seed=0)[0]
    np.testing.assert_array_equal(resumed.predict(observation), agent.predict(observation))
    assert resumed.model.replay_buffer.baseline == agent.model.replay_buffer.baseline
