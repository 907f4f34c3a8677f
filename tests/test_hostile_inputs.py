"""Hostile inputs (issue 22): each is refused in one line, or survives as the right result, never a traceback or silent nonsense.

Each test reproduces a defect: a device that holds no data, a user reward or observation that raises mid-episode,
damaged or foreign results and listing-cache files, a reward-split score of 0 in the search summary, and agent, reward
and observation parameters that were taken silently out of range. Where a user meets it on the command line, the test
runs ``prune-gym`` in a real subprocess on lenet5-digits.
"""

import json
import math
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from run_cli import assert_one_line_error, cli

import prune_gym
from prune_gym.agent_api import make_agent
from prune_gym.errors import RunError

SEARCH = ["search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet"]


def make(env_id: str = "LayerRate-v0", **kwargs):
    return gym.make(f"prune_gym:{env_id}", **{"task": "lenet5-digits", "reward_samples": 100, **kwargs})


@pytest.fixture(scope="module")
def env():
    environment = make()
    yield environment
    environment.close()


# ------------------------------------------------------------------ devices
@pytest.mark.parametrize("arguments", [["--env-arg", "device=meta"], ["--device", "meta"]])
def test_a_device_that_holds_no_data_is_refused_in_one_line_and_leaves_no_folder(tmp_path, arguments):
    run = tmp_path / "run"
    assert_one_line_error(cli(*SEARCH, "--agent", "uniform", "--episodes", "1", "--run-dir", str(run), *arguments),
                          "device='meta'", "holds data", "'cpu'")
    assert not run.exists()


@pytest.mark.parametrize("device", ["meta", torch.device("meta")])
def test_make_refuses_the_meta_device(device):
    with pytest.raises(ValueError, match="device=.*meta.*holds data"):
        make(device=device)


def test_a_backend_this_torch_cannot_hold_data_on_is_refused():
    if torch.xpu.is_available():
        pytest.skip("this machine has an XPU")
    with pytest.raises(ValueError, match=r"invalid device='xpu'.*use 'cpu'"):
        prune_gym.validation.check_device("device", "xpu")


# ------------------------------------------------------------- user rewards
REWARDS = '''
def divide(state):
    """Divides by zero at the end of the episode."""
    return 1.0 / 0 if state.done else 0.0


def raises(state):
    """Raises with a two-line message at the first step."""
    raise RuntimeError("the reward broke\\non two lines")
'''


@pytest.mark.parametrize("function, words", [
    ("divide", ["reward 'hostile_rewards:divide'", "ZeroDivisionError: float division by zero", "after group 1", "fix the reward"]),
    ("raises", ["reward 'hostile_rewards:raises'", "RuntimeError: the reward broke on two lines", "after group 0"]),
])
def test_a_reward_that_raises_during_the_search_stops_it_in_one_line(tmp_path, function, words):
    (tmp_path / "hostile_rewards.py").write_text(REWARDS)
    result = cli(*SEARCH, "--agent", "random-search", "--episodes", "2", "--run-dir", str(tmp_path / "run"),
                 "--reward", f"hostile_rewards:{function}", pythonpath=tmp_path)
    assert_one_line_error(result, *words)


def test_a_reward_that_raises_is_one_value_error_chained_to_the_original_and_changes_nothing():
    environment = make(reward=lambda state: 1.0 / 0 if state.group_index == 1 else 0.0)
    environment.reset(seed=0)
    with pytest.raises(ValueError, match="ZeroDivisionError") as error:
        environment.step(np.array([0.5], np.float32))
    assert "\n" not in str(error.value) and isinstance(error.value.__cause__, ZeroDivisionError)
    assert environment.unwrapped.state.group_index == 0, "the failed step left the episode where it was"


def test_a_failing_evaluation_is_not_blamed_on_the_reward(monkeypatch):
    environment = make()
    pruning_env = environment.unwrapped

    def broken(keep):
        raise RuntimeError("the evaluator broke")

    monkeypatch.setattr(pruning_env.evaluator, "score", broken)
    environment.reset(seed=0)
    environment.step(np.array([0.5], np.float32))
    with pytest.raises(RuntimeError, match="the evaluator broke"):  # the sparse reward reads state.score at the end
        environment.step(np.array([0.5], np.float32))


@pytest.mark.parametrize("reward, kwargs, words", [
    ("try-and-learn", {"drop_allowance": -0.1}, ["drop_allowance=-0.1", "positive"]),
    ("try-and-learn", {"drop_allowance": "much"}, ["drop_allowance='much'"]),
    ("shaped", {"weight": float("nan")}, ["weight=nan"]),
    ("shaped", {"weight": -1.0}, ["weight=-1.0", ">= 0"]),
    ("budget-penalty", {"penalty": "high"}, ["penalty='high'"]),
])
def test_built_in_reward_parameters_out_of_range_fail_at_make_not_mid_episode(reward, kwargs, words):
    with pytest.raises(ValueError) as error:
        make(reward=reward, reward_kwargs=kwargs, **({"env_id": "FilterSelect-v0"} if reward == "try-and-learn" else {}))
    for word in words:
        assert word in str(error.value)


# --------------------------------------------------------- user observations
def test_register_observation_refuses_sizes_and_bounds_that_make_no_space():
    def values(state):
        return np.zeros(2)

    for kwargs, word in [({"size": 0}, "size=0"), ({"size": 2.5}, "size=2.5"), ({"size": 2, "low": 1.0, "high": 1.0}, "high=1.0"),
                         ({"size": 2, "low": float("-inf")}, "low=-inf")]:
        with pytest.raises(ValueError, match=word):
            prune_gym.register_observation("hostile-space", values, overwrite=True, **kwargs)


def test_an_observation_that_raises_or_returns_nan_or_the_wrong_shape_fails_in_one_line_naming_it():
    prune_gym.register_observation("hostile-nan", lambda state: np.array([0.5, math.nan]), size=2, overwrite=True)
    prune_gym.register_observation("hostile-raises", lambda state: {}["missing"], size=2, overwrite=True)

    class Short(prune_gym.observations.Observation):
        """Declares three values, returns two."""

        def __init__(self, network):
            super().__init__(network)
            self.space = gym.spaces.Box(0.0, 1.0, (3,), dtype=np.float32)

        def observe(self, state):
            return np.zeros(2, dtype=np.float32)

    prune_gym.register_observation("hostile-short", Short, overwrite=True)
    for name, words in [("hostile-nan", ["'hostile-nan' returned NaN or inf"]),
                        ("hostile-raises", ["'hostile-raises' raised KeyError: 'missing'", "before group 0"]),
                        ("hostile-short", ["'hostile-short' returned an array of shape (2,)"])]:
        environment = make(observation=name)
        with pytest.raises(ValueError) as error:
            environment.reset(seed=0)
        assert "\n" not in str(error.value)
        for word in words:
            assert word in str(error.value)


# ------------------------------------------------------------- leaderboard
def results_file(agent: str, **run_changes) -> dict:
    runs = [{"entry": "tiny", "seed": seed, "normalised": 0.2 * seed, "test_score": 0.9, "test_standard_error": 0.01, **run_changes}
            for seed in (0, 1, 2)]
    return {"suite": "hostile", "agent": agent, "runs": runs, "failed": [], "aggregates": {"entries": ["tiny"], "seeds": [0, 1, 2]}}


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value))
    return path


@pytest.mark.parametrize("content, words", [
    ({}, ["has no 'suite'"]),
    ({**results_file("random-search"), "runs": [{"entry": "tiny", "seed": 0, "test_score": 0.9, "test_standard_error": 0.01}]},
     ["runs[0] has no 'normalised'"]),
])
def test_the_leaderboard_refuses_a_results_file_that_is_not_a_benchmarks_in_one_line(tmp_path, content, words):
    uniform = write_json(tmp_path / "uniform.json", results_file("uniform"))
    broken = write_json(tmp_path / "broken.json", content)
    assert_one_line_error(cli("leaderboard", str(uniform), str(broken)), "broken.json", "not a prune-gym benchmark results file", *words)


@pytest.mark.parametrize("content, words", [
    ([], ["holds a JSON list"]),
    ({**results_file("uniform"), "suite": 3}, ["its 'suite' is 3"]),
    ({**results_file("uniform"), "runs": ["run"]}, ["runs[0] is 'run'"]),
    (results_file("uniform", normalised="high"), ["runs[0]['normalised'] is 'high'"]),
    (results_file("uniform", normalised=float("nan")), ["runs[0]['normalised'] is nan"]),
    (results_file("uniform", seed=True), ["runs[0]['seed'] is True"]),
    ({**results_file("uniform"), "aggregates": {"iqm": 0.5}}, ["interval estimates"]),
    ({**results_file("uniform"), "machine": {"cpu": "x"}}, ["'machine'"]),
    ({**results_file("uniform"), "env_overrides": []}, ["'env_overrides' is []"]),
])
def test_load_results_names_what_is_wrong_with_a_results_file(tmp_path, content, words):
    from prune_gym.benchmark.leaderboard import load_results

    with pytest.raises(RunError) as error:
        load_results([write_json(tmp_path / "results.json", content)])
    for word in ["results.json is not a prune-gym benchmark results file", *words]:
        assert word in str(error.value)


def test_well_formed_and_published_results_still_load_and_render(tmp_path):
    from prune_gym.benchmark.leaderboard import load_results, render

    for suite in sorted((Path(__file__).resolve().parents[1] / "leaderboard").glob("*/results")):  # one suite at a time
        published = sorted(suite.glob("*.json"))
        assert published and len(load_results(published)) == len(published)
    results = load_results([write_json(tmp_path / "uniform.json", results_file("uniform")),
                            write_json(tmp_path / "other.json", results_file("random-search"))])
    assert "random-search" in render(results)


def test_leaderboard_plots_without_aggregates_say_why_before_making_a_folder(tmp_path):
    from prune_gym.benchmark.leaderboard import plot_leaderboard

    with pytest.raises(RunError, match="no results folder has aggregate scores"):
        plot_leaderboard([results_file("uniform")], tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


def test_collect_names_a_damaged_score_file(tmp_path):
    from prune_gym.benchmark.aggregate import MANIFEST, collect

    write_json(tmp_path / MANIFEST, {"suite": "hostile", "agent": "uniform"})
    (tmp_path / "tiny" / "seed-0").mkdir(parents=True)
    (tmp_path / "tiny" / "seed-0" / "score.json").write_text('{"entry": "tiny", "se')
    with pytest.raises(RunError, match=r"seed-0/score.json is damaged .*delete it to score that run again"):
        collect(tmp_path)
    (tmp_path / "tiny" / "seed-0" / "score.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="holds a JSON list, not an object"):
        collect(tmp_path)


# ------------------------------------------------------ search summary
ZERO_SCORE_TASK = '''
import torch
from torch import nn

import prune_gym


class AlwaysOne(nn.Module):
    """Two convolutions and a head whose fixed shift makes it answer class 1, a class the labels never hold."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        self.register_buffer("shift", torch.tensor([0.0, 1e6, 0.0]))

    def forward(self, x):
        return self.head(self.features(x)) + self.shift


generator = torch.Generator().manual_seed(0)
images = torch.randn(300, 1, 8, 8, generator=generator)
labels = torch.arange(300) % 2 * 2
TASK = prune_gym.register_task("hostile-zero-score", AlwaysOne(), (images, labels, images[:50], labels[:50]), reward_size=100,
                               auto_pretrain=True, epochs=1, overwrite=True)
'''


def test_a_reward_split_score_of_zero_prints_the_summary_without_dividing_by_it(tmp_path):
    (tmp_path / "zero_score.py").write_text(ZERO_SCORE_TASK)
    run = tmp_path / "run"
    result = cli("search", "--task", "zero_score:TASK", "--reward-samples", "100", "--quiet", "--agent", "uniform", "--episodes", "1",
                 "--run-dir", str(run), pythonpath=tmp_path)
    assert result.returncode == 0, result.stderr
    [score_row] = [line for line in result.stdout.splitlines() if "reward-split accuracy" in line and "│" in line]
    cells = [cell.strip() for cell in score_row.strip(" │┃").split("│")]
    assert cells == ["reward-split accuracy", "0.0000", "0.0000", "-", "0.0000"], score_row  # unpruned, best, ratio, uniform
    assert "done" in result.stdout


def test_print_summary_shows_no_ratio_for_a_zero_score_before(capsys):
    from prune_gym.cli.tables import print_summary

    best = {"episode": 0, "kept_channels": [2], "macs": 5, "macs_ratio": 0.5, "params": 5, "params_ratio": 0.5, "score": 0.0,
            "budget_met": True}
    print_summary({"best": best, "episodes_done": 1, "agent": "uniform", "env": "LayerRate-v0", "task": "t", "groups": [
        {"name": "conv", "channels": 4}], "original_macs": 10, "original_params": 10, "metric": "accuracy", "score_before": 0.0,
        "interrupted": False, "macs_budget": 0.5, "run_dir": "run"})
    [row] = [line for line in capsys.readouterr().out.splitlines() if "reward-split accuracy" in line]
    assert row.rstrip(" │┃").endswith("-")


# --------------------------------------------------------- listing cache
def fingerprint(cwd: Path) -> str:
    code = "from prune_gym.cli.listings import installed_code_fingerprint; print(installed_code_fingerprint())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True).stdout.strip()


def list_in(cache: Path, what: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prune_gym.cli", "list", what], capture_output=True, text=True, cwd=cache,
                          env={**os.environ, "PRUNE_GYM_CACHE": str(cache)})


def test_cache_rows_of_the_wrong_shape_are_treated_as_absent(tmp_path):
    (tmp_path / "listings").mkdir()
    planted = tmp_path / "listings" / f"criteria-{fingerprint(tmp_path)}.json"
    headers = ["criterion", "description"]
    for rows in ([[1, 2]], [["l1"]]):  # other shapes: test_a_cache_file_is_served_only_if_...
        planted.write_text(json.dumps({"headers": headers, "rows": rows}))
        result = list_in(tmp_path, "criteria")
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        assert result.stdout.splitlines()[0].split() == headers and any(line.startswith("l1 ") for line in result.stdout.splitlines())
        assert json.loads(planted.read_text())["rows"] != rows, "the listing was made afresh and the cache rewritten"


def test_a_planted_listing_cache_never_serves_a_fake_agent(tmp_path):
    from prune_gym.cli.listings import listing_digest

    current = fingerprint(tmp_path)
    (tmp_path / "listings").mkdir()
    planted = tmp_path / "listings" / f"agents-{current}.json"
    headers, rows = ["agent", "action spaces", "description"], [["planted", "Box", "from the cache"]]
    planted.write_text(json.dumps({"listing": "agents", "fingerprint": current, "headers": headers, "rows": rows,
                                   "digest": listing_digest("agents", current, headers, rows)}))  # even a well-forged one
    result = list_in(tmp_path, "agents")
    assert result.returncode == 0, result.stderr
    assert "planted" not in result.stdout and "ddpg" in result.stdout
    rewritten = json.loads(planted.read_text())
    assert rewritten["fingerprint"] == current and "planted" not in planted.read_text()
    served = list_in(tmp_path, "agents")
    assert served.stdout == result.stdout, "the genuine listing is served from the cache"


def test_a_cache_file_is_served_only_if_its_name_fingerprint_headers_rows_and_digest_check_out():
    from prune_gym.cli.listings import cached_listing, listing_digest

    headers = ["agent", "action spaces", "description"]
    rows = [[name, "Box", "an agent"] for name in sorted(entry.name for entry in entry_points(group="prune_gym.agents"))]

    def content(**changes):
        base = {"listing": "agents", "fingerprint": "f", "headers": headers, "rows": rows,
                "digest": listing_digest("agents", "f", headers, rows)}
        return {**base, **changes}

    assert cached_listing("agents", "f", content()) == (tuple(headers), [tuple(row) for row in rows])
    refused = [content(fingerprint="g"), content(listing="criteria"), content(digest="0" * 64), content(rows=rows[:-1]),
               content(rows=[[*row[:2], 3] for row in rows]), content(headers=["a", "b", "c"]), {"headers": headers, "rows": rows},
               [headers, rows], None]
    for cached in refused:
        assert cached_listing("agents", "f", cached) is None, cached


# ------------------------------------------------------------ agents
@pytest.mark.parametrize("hyperparameters, words", [
    ({"batch_size": 0}, ["batch_size=0", "positive"]),
    ({"warmup_episodes": -3}, ["warmup_episodes=-3", ">= 0"]),
])
def test_ddpg_nonsense_hyperparameters_are_one_line_on_the_command_line(tmp_path, hyperparameters, words):
    [(key, value)] = hyperparameters.items()
    run = tmp_path / "run"
    assert_one_line_error(cli(*SEARCH, "--agent", "ddpg", "--episodes", "2", "--run-dir", str(run), "--agent-arg", f"{key}={value}"),
                          *words)
    assert not run.exists()


@pytest.mark.parametrize("agent, hyperparameters, words", [
    ("ddpg", {"batch_size": 0}, ["batch_size=0"]),
    ("ddpg", {"warmup_episodes": -3}, ["warmup_episodes=-3"]),
    ("ddpg", {"warmup_episodes": 2.5}, ["warmup_episodes=2.5"]),
    ("ddpg", {"sigma": -0.5}, ["sigma=-0.5"]),
    ("ddpg", {"sigma_decay": 1.5}, ["sigma_decay=1.5"]),
    ("ddpg", {"hidden": 300}, ["hidden=300"]),
    ("ddpg", {"hidden": [300, 0]}, ["hidden=[300, 0]"]),
    ("ddpg", {"actor_learning_rate": 0}, ["actor_learning_rate=0"]),
    ("ddpg", {"critic_learning_rate": float("nan")}, ["critic_learning_rate=nan"]),
    ("ddpg", {"gamma": 1.5}, ["gamma=1.5"]),
    ("ddpg", {"tau": 0}, ["tau=0"]),
    ("ddpg", {"buffer_episodes": 0}, ["buffer_episodes=0"]),
    ("ddpg", {"baseline_alpha": 2}, ["baseline_alpha=2"]),
    ("ddpg", {"learning_starts": 5}, ["learning_starts=5", "warmup_episodes"]),
    ("ddpg", {"learning_rate": 1e-3}, ["learning_rate=0.001", "actor_learning_rate"]),
    ("sb3:PPO", {"batch_size": 0}, ["batch_size=0"]),
    ("sb3:PPO", {"batch_size": 1}, ["stable-baselines3 PPO refused", "batch_size"]),
    ("sb3:PPO", {"learning_rate": -1e-3}, ["learning_rate=-0.001"]),
    ("sb3:PPO", {"gamma": 2}, ["gamma=2"]),
    ("sb3:PPO", {"n_epochs": 0}, ["n_epochs=0"]),
    ("sb3:SAC", {"learning_starts": -1}, ["learning_starts=-1"]),
    ("sb3:SAC", {"gradient_steps": 0}, ["gradient_steps=0", "never train"]),
    ("sb3:SAC", {"ent_coef": -0.1}, ["ent_coef=-0.1"]),
    ("tianshou:PPO", {"lr": 0}, ["lr=0"]),
    ("tianshou:PPO", {"gamma": 1.5}, ["gamma=1.5"]),
    ("tianshou:PPO", {"eps_clip": -0.2}, ["eps_clip=-0.2"]),
    ("tianshou:PPO", {"batch_size": 0}, ["batch_size=0"]),
    ("tianshou:PPO", {"hidden_sizes": [64, -1]}, ["hidden_sizes=[64, -1]"]),
    ("tianshou:PPO", {"buffer_size": 0}, ["buffer_size=0"]),
    ("tianshou:SAC", {"tau": 0}, ["tau=0"]),
    ("tianshou:SAC", {"alpha": -0.2}, ["alpha=-0.2"]),
    ("tianshou:SAC", {"update_step_num_gradient_steps_per_sample": 0}, ["update_step_num_gradient_steps_per_sample=0"]),
    ("tianshou:DDPG", {"n_step_return_horizon": 0}, ["n_step_return_horizon=0"]),
])
def test_agent_hyperparameters_out_of_range_are_refused_at_construction(env, agent, hyperparameters, words):
    with pytest.raises(ValueError) as error:
        make_agent(agent, env, seed=0, **hyperparameters)
    assert "\n" not in str(error.value)
    for word in words:
        assert word in str(error.value)


def test_ddpg_still_accepts_amcs_settings_and_edge_values(env):
    agent = make_agent("ddpg", env, seed=0, warmup_episodes=0, sigma=0.0, sigma_decay=1.0, hidden=[8], gamma=0.0, tau=1.0,
                       batch_size=1, buffer_episodes=1, baseline_alpha=1.0)
    assert agent.model.batch_size == 1 and agent.model.learning_starts == 0


def test_try_and_learn_budget_search_refuses_an_empty_range_before_any_run():
    from prune_gym_agents.try_and_learn.budget import fit_drop_allowance

    def never(drop_allowance):
        raise AssertionError("no run may start")

    for low, high, word in [(0.2, 0.1, "high=0.1"), (0.0, 0.1, "low=0.0"), ("0.01", 0.1, "low='0.01'")]:
        with pytest.raises(ValueError, match=word):
            fit_drop_allowance(never, 0.5, low=low, high=high)
