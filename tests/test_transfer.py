"""The transfer track on tiny real tasks: the pair sampler's seeding, the budget observation, training on train pairs,
zero-shot and few-shot runs on a held-out network, and the agents that cannot transfer."""

import json
import re
import shlex
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prune_gym
from prune_gym import PairSampler
from prune_gym.agent_api import transfers
from prune_gym.benchmark import Entry, Recovery, Suite, Transfer, get_suite, register_suite
from prune_gym.benchmark.runner import run_benchmark
from prune_gym.cli import main

_PROXY = {"reward_samples": 100, "bn_recalibration": 50, "observation": "layer-budget"}
_LENET = {"reward_samples": 100, "observation": "layer-budget"}  # LeNet-5 has no BatchNorm to recalibrate
TINY_TRANSFER = register_suite(Suite(
    "test-transfer-v0",
    entries=(Entry("cnn5-digits", "LayerRate-v0", 0.5, episodes=3, env_kwargs=_PROXY),),
    seeds=(0,), recovery=Recovery(steps=0, seeds=(0,)), filled_uniform=True,
    transfer=Transfer(train=(Entry("lenet5-digits", "LayerRate-v0", 0.3, env_kwargs=_LENET),
                             Entry("lenet5-digits", "LayerRate-v0", 0.6, env_kwargs=_LENET)), episodes=6),
), overwrite=True)


def _pairs(budgets=(0.3, 0.6), task="lenet5-digits"):
    return [gym.make("LayerRate-v0", task=task, macs_budget=budget, reward_samples=50, observation="layer-budget")
            for budget in budgets]


def _drawn(sampler, seed, resets=12):
    drawn = [sampler.reset(seed=seed)[1]["pair"]]
    return drawn + [sampler.reset()[1]["pair"] for _ in range(resets - 1)]


def test_the_pair_sampler_draws_the_same_pairs_for_the_same_seed():
    sampler = PairSampler(_pairs(), names=["a", "b"])
    first = _drawn(sampler, seed=7)
    assert set(first) == {"a", "b"}  # 12 fair draws of two pairs: both appear (probability 1 - 2^-11)
    assert _drawn(sampler, seed=7) == first  # a seeded reset restarts the draw
    assert _drawn(PairSampler(_pairs(), names=["a", "b"]), seed=7) == first  # and so does a new sampler
    assert _drawn(sampler, seed=8) != first
    observation, info = sampler.reset(seed=7)
    assert info["pair"] == first[0] and sampler.unwrapped.macs_budget == {"a": 0.3, "b": 0.6}[first[0]]
    assert observation.shape == (13,) and observation[-2:].tolist() == pytest.approx([sampler.unwrapped.macs_budget, 1.0])
    done, steps = False, 0
    while not done:
        observation, _, terminated, truncated, info = sampler.step(np.array([0.5], dtype=np.float32))
        done, steps = terminated or truncated, steps + 1
    assert info["pair"] == first[0] and steps == sampler.unwrapped.network.num_groups
    sampler.close()


def test_the_pair_sampler_refuses_pairs_with_other_spaces():
    mixed = [*_pairs(budgets=(0.5,)), gym.make("FilterSelect-v0", task="lenet5-digits", reward_samples=50)]
    with pytest.raises(ValueError, match="every pair needs the same spaces") as error:
        PairSampler(mixed, names=["rates", "filters"])
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="one name per environment"):
        PairSampler(_pairs(), names=["only-one"])


def test_the_budget_observation_is_the_layer_embedding_and_the_budgets():
    env = gym.make("LayerRate-v0", task="cnn5-digits", macs_budget=1.0, params_budget=0.4, reward_samples=50,
                   observation="layer-budget")
    layer = gym.make("LayerRate-v0", task="cnn5-digits", macs_budget=1.0, params_budget=0.4, reward_samples=50)
    observation, _ = env.reset(seed=0)
    plain, _ = layer.reset(seed=0)
    assert env.observation_space.shape == (13,) and observation[:11].tolist() == plain.tolist()
    assert observation[11:].tolist() == pytest.approx([1.0, 0.4])


def test_policies_declare_that_they_transfer_and_searches_do_not():
    assert transfers("ddpg") and transfers("sb3:SAC") and transfers("tianshou:SAC")
    assert not any(transfers(agent) for agent in ("cma-es", "random-search", "tpe", "uniform", "global"))
    transfer = get_suite("transfer-v0")
    assert transfer.transfer is not None and {e.name for e in transfer.transfer.train}.isdisjoint(e.name for e in transfer.entries)
    with pytest.raises(ValueError, match="holds out an entry it also trains on"):
        Suite("bad-transfer-v0", entries=TINY_TRANSFER.transfer.train[:1], seeds=(0,), transfer=TINY_TRANSFER.transfer)


def test_ddpg_trains_on_the_pairs_then_prunes_a_network_it_never_saw(tmp_path):
    """Zero-shot: one deterministic episode on the held-out network, scored like every run; few-shot reuses the same
    training and learns for the entry's evaluations; the training happened once, on both train pairs."""
    trained = tmp_path / "trained"
    agent_kwargs = {"warmup_episodes": 3}
    zero = run_benchmark("ddpg", TINY_TRANSFER.name, tmp_path / "zero", agent_kwargs=agent_kwargs, zero_shot=True,
                         trained=trained, progress=False)
    assert zero["transfer"] == "zero-shot" and not zero["failed"], zero["failed"]
    (run,) = zero["runs"]
    assert run["entry"] == "cnn5-digits/LayerRate-0.5" and run["episodes"] == 1 and run["evaluations"] == 1
    assert run["budget_met"] and run["macs_ratio"] <= 0.5 and np.isfinite(run["normalised"])
    record = json.loads((trained / "seed-0" / "trained.json").read_text())
    assert record["episodes"] == 6 and {step["pair"] for step in record["curve"]} <= {e.name for e in TINY_TRANSFER.transfer.train}
    assert len(record["curve"]) == 6 and list(trained.glob("seed-0/agent*"))
    stamp = (trained / "seed-0" / "trained.json").stat().st_mtime_ns
    few = run_benchmark("ddpg", TINY_TRANSFER.name, tmp_path / "few", agent_kwargs=agent_kwargs, trained=trained,
                        progress=False)
    assert few["transfer"] == "few-shot" and not few["failed"], few["failed"]
    assert few["runs"][0]["evaluations"] == 3 and (trained / "seed-0" / "trained.json").stat().st_mtime_ns == stamp
    config = json.loads((tmp_path / "few" / "cnn5-digits_LayerRate-0.5" / "seed-0" / "config.json").read_text())
    assert config["agent_state"] == str((trained / "seed-0" / "agent").resolve()) and not config["act_only"]


def test_a_search_gets_the_few_shot_evaluations_from_scratch_and_no_zero_shot(tmp_path, capsys):
    result = run_benchmark("random-search", TINY_TRANSFER.name, tmp_path / "random", progress=False)
    assert result["transfer"] == "from scratch" and result["runs"][0]["evaluations"] == 3
    assert not (tmp_path / "random" / "trained").exists()
    assert main(["benchmark", "--agent", "cma-es", "--suite", TINY_TRANSFER.name, "--zero-shot", "--out",
                 str(tmp_path / "cma"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "does not transfer" in error and "\n" not in error and not (tmp_path / "cma").exists()
    assert main(["benchmark", "--agent", "ddpg", "--suite", "quick-v1", "--zero-shot", "--out", str(tmp_path / "q"),
                 "--quiet"]) == 2
    assert "has no transfer track" in capsys.readouterr().err


def test_a_run_refuses_an_agent_state_that_is_not_there(tmp_path):
    spec = prune_gym.RunSpec(task="lenet5-digits", agent="ddpg", episodes=1, agent_state=str(tmp_path / "nothing" / "agent"))
    with pytest.raises(ValueError, match="no file starts with that prefix"):
        prune_gym.run_search(spec, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _readme_transfer_blocks(language):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("\n## The transfer track (`transfer-v0`)\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_transfer_agent_takes_part_through_the_cli(tmp_path, monkeypatch):
    """The README's third-party agent, from its file, through the README's commands on a small transfer suite: trained
    once on the train pairs, zero-shot and few-shot on the held-out network, beside CMA-ES from scratch."""
    (agent_code,) = _readme_transfer_blocks("python")
    (commands,) = _readme_transfer_blocks("bash")
    (tmp_path / "depth_profile.py").write_text(agent_code)
    monkeypatch.chdir(tmp_path)
    for command in commands.strip().splitlines():
        words = shlex.split(command.replace("transfer-v0", TINY_TRANSFER.name))
        assert words[0] == "prune-gym" and main([*words[1:], "--quiet"]) == 0, command
    zero, few, cma = (json.loads((tmp_path / "results" / name / "results.json").read_text())
                      for name in ("depth-zero", "depth-few", "cma-es"))
    assert (zero["transfer"], few["transfer"], cma["transfer"]) == ("zero-shot", "few-shot", "from scratch")
    assert [run["evaluations"] for run in (*zero["runs"], *few["runs"], *cma["runs"])] == [1, 3, 3]
    trained = json.loads((tmp_path / "results" / "depth-trained" / "seed-0" / "trained.json").read_text())
    state = json.loads((tmp_path / "results" / "depth-trained" / "seed-0" / "agent").read_text())
    assert trained["agent"].endswith("depth_profile.py:DepthProfileAgent") and len(trained["curve"]) == 6
    assert set(state["best_returns"]) == {"0.3", "0.6"}  # it learnt on both train budgets, as the observation gives them
    assert zero["runs"][0]["budget_met"] and few["runs"][0]["budget_met"]


def test_a_replay_buffer_moves_to_a_network_with_fewer_groups_keeping_its_newest_transitions():
    """AMC's DDPG holds 100 episodes of the network's length: trained on ResNet-20 (12 groups), its 1200 transitions
    do not fit CNN5's 500. The newest that fit are kept, oldest first; a buffer of the same size is restored exactly."""
    from stable_baselines3.common.buffers import ReplayBuffer

    from agents.sb3.adapter import _restore_buffer

    space = gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)

    def buffer(size):
        return ReplayBuffer(size, space, space, device="cpu")

    trained = buffer(6)
    for step in range(9):  # a full ring: positions hold steps 6, 7, 8, 3, 4, 5 and the next write goes to 3
        value = np.array([[step]], dtype=np.float32)
        trained.add(value, value, value, np.array([step]), np.array([False]), [{}])
    saved = {"observations": trained.observations.copy(), "rewards": trained.rewards.copy()}
    same = buffer(6)
    _restore_buffer(same, saved, trained.pos, trained.full)
    assert same.pos == 3 and same.full and same.rewards[:, 0].tolist() == [6, 7, 8, 3, 4, 5]
    smaller = buffer(4)
    _restore_buffer(smaller, saved, trained.pos, trained.full)
    assert smaller.rewards[:, 0].tolist() == [5, 6, 7, 8] and smaller.pos == 0 and smaller.full
    larger = buffer(10)
    _restore_buffer(larger, saved, trained.pos, trained.full)
    assert larger.rewards[:6, 0].tolist() == [3, 4, 5, 6, 7, 8] and larger.pos == 6 and not larger.full


def test_the_leaderboard_script_renders_a_transfer_section(tmp_path, monkeypatch):
    """benchmarks/leaderboard.py on a small transfer suite: zero-shot and few-shot rows for DDPG, a from-scratch row
    for random search and uniform pruning, the sentence on transfer and the published training curves."""
    import importlib.util
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "leaderboard.py"
    spec = importlib.util.spec_from_file_location("leaderboard_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [module.folder_name(agent, overrides, zero) for agent, _, overrides, zero in module.rows(TINY_TRANSFER)]
    assert {"ddpg", "ddpg-zero-shot", "cma-es", "uniform-criterion-l1"} <= set(rows) and "cma-es-zero-shot" not in rows
    output, publish = tmp_path / "LEADERBOARD.md", tmp_path / "published"
    monkeypatch.setattr(sys, "argv", ["leaderboard.py", "--suite", TINY_TRANSFER.name, "--out", str(tmp_path / "runs"),
                                      "--publish", str(publish), "--output", str(output),
                                      "--agents", "uniform-criterion-l1", "random-search", "ddpg", "ddpg-zero-shot"])
    module.main()
    section = output.read_text()
    assert "| ddpg warmup_episodes=50 zero-shot |" in section and "| ddpg warmup_episodes=50 few-shot |" in section
    assert "| random-search from scratch |" in section and "**Transfer:** the best learned policy" in section
    assert "Agents that transfer first learn for 6 episodes" in section and "### Proxy fidelity" not in section
    (curves,) = json.loads((publish / TINY_TRANSFER.name / "trained" / "ddpg.json").read_text())
    assert len(curves["curve"]) == 6 and (publish / TINY_TRANSFER.name / "training.png").exists()
    assert "![training]" in section


def test_a_tianshou_policy_trained_on_the_sampler_loads_on_a_held_out_network(tmp_path):
    """tianshou keeps the steps' infos in its buffer: the sampler's ``pair`` (a string) must stay out of it, or the
    saved state, read without pickle, cannot be loaded on the held-out entry."""
    result = run_benchmark("tianshou:SAC", TINY_TRANSFER.name, tmp_path / "sac", agent_kwargs={"warmup_episodes": 2},
                           zero_shot=True, progress=False)
    assert not result["failed"], result["failed"]
    assert result["runs"][0]["budget_met"] and result["runs"][0]["evaluations"] == 1


def test_a_run_that_failed_before_it_started_is_retried(tmp_path):
    """A run that failed before its search started (a held-out agent whose trained state did not load) leaves only its
    failed.json; the next benchmark runs it instead of refusing a folder that is not empty."""
    out = tmp_path / "random"
    folder = out / TINY_TRANSFER.entries[0].slug / "seed-0"
    folder.mkdir(parents=True)
    (folder / "failed.json").write_text(json.dumps({"entry": TINY_TRANSFER.entries[0].name, "seed": 0, "agent": "random-search",
                                                     "status": "failed", "error": "RunError: cannot load agent_state"}))
    result = run_benchmark("random-search", TINY_TRANSFER.name, out, progress=False)
    assert not result["failed"] and len(result["runs"]) == 1 and not (folder / "failed.json").exists()
