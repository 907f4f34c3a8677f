"""Agents on real searches over lenet5-digits: AMC DDPG, try-and-learn, baselines, SB3, tianshou, plug-ins."""

import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

from prune_gym.agent_api import list_agents, make_agent
from prune_gym.wrappers import EpisodeRecorder

BUDGET = 0.5


def recorded(env_id: str = "LayerRate-v0", **kwargs) -> EpisodeRecorder:
    return EpisodeRecorder(gym.make(f"prune_gym:{env_id}", task="lenet5-digits", macs_budget=BUDGET, reward_samples=300, **kwargs))


def best_within_budget(env: EpisodeRecorder):
    meeting = [e for e in env.episodes if e.budget_met]
    assert meeting, "no episode met the MACs budget"
    return max(meeting, key=lambda e: e.score)


@pytest.fixture(scope="module")
def uniform_l1():
    env = recorded()
    agent = make_agent("uniform", env, seed=0)
    assert len(set(agent.rates)) == 1
    agent.learn(1)
    return best_within_budget(env)


def test_every_agent_is_discoverable():
    assert {"ddpg", "try-and-learn", "uniform", "global", "random-search", "sb3", "tianshou"} <= set(list_agents())
    with pytest.raises(ValueError, match="installed agents"):
        make_agent("alphago", recorded())


def test_uniform_and_global_baselines_meet_the_budget(uniform_l1):
    assert uniform_l1.macs_ratio <= BUDGET
    env = recorded()
    make_agent("global", env, seed=0).learn(1)
    ranked = best_within_budget(env)
    assert ranked.macs_ratio <= BUDGET
    assert len(set(np.round(ranked.rates, 6))) > 1, "one global threshold gives each group its own rate"


def test_filled_uniform_pruning_plays_the_budget_up_to_the_last_channel():
    """``--agent-arg filled=true`` (the baseline of cpu-v1): the episode keeps what RateBudget.uniform_counts(filled)
    keeps, more of the MACs than one common rate (on CNN5 every group rounds down at once), still within the budget."""
    played = {}
    for filled in (False, True):
        env = EpisodeRecorder(gym.make("prune_gym:LayerRate-v0", task="cnn5-digits", macs_budget=BUDGET, reward_samples=100))
        make_agent("uniform", env, seed=0, filled=filled).learn(1)
        played[filled] = best_within_budget(env)
        counts = env.unwrapped.rate_budget().uniform_counts(filled=filled)
        assert [int(mask.sum()) for mask in played[filled].keep_mask] == list(counts)
    assert played[False].macs_ratio < 0.49 < played[True].macs_ratio <= BUDGET


def test_amc_ddpg_beats_uniform_l1_at_the_budget(uniform_l1):
    env = recorded()
    agent = make_agent("ddpg", env, seed=0, warmup_episodes=50)
    agent.learn(150)
    assert len(env.episodes) == 150
    best = best_within_budget(env)
    assert best.macs_ratio <= BUDGET
    assert best.score >= uniform_l1.score
    assert agent.noise.sigma == pytest.approx(0.5 * 0.95 ** (149 - 50)), \
        "the last episode explored with sigma 0.5 x 0.95^(episodes after warm-up)"
    assert agent.model.replay_buffer.baseline is not None


def test_amc_ddpg_runs_filter_select_with_continuous_scores():
    env = recorded("FilterSelect-v0", action_type="continuous")
    make_agent("ddpg", env, seed=0, warmup_episodes=5).learn(10)
    assert len(env.episodes) == 10 and best_within_budget(env).macs_ratio <= BUDGET


def test_try_and_learn_beats_uniform_l1_at_the_budget(uniform_l1):
    env = recorded("FilterSelect-v0", reward="try-and-learn", enforce_budget=True)
    agent = make_agent("try-and-learn", env, seed=0)
    while not agent.finished:
        agent.learn(1)
    assert agent.learned_layers == env.unwrapped.network.num_groups
    best = best_within_budget(env)
    assert best.score >= uniform_l1.score


def test_try_and_learn_recovers_after_each_layer_and_scores_later_layers_on_tuned_weights():
    env = recorded("FilterSelect-v0", reward="try-and-learn", enforce_budget=True)
    agent = make_agent("try-and-learn", env, seed=0, recovery_steps=20, max_updates_per_layer=2)
    pretrained = {k: v.clone() for k, v in env.unwrapped.network.model.state_dict().items()}
    agent.learn(34)
    tuned = env.unwrapped.network.model.state_dict()
    assert env.unwrapped.weights_changed and not torch.equal(tuned["features.0.weight"], pretrained["features.0.weight"])
    final = agent.run_episode(lambda observation, step: agent.predict(observation))
    assert env.episodes[-1].budget_met and np.isfinite(final).all()
    assert env.episodes[-1].score >= 0.9
    with pytest.raises(ValueError, match="recovery_steps"):
        make_agent("try-and-learn", env, recovery_steps=-1)


@pytest.mark.parametrize("name, env_id, kwargs, env_kwargs", [
    ("ddpg", "LayerRate-v0", {"warmup_episodes": 2}, {}),
    ("try-and-learn", "FilterSelect-v0", {}, {"reward": "try-and-learn"}),
])
def test_save_and_load_round_trip(tmp_path, name, env_id, kwargs, env_kwargs):
    env = recorded(env_id, **env_kwargs)
    agent = make_agent(name, env, seed=1, **kwargs)
    agent.learn(8)
    observation, _ = env.reset(seed=0)
    path = tmp_path / "agent"
    agent.save(path)
    fresh = make_agent(name, recorded(env_id, **env_kwargs), seed=2, **kwargs)
    fresh.load(path)
    fresh.env.reset(seed=0)
    np.testing.assert_array_equal(fresh.predict(observation), agent.predict(observation))


@pytest.mark.parametrize("name", ["sb3:PPO", "sb3:SAC", "tianshou:SAC", "tianshou:DDPG"])
def test_library_adapters_complete_short_searches(name):
    env = recorded()
    make_agent(name, env, seed=0).learn(6)
    assert len(env.episodes) >= 6
    assert all(np.isfinite(e.episode_return) for e in env.episodes)


def test_third_party_agent_plugs_in_through_entry_points(tmp_path, monkeypatch):
    package = tmp_path / "my_pruner"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np

        class HalfAgent:
            """Prunes half of every group: a third-party agent using only the public protocol."""
            def __init__(self, env, seed=None):
                self.env = env
            def learn(self, episodes):
                for _ in range(episodes):
                    self.env.reset()
                    done = False
                    while not done:
                        _, _, done, _, _ = self.env.step(self.predict(None))
            def predict(self, observation, deterministic=True):
                return np.array([0.5], dtype=np.float32)
            def save(self, path): pass
            def load(self, path): pass
    '''))
    info = tmp_path / "my_pruner-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pruner\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prune_gym.agents]\nhalf = my_pruner:HalfAgent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "half" in list_agents()
    env = recorded(enforce_budget=False)
    make_agent("half", env).learn(2)
    assert [e.rates for e in env.episodes] == [(0.5, 0.5), (0.5, 0.5)]
    sys.modules.pop("my_pruner", None)
