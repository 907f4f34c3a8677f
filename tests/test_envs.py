"""FilterSelect-v0 and LayerRate-v0: construction, spaces, episodes, info, determinism, bad input, checkers."""

import dataclasses
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import prune_gym
from prune_gym.pruning import count_macs_params
from prune_gym.tasks import evaluate

DIGITS = dict(task="lenet5-digits", reward_samples=200)
VARIANTS = [
    ("LayerRate-v0", {}),
    ("LayerRate-v0", {"observation": "filters", "enforce_budget": False}),
    ("FilterSelect-v0", {}),
    ("FilterSelect-v0", {"action_type": "continuous", "reward": "shaped"}),
]


def make(env_id: str = "LayerRate-v0", **kwargs) -> gym.Env:
    return gym.make(f"prune_gym:{env_id}", **{**DIGITS, **kwargs})


def run_episode(env: gym.Env, actions=None, seed: int | None = 0):
    observation, info = env.reset(seed=seed)
    observations, rewards, infos = [observation], [], [info]
    t, done = 0, False
    while not done:
        action = actions[t] if actions is not None else env.action_space.sample()
        observation, reward, done, truncated, info = env.step(action)
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
        t += 1
    return observations, rewards, infos


def test_make_without_prior_import_registers_both_ids():
    code = ("import gymnasium as gym; env = gym.make('prune_gym:LayerRate-v0', reward_samples=50); "
            "print(sorted(i for i in gym.registry if i.endswith(('FilterSelect-v0', 'LayerRate-v0'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "FilterSelect-v0" in out and "LayerRate-v0" in out


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"reward": "nope"}, ["reward", "nope", "amc-flops"]),
        ({"macs_budget": 1.5}, ["macs_budget", "1.5", "(0, 1]"]),
        ({"params_budget": 0}, ["params_budget", "0", "(0, 1]"]),
        ({"observation": "pixels"}, ["observation", "pixels", "layer"]),
        ({"task": "no-such-task"}, ["no-such-task", "lenet5-digits"]),
        ({"criterion": "magic"}, ["criterion", "magic", "l1"]),
        ({"reward_samples": 0}, ["reward_samples", "0"]),
        ({"render_mode": "video"}, ["render_mode", "video", "ansi", "rgb_array"]),
        ({"bn_recalibration": -1}, ["bn_recalibration", "-1", ">= 0"]),
        ({"bn_recalibration": 100}, ["bn_recalibration", "lenet5-digits", "no BatchNorm"]),
    ],
)
def test_invalid_arguments_fail_at_make_naming_argument_value_and_choices(kwargs, words):
    with pytest.raises(ValueError) as error:
        make(**kwargs)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("env_id, kwargs", VARIANTS)
def test_third_party_checkers_accept_every_variant(env_id, kwargs):
    gym_check_env(make(env_id, **kwargs).unwrapped, skip_render_check=True)
    sb3_check_env(make(env_id, **kwargs).unwrapped, warn=False)


@pytest.mark.parametrize("env_id, kwargs", VARIANTS)
def test_episode_info_and_export(env_id, kwargs):
    env = make(env_id, **kwargs)
    base = env.unwrapped
    observations, rewards, infos = run_episode(env)
    assert len(rewards) == base.network.num_groups
    for obs in observations:
        assert env.observation_space.contains(obs)
    for step, info in enumerate(infos):
        assert info["group_index"] == step
        assert info["macs_ratio"] == pytest.approx(info["macs"] / base.network.original_macs)
        assert info["params_ratio"] == pytest.approx(info["params"] / base.network.original_params)
    final = infos[-1]
    assert 0.0 <= final["score"] <= 1.0
    assert len(final["kept_channels"]) == len(final["keep_mask"]) == base.network.num_groups
    assert all(k >= 1 for k in final["kept_channels"])
    assert final["budget_met"] == (final["macs_ratio"] <= base.macs_budget)
    exported = base.export()
    assert count_macs_params(exported, base.network.input_shape) == (final["macs"], final["params"])
    if base.enforce_budget:
        assert final["budget_met"]


def test_layer_rate_applies_the_rate_with_the_ranking_criterion():
    env = make(enforce_budget=False, criterion="std")
    base = env.unwrapped
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5], dtype=np.float32))
    group = base.network.groups[0]
    expected = base.ranking.keep_most_important(0, round(group.num_channels * 0.5), "std")
    np.testing.assert_array_equal(base.state.keep[0], expected)
    assert info["rate_pruned"] == pytest.approx(1 - expected.sum() / group.num_channels)


def test_budget_enforcement_clips_like_amc_and_reports_it():
    env = make(macs_budget=0.2, enforce_budget=True)
    _, _, infos = run_episode(env, actions=[np.zeros(1, np.float32)] * 8)
    assert any(info.get("budget_clipped") for info in infos[1:])
    assert infos[-1]["budget_met"]
    assert infos[1]["action_rate"] == 0.0 and infos[1]["rate_pruned"] > 0.0


@pytest.mark.parametrize("env_id", ["LayerRate-v0", "FilterSelect-v0"])
def test_a_parameter_budget_is_enforced_like_the_macs_budget(env_id):
    """AMC's model-size mode: macs_budget=1 and params_budget=0.5; keeping everything is clipped until the
    parameters fit, the MACs are free, and uniform pruning under the parameter budget meets it too."""
    env = gym.make(env_id, task="lenet5-digits", macs_budget=1.0, params_budget=0.5, reward_samples=100)
    network = env.unwrapped.network
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        keep_all = np.zeros(1, np.float32) if env_id == "LayerRate-v0" else np.ones(env.action_space.shape, np.int8)
        _, _, done, _, info = env.step(keep_all)
    assert info["budget_met"] and info["params_ratio"] <= 0.5 and info["params"] <= 0.5 * network.original_params
    assert info["macs_ratio"] < 1.0  # the parameters of the conv layers feeding the classifier went with them
    budget = env.unwrapped.rate_budget()
    counts = budget.uniform_counts()
    assert budget.meets_budget(counts) and not budget.meets_budget(counts + 1)
    shown = gym.make(env_id, task="lenet5-digits", params_budget=0.5, reward_samples=100, render_mode="ansi")
    shown.reset(seed=0)
    assert "budget 50% of the MACs, 50% of the params" in shown.render()


def test_filter_select_spaces_mask_and_ignored_padding():
    env = make("FilterSelect-v0")
    base = env.unwrapped
    widths = [g.num_channels for g in base.network.groups]
    assert env.action_space == gym.spaces.MultiBinary(max(widths))
    _, info = env.reset(seed=0)
    assert info["action_mask"].sum() == widths[0]
    action = np.zeros(max(widths), dtype=np.int8)
    action[:3] = 1
    action[widths[0]:] = 1  # past the group's width: ignored
    _, _, _, _, info = env.step(action)
    assert info["kept"] == 3 and info["action_mask"].sum() == widths[1]
    _, _, _, _, info = env.step(np.zeros(max(widths), dtype=np.int8))
    assert info["kept"] == 1, "dropping every filter keeps the most important one"


def test_same_seed_and_actions_give_same_episode_and_reset_restores_weights():
    env = make("FilterSelect-v0", action_type="continuous", reward="shaped")
    weights = {k: v.clone() for k, v in env.unwrapped.network.model.state_dict().items()}
    rng = np.random.default_rng(0)
    actions = [rng.random(env.action_space.shape).astype(np.float32) for _ in range(env.unwrapped.network.num_groups)]
    first = run_episode(env, actions, seed=3)
    second = run_episode(env, actions, seed=3)
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    assert first[1] == second[1]
    for key, value in env.unwrapped.network.model.state_dict().items():
        assert torch.equal(value, weights[key])
    observation, info = env.reset(seed=3)
    np.testing.assert_array_equal(observation, first[0][0])
    assert info["macs_ratio"] == 1.0


@pytest.mark.parametrize("bad", [np.array([np.nan], np.float32), np.array([np.inf], np.float32), np.zeros(2, np.float32), "x"])
def test_bad_actions_raise_naming_the_space(bad):
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="Box"):
        env.unwrapped.step(bad)


def test_out_of_range_values_are_clipped_and_counted_and_step_after_end_raises():
    env = make(enforce_budget=False)
    env.reset(seed=0)
    _, _, _, _, info = env.unwrapped.step(np.array([1.7], np.float32))
    assert info["clipped_values"] == 1 and info["kept"] == 1, "rate 1 still keeps one channel"
    _, _, done, _, info = env.unwrapped.step(np.array([-3.0], np.float32))
    assert done and info["clipped_values"] == 1 and info["rate_pruned"] == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.array([0.5], np.float32))
    binary = make("FilterSelect-v0")
    binary.reset(seed=0)
    with pytest.raises(ValueError, match="MultiBinary"):
        binary.unwrapped.step(np.full(binary.action_space.shape, 2))


def test_reward_split_only_no_test_split():
    env = make()
    base = env.unwrapped
    splits = base.task.splits()
    assert torch.equal(base.evaluator.x.cpu(), splits.reward_x[:200])
    assert not any(torch.equal(base.evaluator.x[:5].cpu(), splits.test_x[i:i + 5]) for i in range(0, 50, 5))


def test_render_ansi_lists_decisions():
    env = make(render_mode="ansi")
    run_episode(env)
    text = env.render()
    assert "conv" in text.lower() or ("features" in text and "MACs" in text)
    assert len(text.strip().splitlines()) == env.unwrapped.network.num_groups + 2


def test_async_vector_env_runs_episodes():
    # spawn, not fork: a forked child of a process whose torch thread pool is running can deadlock
    envs = gym.make_vec("prune_gym:LayerRate-v0", num_envs=2, vectorization_mode="async",
                        vector_kwargs={"context": "spawn"}, **DIGITS)
    assert isinstance(envs, gym.vector.AsyncVectorEnv)
    try:
        envs.reset(seed=0)
        finished = 0
        for _ in range(4):
            _, rewards, terminated, _, _ = envs.step(envs.action_space.sample())
            finished += int(terminated.sum())
            assert np.all(np.isfinite(rewards))
        assert finished >= 2
    finally:
        envs.close()


# --------------------------------------------------------------------- rewards
class TwoGroupNetwork:
    """The static description an EpisodeState needs, for two groups of 4 channels: 1e6 MACs, 5e4 params unpruned."""

    num_groups = 2
    original_macs, original_params = 1_000_000, 50_000
    groups = (None, None)


def episode_state(macs=400_000, done=True, group_index=None, keep=((1, 1, 0, 0), (1, 0, 0, 0)), evaluate=lambda: 0.9, **overrides):
    """The state after deciding both groups (or ``group_index`` of them), built by hand: no environment needed."""
    state = prune_gym.EpisodeState(network=TwoGroupNetwork(), importance=None, macs_budget=0.5, score_before=0.95,
                                   group_index=(2 if done else 1) if group_index is None else group_index,
                                   keep=tuple(np.array(k, bool) for k in keep), macs=macs, params=20_000,
                                   previous_macs=600_000, previous_rate=0.75, evaluate=evaluate)
    return dataclasses.replace(state, **overrides)


def test_reward_presets_match_their_papers():
    reward = lambda name, state, **kw: prune_gym.get_reward(name).function(state, **kw)  # noqa: E731
    state = episode_state()
    assert reward("error", state) == pytest.approx(-0.1)
    assert reward("amc-flops", state) == pytest.approx(-0.1 * math.log(400_000))
    assert reward("amc-params", state) == pytest.approx(-0.1 * math.log(20_000))
    assert reward("error", episode_state(done=False)) == 0.0
    psi, phi = (0.02 - 0.05) / 0.02, math.log(1 / 0.25)
    assert reward("try-and-learn", state, drop_allowance=0.02) == pytest.approx(psi * phi)
    assert reward("try-and-learn", episode_state(done=False, evaluate=lambda: 0.94), drop_allowance=0.1) == pytest.approx(0.9 * math.log(2))
    assert reward("budget-penalty", episode_state(macs=750_000), penalty=2.0) == pytest.approx(-0.1 - 2.0 * 0.25 / 0.5)
    assert reward("budget-penalty", state) == pytest.approx(-0.1)
    assert set(prune_gym.list_rewards()) >= {"error", "amc-flops", "amc-params", "try-and-learn", "shaped", "budget-penalty"}


def test_shaped_reward_is_potential_based_returns_equal_sparse_accuracy():
    env_shaped = make(reward="shaped", enforce_budget=False)
    env_sparse = make(reward="error", enforce_budget=False)
    actions = [np.array([0.3], np.float32), np.array([0.6], np.float32)]
    _, shaped, _ = run_episode(env_shaped, actions)
    _, sparse, _ = run_episode(env_sparse, actions)
    assert shaped[0] > 0, "pruning towards the budget earns an immediate shaping reward"
    assert sum(shaped) == pytest.approx(sum(sparse), abs=1e-9)


def test_register_reward_and_use_it_at_make():
    name = "test-accuracy-per-mac"

    @prune_gym.register_reward(name, overwrite=True)
    def accuracy_per_mac(state, scale=1.0):
        return scale * state.score / state.macs_ratio if state.done else 0.0

    assert name in prune_gym.list_rewards()
    with pytest.raises(ValueError, match="already registered"):
        prune_gym.register_reward(name, accuracy_per_mac)
    _, rewards, infos = run_episode(make(reward=name, reward_kwargs={"scale": 2.0}))
    assert rewards[-1] == pytest.approx(2.0 * infos[-1]["score"] / infos[-1]["macs_ratio"])
    _, rewards, _ = run_episode(make(reward=lambda state: 1.0))
    assert rewards == [1.0] * len(rewards)


def test_dense_rewards_evaluate_each_step_and_repeated_masks_hit_the_cache():
    env = make("FilterSelect-v0", reward="try-and-learn", enforce_budget=False)
    ones = np.ones(env.action_space.shape, dtype=np.int8)
    _, rewards, infos = run_episode(env, [ones, ones])
    assert rewards == [0.0, 0.0], "keeping everything: phi = log(1) = 0"
    assert infos[-1]["cache_hits"] >= 1


# ------------------------------------------------------------- RL libraries
def test_sb3_ppo_runs_episodes_on_both_envs():
    from stable_baselines3 import PPO

    for env_id in ("LayerRate-v0", "FilterSelect-v0"):
        env = make(env_id)
        model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, verbose=0)
        model.learn(total_timesteps=16)
        assert model.num_timesteps >= 16


def test_residual_groups_on_resnet20_cifar10_subset(resnet20_subset_checkpoint):
    env = make("LayerRate-v0", task="resnet20-cifar10-subset", reward_samples=100)
    base = env.unwrapped
    assert base.network.num_groups < sum(1 for layer in base.network.layers if layer.kind == "conv")
    _, _, infos = run_episode(env)
    assert infos[-1]["budget_met"]
    exported = base.export()
    assert count_macs_params(exported, base.network.input_shape)[0] == infos[-1]["macs"]
    gym_check_env(make("FilterSelect-v0", task="resnet20-cifar10-subset", reward_samples=100).unwrapped, skip_render_check=True)


def test_bn_recalibration_makes_heavily_pruned_resnet_accuracy_informative(resnet20_subset_checkpoint):
    fifth = [np.array([0.2], dtype=np.float32)] * 12
    plain = make("LayerRate-v0", task="resnet20-cifar10-subset", reward_samples=500, enforce_budget=False)
    recalibrated = make("LayerRate-v0", task="resnet20-cifar10-subset", reward_samples=500, enforce_budget=False, bn_recalibration=200)
    plain_info, info = run_episode(plain, fifth)[2][-1], run_episode(recalibrated, fifth)[2][-1]
    original = {k: v.clone() for k, v in recalibrated.unwrapped.network.model.state_dict().items()}
    assert info["macs_ratio"] < 0.7
    assert info["score"] > plain_info["score"] + 0.1  # measured: 1-epoch checkpoint 0.098 -> 0.256, 30 epochs 0.200 -> 0.522
    exported = recalibrated.unwrapped.export()
    splits = recalibrated.unwrapped.task.splits()
    assert evaluate(exported, splits.reward_x[:500], splits.reward_y[:500]) == pytest.approx(info["score"])
    for name, tensor in recalibrated.unwrapped.network.model.state_dict().items():
        assert torch.equal(tensor, original[name]), f"{name} of the original model changed"


def test_tianshou_ddpg_runs_episodes_on_filter_select():
    from prune_gym.wrappers import EpisodeRecorder
    from prune_gym_agents.tianshou import TianshouAgent

    env = EpisodeRecorder(make("FilterSelect-v0", action_type="continuous"))
    TianshouAgent(env, seed=0, algorithm="DDPG").learn(4)
    assert len(env.episodes) == 4 and all(e.budget_met for e in env.episodes)


def test_recovery_restores_the_pruned_network_and_everything_follows_the_tuned_weights():
    env = make("LayerRate-v0", enforce_budget=False).unwrapped
    run_episode(env, actions=[np.array([0.8], dtype=np.float32)] * env.network.num_groups)
    keep = env.last_keep_mask
    pruned_accuracy, l1_before = env.evaluator.score(keep), [s.copy() for s in env.ranking.scores("l1")]
    accuracy_before = env.score_before

    tuned_accuracy = env.recover(keep, steps=30)

    assert tuned_accuracy >= pruned_accuracy + 0.2  # 0.575 -> 0.91 on 200 reward images
    assert env.weights_changed and env.score_before == accuracy_before
    assert env.evaluator.score(keep) == tuned_accuracy
    splits = env.task.splits()
    assert evaluate(env.network.export(keep), splits.reward_x[:200], splits.reward_y[:200]) == pytest.approx(tuned_accuracy)
    assert not np.allclose(env.ranking.scores("l1")[0], l1_before[0])
    with pytest.raises(ValueError, match="steps"):
        env.recover(keep, steps=0)
    with pytest.raises(ValueError, match="at least one channel"):
        env.recover([np.zeros_like(m) for m in keep])


def test_filled_uniform_pruning_uses_the_whole_budget():
    """One common rate undershoots the budget; the filled uniform counts give channels back, most-pruned group first,
    until no single channel more fits."""
    env = gym.make("LayerRate-v0", task="cnn5-digits", macs_budget=0.5, reward_samples=100).unwrapped
    budget, original = env.rate_budget(), env.network.original_macs
    uniform = budget.uniform_counts()
    filled = budget.uniform_counts(filled=True)
    macs = [env.network.macs_params(budget.keep_masks(counts))[0] / original for counts in (uniform, filled)]
    assert macs[0] < 0.49 < macs[1] <= 0.5 and np.all(filled >= uniform)
    for group in np.flatnonzero(filled < budget.channels):
        assert not budget.meets_budget(filled + np.eye(len(filled), dtype=int)[group])
