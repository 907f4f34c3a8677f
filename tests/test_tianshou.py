"""Every tianshou algorithm of the adapter on lenet5-digits: short searches, exact episode counts, losses, exact resumes."""

import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch

from prune_gym.agent_api import compatible_environment, make_agent
from prune_gym.runs import RunFolder, RunSpec
from prune_gym.search import resume_search, run_search
from prune_gym.wrappers import EpisodeRecorder
from prune_gym_agents.tianshou.adapter import ALGORITHMS

ON_POLICY = {"Reinforce", "A2C", "PPO", "NPG", "TRPO"}


def recorded(name: str) -> EpisodeRecorder:
    env_id, action_type = compatible_environment(f"tianshou:{name}")
    return EpisodeRecorder(gym.make(f"prune_gym:{env_id}", task="lenet5-digits", reward_samples=200, action_type=action_type))


def short_search_kwargs(name: str) -> dict:
    """Updates within a few episodes: on-policy every 2 episodes, off-policy after 1 random warm-up episode."""
    return {"episodes_per_update": 2} if name in ON_POLICY else {"warmup_episodes": 1}


def tensors(agent) -> dict:
    return {key: value for key, value in agent.algorithm.state_dict().items() if isinstance(value, torch.Tensor)}


def test_declarations_pick_the_right_action_space():
    assert compatible_environment("tianshou:DQN") == ("LayerRate-v0", "discrete")
    assert compatible_environment("tianshou:dqn") == ("LayerRate-v0", "discrete")
    assert compatible_environment("tianshou:SAC") == ("LayerRate-v0", "continuous")
    assert compatible_environment("tianshou:PPO", env_id="LayerRate-v0", action_type="discrete") == ("LayerRate-v0", "discrete")
    assert compatible_environment("tianshou:TD3", env_id="FilterSelect-v0") == ("FilterSelect-v0", "continuous")


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_algorithm_searches_counts_episodes_logs_losses_and_continues_exactly(name, tmp_path):
    env = recorded(name)
    agent = make_agent(f"tianshou:{name}", env, seed=0, **short_search_kwargs(name))
    metrics: list[dict] = []
    agent.metrics_callback = metrics.append
    for done in (1, 2, 3):
        agent.learn(1)
        assert len(env.episodes) == done
    agent.learn(2)
    assert len(env.episodes) == 5 and all(np.isfinite(e.episode_return) for e in env.episodes)
    assert metrics and all(key.startswith("train/") and np.isfinite(value) for m in metrics for key, value in m.items())
    agent.save(tmp_path / "agent")
    agent.learn(3)

    resumed_env = recorded(name)
    resumed = make_agent(f"tianshou:{name}", resumed_env, seed=1, **short_search_kwargs(name))
    resumed.load(tmp_path / "agent")
    resumed.learn(3)
    assert [e.rates for e in resumed_env.episodes] == [e.rates for e in env.episodes[5:]]
    assert resumed.state_dict() == agent.state_dict(), "counters and random states"
    for key, value in tensors(agent).items():
        assert torch.equal(tensors(resumed)[key], value), key
    observation = env.reset(seed=0)[0]
    np.testing.assert_array_equal(resumed.predict(observation), agent.predict(observation))

    one_call_env = recorded(name)
    one_call = make_agent(f"tianshou:{name}", one_call_env, seed=0, **short_search_kwargs(name))
    one_call.learn(8)
    assert [e.rates for e in one_call_env.episodes] == [e.rates for e in env.episodes], "learn(1) calls continue one training"
    assert one_call.state_dict() == agent.state_dict()
    for key, value in tensors(agent).items():
        assert torch.equal(tensors(one_call)[key], value), key


@pytest.mark.parametrize("name", ["PPO", "SAC"])
def test_search_stopped_and_resumed_equals_the_uninterrupted_search(name, tmp_path, monkeypatch):
    config = RunSpec(task="lenet5-digits", agent=f"tianshou:{name}", episodes=6, env_kwargs={"reward_samples": 200}, checkpoint_every=1,
                     agent_kwargs=short_search_kwargs(name))
    run_search(config, run_dir=tmp_path / "whole", progress=False)
    original_step, finished = EpisodeRecorder.step, []

    def stop_after_three_episodes(self, action):
        result = original_step(self, action)
        if result[2]:
            finished.append(1)
            if len(finished) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # the search's Ctrl-C handler: stop after this episode
        return result

    monkeypatch.setattr(EpisodeRecorder, "step", stop_after_three_episodes)
    assert run_search(config, run_dir=tmp_path / "stopped", progress=False)["episodes_done"] == 3
    monkeypatch.setattr(EpisodeRecorder, "step", original_step)
    resume_search(tmp_path / "stopped", progress=False)
    whole, resumed = (RunFolder(tmp_path / run).episodes()[0] for run in ("whole", "stopped"))
    assert [e.rates for e in resumed] == [e.rates for e in whole] and len(whole) == 6


def test_bad_choices_fail_in_one_line_before_anything_is_written(tmp_path):
    messages = []
    for call in (lambda: compatible_environment("tianshou:DQN", env_id="FilterSelect-v0"),
                 lambda: compatible_environment("tianshou:Rainbow"),
                 lambda: make_agent("tianshou:SAC", recorded("DQN")),
                 lambda: make_agent("tianshou:PPO", recorded("PPO"), clip_range=0.1),
                 lambda: make_agent("tianshou:PPO", recorded("PPO"), warmup_episodes=5),
                 lambda: run_search(RunSpec(agent="tianshou:DQN", env="FilterSelect-v0"), run_dir=tmp_path / "r")):
        with pytest.raises(ValueError) as error:
            call()
        messages.append(str(error.value))
    assert all("\n" not in message for message in messages)
    assert "--env LayerRate-v0 --env-arg action_type=discrete" in messages[0]
    assert all(name in messages[1] for name in ALGORITHMS)
    assert "Discrete" in messages[2] and "eps_clip" in messages[3] and "warmup_episodes" in messages[4]
    assert not (tmp_path / "r").exists()
