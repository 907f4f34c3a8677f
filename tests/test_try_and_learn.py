"""Try-and-learn as the paper runs it (lenet5-digits) and the evaluator's prefix cache that makes its trials cheap."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import prune_gym
from prune_gym.observations import feature_criteria
from prune_gym.pruning import PrunableNetwork
from prune_gym.pruning.compact import CompactNetwork
from prune_gym.pruning.evaluation import MaskEvaluator
from prune_gym.tasks.data import load_dataset
from prune_gym.wrappers import EpisodeRecorder
from prune_gym_agents.try_and_learn import FilterPolicy, TryAndLearnAgent, fit_drop_allowance, learn_decision

FAST = {"trials_per_update": 4, "max_updates_per_layer": 3, "recovery_steps": 10}


def recorded(drop_allowance: float = 0.02, **kwargs) -> EpisodeRecorder:
    return EpisodeRecorder(gym.make("prune_gym:FilterSelect-v0", task="lenet5-digits", reward="try-and-learn",
                                    reward_kwargs={"drop_allowance": drop_allowance}, enforce_budget=False,
                                    reward_samples=300, **kwargs))


def decision_macs_ratio(agent: TryAndLearnAgent) -> float:
    network = agent.pruning_env.network
    return network.macs_params(agent.decision)[0] / network.original_macs


def test_one_policy_network_serves_layers_of_any_width():
    env = recorded()
    agent = TryAndLearnAgent(env, seed=0)
    assert [agent.keep_probabilities(layer).shape for layer in range(2)] == [(6,), (16,)]
    np.testing.assert_allclose(agent.keep_probabilities(1), 0.5, rtol=1e-6)
    policy = FilterPolicy(features=5, hidden=8, initial_keep=0.5)
    for width in (1, 3, 512):
        assert policy(torch.randn(width, 5)).shape == (width,)
    features = agent.features(1)
    assert agent.criteria == feature_criteria() and features.shape == (16, len(agent.criteria))
    np.testing.assert_allclose(features[:, agent.criteria.index("l1")].mean(), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="sparse"):
        TryAndLearnAgent(gym.make("prune_gym:FilterSelect-v0", task="lenet5-digits", reward="error"))
    with pytest.raises(ValueError, match="convergence"):
        TryAndLearnAgent(env, convergence=0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"trials_per_update": 1}, "trials_per_update=1: expected an integer >= 2"),
    ({"hidden": True}, "hidden=True: expected an integer >= 1"),
    ({"initial_keep": 1.0}, r"initial_keep=1.0: expected a number in \(0, 1\)"),
    ({"lr": 0}, "lr=0: expected a positive learning rate"),
])
def test_bad_hyperparameters_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"invalid {message}"):
        TryAndLearnAgent(recorded(), **kwargs)


@pytest.mark.parametrize("kwargs, message", [({"macs_budget": 1.0}, "macs_budget=1.0"), ({"probes": 0}, "probes=0")])
def test_bad_drop_allowance_search_arguments_fail_before_any_run(kwargs, message):
    with pytest.raises(ValueError, match=f"invalid {message}"):
        fit_drop_allowance(lambda b: pytest.fail("no run may start"), **{"macs_budget": 0.5, **kwargs})


def test_layers_are_learned_in_order_with_fine_tuning_between_them():
    env = recorded()
    agent = TryAndLearnAgent(env, seed=0, **FAST)
    pretrained = env.unwrapped.network.model.features[0].weight.detach().clone()
    agent.learn(4 * 3)
    assert agent.learned_layers == 0 and agent.decision_pending
    assert all(e.kept_channels[1] == 16 for e in env.episodes), "later layers keep every filter while layer 0 learns"
    agent.learn(1)
    assert agent.learned_layers == 1 and env.unwrapped.weights_changed
    assert not torch.equal(env.unwrapped.network.model.features[0].weight, pretrained), "fine-tuned after layer 0"
    agent.learn(4 * 3)
    for episode in env.episodes[-12:]:
        np.testing.assert_array_equal(episode.keep_mask[0], agent.decisions[0])
    agent.learn(2)
    assert agent.finished
    np.testing.assert_array_equal(np.concatenate(env.episodes[-1].keep_mask), np.concatenate(agent.decision))


@pytest.fixture(scope="module")
def paper_runs():
    """Complete runs at the default settings (fine-tuning on, no MACs budget) with b = 0.005, 0.02 and 0.1."""
    runs = {}
    for drop_allowance in (0.005, 0.02, 0.1):
        env = recorded(drop_allowance)
        agent = TryAndLearnAgent(env, seed=0)
        learn_decision(agent)
        runs[drop_allowance] = (agent, env)
    return runs


def test_the_learned_decision_prunes_without_budget_clipping(paper_runs):
    agent, env = paper_runs[0.02]
    last = env.episodes[-1]
    assert last.macs_ratio == pytest.approx(decision_macs_ratio(agent)), "the env applied the decision as it is"
    assert last.macs_ratio < 0.85
    assert last.score >= env.unwrapped.score_before - 0.02


def test_a_smaller_drop_allowance_prunes_less(paper_runs):
    ratios = [decision_macs_ratio(paper_runs[b][0]) for b in (0.005, 0.02, 0.1)]
    assert ratios[0] > ratios[2] and ratios[1] > ratios[2]


SHORT = {"trials_per_update": 4, "max_updates_per_layer": 4, "recovery_steps": 10}
"""The update budget of experiments/try_and_learn.py: 16 trials per layer."""


def test_a_short_update_budget_prunes_as_the_drop_allowance_allows():
    """The experiments' budget: a generous b prunes most of the network, a tiny one keeps more (trials that started at
    keep probability 0.9 never brought a filter below the 0.5 decision threshold, so every b kept every filter)."""
    ratios = {b: [] for b in (0.002, 0.3)}
    for b, seed in [(b, seed) for b in ratios for seed in (0, 1)]:
        agent = TryAndLearnAgent(recorded(b), seed=seed, **SHORT)
        learn_decision(agent)
        ratios[b].append(decision_macs_ratio(agent))
    assert np.mean(ratios[0.3]) < 0.6 and min(ratios[0.3]) < 0.5, "a generous b prunes most of the network"
    assert np.mean(ratios[0.002]) > np.mean(ratios[0.3]) + 0.2, "a tiny b keeps more"


def test_a_resumed_agent_continues_exactly(tmp_path):
    env = recorded()
    agent = TryAndLearnAgent(env, seed=3, **FAST)
    agent.learn(15)  # layer 0 fixed and fine-tuned, two trials of layer 1 sampled
    agent.save(tmp_path / "agent")
    weights = {k: v.clone() for k, v in env.unwrapped.network.model.state_dict().items()}
    agent.learn(12)
    resumed_env = recorded()
    resumed_env.unwrapped.load_state_dict(weights)
    resumed = TryAndLearnAgent(resumed_env, seed=99, **FAST)
    resumed.load(tmp_path / "agent")
    resumed.learn(12)
    assert [e.keep_mask for e in resumed_env.episodes] != [] and len(resumed_env.episodes) == 12
    for original, again in zip(env.episodes[-12:], resumed_env.episodes, strict=True):
        assert original.episode_return == again.episode_return
        np.testing.assert_array_equal(np.concatenate(original.keep_mask), np.concatenate(again.keep_mask))
    for name, tensor in env.unwrapped.network.model.state_dict().items():
        assert torch.equal(tensor, resumed_env.unwrapped.network.model.state_dict()[name]), name


def test_the_drop_allowance_search_meets_a_macs_budget():
    best, probes = fit_drop_allowance(recorded, macs_budget=0.7, probes=2, seed=0)
    assert probes[0].drop_allowance == pytest.approx((0.005 * 0.2) ** 0.5)
    first_within = probes[0].macs_ratio <= 0.7
    assert (probes[1].drop_allowance < probes[0].drop_allowance) == first_within, "within the budget: try a smaller b"
    assert best is not None and best.macs_ratio <= 0.7
    with pytest.raises(ValueError, match="macs_budget"):
        fit_drop_allowance(recorded, macs_budget=1.5)


def trial_masks(network: PrunableNetwork, rng: np.random.Generator, trials: int):
    """Try-and-learn's order of masks: layer by layer, earlier layers fixed, later whole; then unrelated random masks."""
    fixed = network.full_mask()
    for layer, group in enumerate(network.groups):
        for _ in range(trials):
            keep = [mask.copy() for mask in fixed]
            keep[layer] = rng.random(group.num_channels) < 0.6
            keep[layer][rng.integers(group.num_channels)] = True
            yield keep
        fixed[layer] = keep[layer]
    for _ in range(3):
        yield [np.append(rng.random(g.num_channels - 1) < 0.5, True) for g in network.groups]


@pytest.mark.data_absent
@pytest.mark.parametrize("name, recalibrate", [("lenet5", False), ("resnet20", False), ("resnet20", True), ("vgg16", True)])
def test_the_prefix_cache_gives_the_same_scores_and_is_used(name, recalibrate):
    try:
        data = load_dataset("digits" if name == "lenet5" else "cifar10-subset")
    except prune_gym.errors.DatasetUnavailableError as error:
        pytest.skip(str(error))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        torch.manual_seed(0)
        model = prune_gym.build_model(name).eval().to(device)
        x, y = data.x_test[:40], data.y_test[:40]
        network = PrunableNetwork(model, x[:1].to(device))
        calibration = data.x_train[:24] if recalibrate else None
        cached = MaskEvaluator(network, x, y, batch_size=16, cache_size=0, recalibration_x=calibration)
        full = MaskEvaluator(network, x, y, batch_size=16, cache_size=0, recalibration_x=calibration, prefix_cache_bytes=0)
        masks = list(trial_masks(network, np.random.default_rng(0), trials=2))
        assert [cached.score(m) for m in masks] == [full.score(m) for m in masks]
        batches = 3 + recalibrate
        assert cached.prefix_hits >= batches * (network.num_groups - 1) and full.prefix_hits == 0


def test_the_prefix_cache_gives_identical_logits_and_respects_its_bound():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = prune_gym.build_model("lenet5").eval()
    x = data.x_test[:32]
    network = PrunableNetwork(model, x[:1])
    compact = CompactNetwork(network)
    keep = network.full_mask()
    compact.load(keep)(x)
    keep[1] = np.arange(16) % 2 == 0
    compact.load(keep)(x)  # differs from group 1 on: records the cut before group 1
    keep[1] = np.arange(16) % 3 == 0
    with torch.inference_mode():
        logits = compact.load(keep)(x)
        assert compact.prefix_hits == 1 and torch.equal(logits, compact.model(x))
    tiny = CompactNetwork(network, cache_bytes=1)
    for mask in (network.full_mask(), keep, [keep[0], ~keep[1]]):
        tiny.load(mask)(x)
    assert tiny.prefix_hits == 0, "nothing fits in one byte: every pass runs the whole network"
    with pytest.raises(ValueError, match="cache_bytes"):
        CompactNetwork(network, cache_bytes=-1)
