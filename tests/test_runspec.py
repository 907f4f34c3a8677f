"""One run specification: how every command describes a run, and the fixes that fell out of it, as a user hits them."""

import json
import math
import subprocess
from pathlib import Path

import gymnasium as gym
import pytest

from prune_gym.benchmark import Entry, Recovery, Suite, register_suite
from prune_gym.benchmark.runner import run_benchmark
from prune_gym.benchmark.scoring import RecoveryCache, entry_references
from prune_gym.cli import main
from prune_gym.runs import EpisodeRecord, RunFolder, RunSpec, best_episode, best_score_curve

SMALL = {"reward_samples": 100}
STEPS = register_suite(Suite("test-recovery-steps-v0", entries=(
    Entry("lenet5-digits", "LayerRate-v0", 0.5, episodes=6, env_kwargs={"reward_samples": 100, "recovery_steps": 3}),),
    seeds=(0,), recovery=Recovery(steps=5, seeds=(0,))), overwrite=True)


def search(tmp_path, *arguments: str) -> int:
    return main(["search", "--task", "lenet5-digits", "--agent", "random-search", "--reward-samples", "100", "--quiet",
                 *arguments])


def test_a_spec_is_flat_frozen_and_round_trips_through_config_json(tmp_path):
    spec = RunSpec(env_kwargs={"macs_budget": 0.3, "reward": "error"}, agent="uniform", wandb_tags=["a"])
    with pytest.raises(AttributeError):
        spec.episodes = 3  # type: ignore[misc]
    assert spec.macs_budget == 0.3 and spec.reward == "error" and spec.device is None and spec.wandb_tags == ("a",)
    assert spec.with_env(device="cpu").device == "cpu" and spec.device is None, "with_env copies"
    folder = RunFolder(tmp_path)
    folder.write_spec(spec)
    assert folder.read_spec() == spec
    legacy = {"task": "lenet5-digits", "env": "LayerRate-v0", "agent": "uniform", "reward": "error", "macs_budget": 0.3,
              "reward_samples": None, "device": "cpu", "episodes": 3, "env_kwargs": {"criterion": "std"}}
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    assert folder.read_spec().env_kwargs == {"reward": "error", "macs_budget": 0.3, "device": "cpu", "criterion": "std"}, \
        "a config.json of the old layout is read into env_kwargs"


def test_resume_extends_a_finished_run_and_refuses_other_flags_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert search(tmp_path, "--episodes", "4", "--run-dir", str(run)) == 0
    assert main(["search", "--resume", str(run), "--quiet"]) == 0
    assert len(RunFolder(run).episodes()[0]) == 4, "resuming a finished run does nothing more"
    assert main(["search", "--resume", str(run), "--episodes", "6", "--quiet"]) == 0
    assert len(RunFolder(run).episodes()[0]) == 6 and RunFolder(run).read_spec().episodes == 6, "--episodes extends it"
    assert json.loads((run / "summary.json").read_text())["episodes_done"] == 6
    capsys.readouterr()
    assert main(["search", "--resume", str(run), "--episodes", "8", "--agent", "cma-es", "--seed", "9", "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--agent, --seed cannot change" in error, error
    assert len(RunFolder(run).episodes()[0]) == 6, "a refused resume runs nothing"
    assert main(["search", "--resume", str(run), "--episodes", "3", "--quiet"]) == 2
    assert "has 6 episodes already" in capsys.readouterr().err


def test_a_folder_holding_another_run_is_refused_naming_what_differs(tmp_path, capsys):
    run = tmp_path / "run"
    assert search(tmp_path, "--episodes", "3", "--run-dir", str(run)) == 0
    before = (run / "episodes.csv").read_bytes()
    assert search(tmp_path, "--episodes", "3", "--run-dir", str(run), "--agent", "cma-es", "--macs-budget", "0.3") == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "(agent, agent_kwargs, env_kwargs.macs_budget differ)" in error, error
    assert (run / "episodes.csv").read_bytes() == before
    assert search(tmp_path, "--episodes", "3", "--run-dir", str(run)) == 0, "the same command again is a finished run: skipped"
    assert (run / "episodes.csv").read_bytes() == before
    assert search(tmp_path, "--macs-budget", "0.3", "--env-arg", "macs_budget=0.4", "--run-dir", str(tmp_path / "x")) == 2
    assert "given both as --macs-budget and as --env-arg" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_seeds_take_one_syntax_in_search_and_benchmark(tmp_path, capsys):
    assert search(tmp_path, "--episodes", "2", "--seeds", "0-1", "3", "--run-dir", str(tmp_path / "many")) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["seed-0", "seed-1", "seed-3"]
    spec = RunFolder(tmp_path / "many" / "seed-3").read_spec()
    assert spec.seed == 3 and spec.env_kwargs["reward_samples"] == 100
    assert main(["benchmark", "--agent", "uniform", "--suite", "test-recovery-steps-v0", "--seeds", "0-0",
                 "--out", str(tmp_path / "bench"), "--quiet"]) == 0
    assert main(["search", "--seeds", "0-300000", "--run-dir", str(tmp_path / "huge"), "--quiet"]) == 2
    assert "more than 1000 seeds" in capsys.readouterr().err


def test_the_uniform_reference_uses_the_entrys_whole_reward_protocol(tmp_path):
    """An entry whose reward fine-tunes for a few steps (``recovery_steps``) normalises against a uniform proxy score
    measured with those steps: the one its agents' episodes are scored with."""
    entry = STEPS.entries[0]
    references = entry_references(entry, STEPS.recovery, "l1", RecoveryCache(tmp_path / "cache"))
    scored = {}
    for steps in (0, 3):
        env = gym.make("LayerRate-v0", task="lenet5-digits", macs_budget=0.5, reward_samples=100, recovery_steps=steps).unwrapped
        budget = env.rate_budget()
        scored[steps] = env.evaluator.score(budget.keep_masks(budget.uniform_counts()))
    assert scored[0] != scored[3]
    assert references.uniform_proxy_score == pytest.approx(scored[3])


def test_one_rule_picks_the_best_episode_for_the_mask_the_curves_and_tuning(tmp_path):
    def record(episode: int, episode_return: float, score: float, met: bool) -> EpisodeRecord:
        return EpisodeRecord(episode, episode_return, score, 1, 1, 0.5, 0.5, met, (), (), episode + 1, 0.0, ())

    # episode 1 scores higher, but episode 2 has the higher return (the reward trades score for MACs): episode 2 is the best
    records = [record(0, 0.1, 0.9, False), record(1, 0.2, 0.8, True), record(2, 0.3, 0.7, True)]
    assert best_episode(records) == records[2]
    curve = best_score_curve(records, 5)
    assert math.isnan(curve[0]) and curve[1:] == [0.8, 0.7, 0.7, 0.7], "NaN until an episode meets the budget, then the best's score"
    results = run_benchmark("random-search", STEPS.name, tmp_path / "out", progress=False)
    run = results["runs"][0]
    references = run["references"]
    gap = references["unpruned_proxy_score"] - references["uniform_proxy_score"]
    assert run["normalised_proxy_curve"][-1] == pytest.approx((run["proxy_score"] - references["uniform_proxy_score"]) / gap), \
        "the curve ends at the score of the mask that was recovered"


def test_a_benchmark_run_records_its_spec_with_the_evaluation_cap(tmp_path):
    run_benchmark("uniform", STEPS.name, tmp_path / "out", progress=False)
    spec = RunFolder(tmp_path / "out" / STEPS.entries[0].slug / "seed-0").read_spec()
    assert spec.max_evaluations == spec.episodes == 6 and spec.env_kwargs["recovery_steps"] == 3 and spec.macs_budget == 0.5


def test_one_spelling_of_the_environment_arguments(tmp_path):
    """The environment's keyword arguments are merged in one place: RunSpec and Entry.run_spec (grep shows no copy)."""
    found = subprocess.run(["grep", "-rnE", "ENV_FIELDS|env_fields|SearchConfig", "prune_gym", "experiments", "benchmarks"],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert found == "", found
