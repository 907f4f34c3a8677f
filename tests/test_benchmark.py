"""The benchmark protocol on a tiny real suite: suites, scored runs, resume/skip, failures, aggregates, leaderboard, fidelity."""

import json
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats

import prune_gym
from prune_gym.benchmark import Entry, Recovery, Suite, get_suite, list_suites, register_suite
from prune_gym.benchmark.aggregate import aggregates, probability_of_improvement
from prune_gym.benchmark.fidelity import rank_agreement, render_headroom
from prune_gym.cli import main
from prune_gym.tasks.checkpoints import task_checkpoint_sha256

TINY = register_suite(Suite("test-tiny-v0", entries=(Entry("lenet5-digits", "LayerRate-v0", 0.5, episodes=12,
                                                           env_kwargs={"reward_samples": 200}),),
                            seeds=(0, 1), recovery=Recovery(steps=10, seeds=(0, 1))), overwrite=True)


def test_suites_are_registered_by_versioned_name():
    assert {"quick-v0", "cpu-v0", "cifar10-v0", "test-tiny-v0"} <= set(list_suites())
    quick = get_suite("quick-v0")
    assert quick.entries[0].name == "lenet5-digits/LayerRate-0.5" and len(quick.seeds) >= 2
    with pytest.raises(ValueError, match="already registered"):
        register_suite(TINY)
    with pytest.raises(ValueError, match="with a version"):
        Suite("no-version", entries=TINY.entries, seeds=(0,))
    with pytest.raises(ValueError, match="registered suites"):
        get_suite("nope-v0")


def test_quick_v1_separates_random_search_from_uniform_pruning(tmp_path):
    """quick-v1 replaces the saturated quick-v0: after the suite's recovery, on the test split, one seed of random
    search is far above uniform L1 pruning (its normalised score's zero), well beyond the test split's standard error."""
    out = tmp_path / "random"
    assert main(["benchmark", "--agent", "random-search", "--suite", "quick-v1", "--seeds", "0", "--out", str(out),
                 "--quiet"]) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    references = run["references"]
    assert run["macs_ratio"] <= 0.5 and run["test_score"] - references["uniform_test_score"] > 3 * run["test_standard_error"], run
    assert run["normalised"] > 0.3


TWO_ENTRIES = register_suite(Suite("test-two-entries-v0", entries=(
    Entry("lenet5-digits", "LayerRate-v0", 0.5, episodes=3, env_kwargs={"reward_samples": 100}),
    Entry("lenet5-digits", "LayerRate-v0", 1.0, episodes=3, env_kwargs={"reward_samples": 100}, params_budget=0.6),
), seeds=(0,), recovery=Recovery(steps=0, seeds=(0,))), overwrite=True)


def test_entries_runs_a_subset_and_results_record_what_measured_them(tmp_path, capsys):
    out = tmp_path / "uniform"
    params_entry = TWO_ENTRIES.entries[1]
    assert params_entry.name == "lenet5-digits/LayerRate-1-params0.6"
    assert main(["benchmark", "--agent", "uniform", "--suite", TWO_ENTRIES.name, "--entries", params_entry.name,
                 "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    (run,) = results["runs"]
    assert run["entry"] == params_entry.name and sorted(path.name for path in out.iterdir() if path.is_dir()) == \
        ["cache", params_entry.slug]
    config = json.loads((out / params_entry.slug / "seed-0" / "config.json").read_text())
    assert config["env_kwargs"]["params_budget"] == 0.6 and config["env_kwargs"]["macs_budget"] == 1.0
    assert run["test_scores"] == [run["references"]["uniform_test_score"]], "one-shot track: no recovery, one score"
    recorded = results["machine"]
    assert recorded["packages"]["torch-pruning"] and recorded["torch_threads"] >= 1 and recorded["python"]
    assert isinstance(recorded["cpu_flags"], list) and recorded["torch_cpu_capability"]
    assert main(["benchmark", "--agent", "uniform", "--suite", TWO_ENTRIES.name, "--entries", "nope",
                 "--out", str(tmp_path / "other"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "has no entry 'nope'" in error and "lenet5-digits/LayerRate-0.5" in error and not (tmp_path / "other").exists()


def test_benchmark_scores_every_seed_skips_finished_runs_and_renders_a_leaderboard(tmp_path, capsys):
    out = tmp_path / "random"
    assert main(["benchmark", "--agent", "random-search", "--suite", "test-tiny-v0", "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [run["seed"] for run in results["runs"]] == [0, 1] and not results["failed"]
    run = results["runs"][0]
    assert run["status"] == "ok" and run["episodes"] == 12 and run["macs_ratio"] <= 0.5
    assert len(run["test_scores"]) == 2 and 0.5 < run["test_score"] <= 1.0
    references = run["references"]
    assert run["normalised"] == pytest.approx((run["test_score"] - references["uniform_test_score"])
                                              / (references["unpruned_test_score"] - references["uniform_test_score"]))
    assert len(run["normalised_proxy_curve"]) == 12 and np.all(np.diff(run["normalised_proxy_curve"]) >= 0), "best so far"
    assert results["checkpoints"]["lenet5-digits"] == task_checkpoint_sha256("lenet5-digits")
    config = json.loads((out / "lenet5-digits_LayerRate-0.5" / "seed-0" / "config.json").read_text())
    assert config["episodes"] == config["max_evaluations"] == 12, "the entry's budget bounds episodes and reward evaluations"
    scored = (out / "lenet5-digits_LayerRate-0.5" / "seed-0" / "score.json").stat().st_mtime_ns
    assert main(["benchmark", "--agent", "random-search", "--suite", "test-tiny-v0", "--out", str(out), "--quiet"]) == 0
    assert (out / "lenet5-digits_LayerRate-0.5" / "seed-0" / "score.json").stat().st_mtime_ns == scored, "a re-run skips scored runs"

    baseline, shared = tmp_path / "uniform", out / "cache"
    recovered = sorted((shared / "recovered").iterdir())
    assert main(["benchmark", "--agent", "uniform", "--suite", "test-tiny-v0", "--out", str(baseline), "--cache", str(shared),
                 "--quiet"]) == 0
    uniform = json.loads((baseline / "results.json").read_text())
    assert [r["normalised"] for r in uniform["runs"]] == [0.0, 0.0], "uniform L1 is the normalisation's zero"
    assert sorted((shared / "recovered").iterdir()) == recovered and not (baseline / "cache").exists(), \
        "with a shared cache, the references and the uniform mask (both seeds) are recovered once"
    capsys.readouterr()
    assert main(["leaderboard", str(out), str(baseline), "--output", str(tmp_path / "LEADERBOARD.md"), "--plots", str(tmp_path)]) == 0
    table = (tmp_path / "LEADERBOARD.md").read_text()
    assert "| random-search |" in table and "| uniform |" in table and "test-tiny-v0" in table
    [entry_row] = [line for line in table.splitlines() if line.startswith("| lenet5-digits/LayerRate-0.5 |")]
    cells = [cell.strip() for cell in entry_row.strip("|").split("|")]
    scores = [r["test_score"] for r in results["runs"]]
    error = np.mean([r["test_standard_error"] for r in results["runs"]])
    assert cells[1] == f"{np.mean(scores):.4f} +- {np.std(scores):.4f} (SE {error:.4f}, n=2)"
    gap = np.mean(scores) - uniform["runs"][0]["test_score"]
    noise = float(cells[4])
    assert cells[3] == f"{gap:+.4f}" and cells[5] == ("no" if abs(gap) <= noise else "yes" if gap > 0 else "yes, uniform ahead")
    for figure in ("interval_estimates", "sample_efficiency", "probability_of_improvement"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 0 and (tmp_path / f"{figure}.pdf").exists()


def test_a_third_party_agent_runs_through_the_same_commands_and_failures_are_recorded(tmp_path, monkeypatch, capsys):
    package = tmp_path / "site" / "fragile_pruner"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent('''
        import gymnasium as gym
        import numpy as np

        class HalfAgent:
            """Prunes half of every group; fails on seed 1 to show how a failing run is recorded."""
            supported_action_spaces = (gym.spaces.Box,)
            supported_environments = ("LayerRate-v0",)
            def __init__(self, env, seed=None):
                self.env, self.seed = env, seed
            def learn(self, episodes):
                if self.seed == 1:
                    raise RuntimeError("diverged on seed 1")
                for _ in range(episodes):
                    self.env.reset()
                    done = False
                    while not done:
                        _, _, done, _, _ = self.env.step(np.array([0.5], dtype=np.float32))
            def predict(self, observation, deterministic=True):
                return np.array([0.5], dtype=np.float32)
            def save(self, path): pass
            def load(self, path): pass
    '''))
    info = tmp_path / "site" / "fragile_pruner-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fragile-pruner\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prune_gym.agents]\nfragile-half = fragile_pruner:HalfAgent\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    out = tmp_path / "half"
    # its own name: test_agents.py installs another "half", which a worker running both may have discovered first
    assert main(["benchmark", "--agent", "fragile-half", "--suite", "test-tiny-v0", "--out", str(out), "--quiet"]) == 2
    assert "failed: lenet5-digits/LayerRate-0.5 seed 1: RuntimeError: diverged on seed 1" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert [run["seed"] for run in results["runs"]] == [0] and results["failed"][0]["seed"] == 1
    assert main(["leaderboard", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "| fragile-half † | " in shown and "† fewer seeds than the suite's 2, so a wider interval: fragile-half (1)." in shown
    sys.modules.pop("fragile_pruner", None)


@pytest.mark.parametrize("arguments, words", [
    (["--agent", "random-search", "--suite", "nope-v0"], ["unknown suite", "quick-v0"]),
    (["--agent", "random-search", "--suite", "test-tiny-v0", "--seeds"], ["--seeds is empty"]),
    (["--agent", "nope", "--suite", "test-tiny-v0"], ["unknown agent", "installed agents"]),
    (["--agent", "ddpg", "--suite", "test-tiny-v0", "--agent-arg", "bogus=1"], ["bogus"]),
    (["--agent", "try-and-learn", "--suite", "test-tiny-v0"], ["fits no entry", "cannot run on LayerRate-v0"]),
])
def test_bad_benchmark_input_is_one_line(tmp_path, capsys, arguments, words):
    assert main(["benchmark", *arguments, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    for word in words:
        assert word in error


def test_a_results_folder_of_another_suite_or_agent_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    (out).mkdir()
    (out / "benchmark.json").write_text(json.dumps({"suite": "quick-v0", "agent": "random-search", "agent_kwargs": {},
                                                     "env_overrides": {}}))
    assert main(["benchmark", "--agent", "random-search", "--suite", "test-tiny-v0", "--out", str(out), "--quiet"]) == 2
    assert "holds a benchmark of suite 'quick-v0'" in capsys.readouterr().err


def test_aggregates_match_a_hand_computed_iqm_and_probability_of_improvement():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.5, 0.2, size=(5, 4))  # seeds x entries
    runs = [{"entry": f"e{e}", "seed": s, "normalised": scores[s, e], "test_score": 0.9, "evaluations": 10, "search_seconds": 1.0,
             "normalised_proxy_curve": [0.0, scores[s, e]]} for s in range(5) for e in range(4)]
    result = aggregates(runs)
    assert result["iqm"] == pytest.approx(stats.trim_mean(scores.ravel(), 0.25))
    assert result["mean"] == pytest.approx(scores.mean())
    assert result["iqm_ci"][0] <= result["iqm"] <= result["iqm_ci"][1]
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    assert aggregates(runs) == result, "the bootstrap intervals are reproducible whatever numpy's global generator holds"
    assert np.array_equal(np.random.get_state()[1], before), "and the global generator is left as it was"
    worse = [{**run, "normalised": run["normalised"] - 1.0} for run in runs]
    assert probability_of_improvement(runs, worse)["probability"] == pytest.approx(1.0)
    assert probability_of_improvement(runs, runs)["probability"] == pytest.approx(0.5)


def test_rank_agreement_reports_tau_and_rho_with_intervals():
    truth = list(np.linspace(0.5, 0.9, 12))
    perfect = rank_agreement(truth, truth)
    assert perfect["kendall_tau"]["value"] == pytest.approx(1.0) and perfect["top_quarter_spearman_rho"]["value"] == pytest.approx(1.0)
    reversed_ = rank_agreement(truth[::-1], truth)
    assert reversed_["kendall_tau"]["value"] == pytest.approx(-1.0)
    noisy = rank_agreement(list(np.array(truth) + np.random.default_rng(1).normal(0, 0.1, 12)), truth)
    low, high = noisy["kendall_tau"]["ci"]
    assert -1 <= low <= noisy["kendall_tau"]["value"] <= high <= 1


def test_fidelity_command_measures_each_reward_protocol(tmp_path, capsys):
    assert main(["fidelity", "--suite", "test-tiny-v0", "--out", str(tmp_path), "--random", "4", "--option", "reward_samples=50,200"]) == 0
    result = json.loads((tmp_path / "fidelity-lenet5-digits_LayerRate-0.5.json").read_text())
    assert len(result["options"]) == 2 and len(result["candidates"]) >= 6, "uniform with each criterion and random rates"
    assert all(row["seconds_per_evaluation"] > 0 for row in result["options"])
    assert "reward_samples=200" in capsys.readouterr().out
    assert result["checkpoint"] == task_checkpoint_sha256("lenet5-digits") and result["test_samples"] > 0
    scores = dict(zip(result["candidates"], result["recovered_test_scores"]))
    best = max(scores.values())
    [row] = render_headroom([result]).splitlines()[2:]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1] == f"{scores['uniform l1']:.4f}" and cells[2].startswith(f"{best:.4f} (")
    assert cells[3] == f"{best - scores['uniform l1']:+.4f}" and float(cells[4]) == pytest.approx(
        np.sqrt(best * (1 - best) / result["test_samples"]), abs=1e-4)


def test_checkpoints_export_and_import_with_their_sha256(tmp_path, capsys):
    prune_gym.get_task("lenet5-digits").load_model()
    assert main(["checkpoint", "export", "lenet5-digits", str(tmp_path / "lenet.pt")]) == 0
    digest = task_checkpoint_sha256("lenet5-digits")
    assert digest in capsys.readouterr().out
    assert main(["checkpoint", "import", "lenet5-digits", str(tmp_path / "lenet.pt")]) == 0
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["checkpoint", "import", "lenet5-digits", str(tmp_path / "bad.pt")]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_the_leaderboard_script_publishes_what_it_renders_and_pins_its_checkpoints(tmp_path):
    """benchmarks/leaderboard.py on quick-v0: it re-renders from the published files alone, and refuses another checkpoint."""
    import os
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "leaderboard.py"
    publish, output = tmp_path / "published", tmp_path / "LEADERBOARD.md"
    common = ["--suite", "quick-v0", "--out", str(tmp_path / "runs"), "--publish", str(publish), "--fidelity-random", "2"]

    def leaderboard(*arguments: str, cache: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **({"PRUNE_GYM_CACHE": str(cache)} if cache else {})}
        return subprocess.run([sys.executable, str(script), *common, *arguments], capture_output=True, text=True, env=env,
                              timeout=600)

    made = leaderboard("--agents", "uniform-criterion-l1", "--output", str(output))
    assert made.returncode == 0, made.stderr
    assert (publish / "checkpoints" / "lenet5-digits.pt").read_bytes() == prune_gym.get_task("lenet5-digits").checkpoint_path().read_bytes()
    published = json.loads((publish / "quick-v0" / "results" / "uniform-criterion-l1.json").read_text())
    assert published == json.loads((tmp_path / "runs" / "uniform-criterion-l1" / "results.json").read_text())
    fidelity_file = publish / "quick-v0" / "fidelity" / "lenet5-digits_LayerRate-0.5.json"
    fidelity = json.loads(fidelity_file.read_text())
    assert fidelity["checkpoint"] == task_checkpoint_sha256("lenet5-digits") and fidelity["command"].startswith(".venv/bin/python")

    measured_at = fidelity_file.stat().st_mtime_ns
    rerun = leaderboard("--agents", "uniform-criterion-l1", "--output", str(output))
    assert rerun.returncode == 0 and "fidelity already published on this checkpoint" in rerun.stderr, rerun.stderr
    assert fidelity_file.stat().st_mtime_ns == measured_at

    import shutil
    shutil.rmtree(tmp_path / "runs")
    again = tmp_path / "again.md"
    rendered = leaderboard("--render-only", "--output", str(again))
    assert rendered.returncode == 0, rendered.stderr
    tables = [text.read_text().split("## How this was made")[0] for text in (output, again)]
    assert tables[0] == tables[1] and "| uniform criterion=l1 |" in tables[0] and fidelity["checkpoint"][:16] in tables[0]

    other_cache = tmp_path / "other-cache"
    retrained = subprocess.run([sys.executable, "-m", "prune_gym.cli", "pretrain", "lenet5-digits", "--epochs", "1", "--quiet"],
                               capture_output=True, text=True, env={**os.environ, "PRUNE_GYM_CACHE": str(other_cache)}, timeout=600)
    assert retrained.returncode == 0, retrained.stderr
    refused = leaderboard("--agents", "uniform-criterion-l1", "--output", str(tmp_path / "refused.md"), cache=other_cache)
    assert refused.returncode == 1 and "is not the leaderboard's" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "refused.md").exists()


def test_the_vectorised_curve_iqm_is_rliables_iqm_at_every_evaluation():
    from rliable import metrics

    from prune_gym.benchmark.aggregate import iqm_per_evaluation

    curves = np.random.default_rng(0).normal(size=(5, 3, 40))
    expected = [metrics.aggregate_iqm(curves[..., t]) for t in range(40)]
    assert iqm_per_evaluation(curves) == pytest.approx(expected, abs=1e-12)


def _synthetic_runs(run_correct: np.ndarray, uniform_correct: np.ndarray, unpruned_correct: np.ndarray, seeds: int = 5):
    """Runs of a deterministic agent (every seed the same network) on one entry, with per-image records."""
    from prune_gym.benchmark.scoring import pack_correctness

    references = {"test_samples": len(unpruned_correct), "unpruned_test_correct": pack_correctness(unpruned_correct),
                  "uniform_test_correct": [pack_correctness(uniform_correct)]}
    gap = unpruned_correct.mean() - uniform_correct.mean()
    normalised = (run_correct.mean() - uniform_correct.mean()) / gap
    return [{"entry": "e", "seed": seed, "normalised": normalised, "test_score": run_correct.mean(), "evaluations": 1,
             "search_seconds": 1.0, "normalised_proxy_curve": [normalised], "budget_met": True,
             "test_correct": [pack_correctness(run_correct)], "references": references} for seed in range(seeds)]


def test_a_deterministic_agent_gets_the_test_sets_sampling_error_not_a_zero_width_interval():
    """Five seeds of one network: rliable's seed bootstrap alone gives [x, x]; the per-image bootstrap gives the
    binomial interval of an accuracy on 10,000 images (uniform pruning all wrong, unpruned all right: normalised =
    accuracy)."""
    rng = np.random.default_rng(1)
    samples, accuracy = 10_000, 0.7
    runs = _synthetic_runs(rng.random(samples) < accuracy, np.zeros(samples, bool), np.ones(samples, bool))
    result = aggregates(runs)
    score = runs[0]["normalised"]
    assert result["interval_noise"] == "test images, recovery seeds, seeds"
    low, high = result["iqm_ci"]
    half_width = 1.96 * np.sqrt(score * (1 - score) / samples)
    assert result["iqm"] == pytest.approx(score)
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15) and low < score < high
    seeds_only = aggregates([{key: value for key, value in run.items() if key != "test_correct"} for run in runs])
    assert seeds_only["interval_noise"] == "seeds" and seeds_only["iqm_ci"] == [score, score]


def test_the_per_image_bootstrap_pairs_a_run_with_its_reference():
    """A network right on the uniform reference's images plus 30 more of 10,000 is better beyond doubt when both are
    resampled on the same images (unpaired, the two accuracies' standard errors, ~0.0065 each, would swamp 0.003)."""
    rng = np.random.default_rng(2)
    samples = 10_000
    uniform = rng.random(samples) < 0.6
    better = uniform.copy()
    better[np.flatnonzero(~uniform)[:30]] = True
    runs = _synthetic_runs(better, uniform, np.ones(samples, bool))
    low, high = aggregates(runs)["iqm_ci"]
    assert 0 < low < runs[0]["normalised"] < high < 2 * runs[0]["normalised"]


def test_the_leaderboard_renders_one_section_per_suite_and_keeps_the_others():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "leaderboard.py"
    spec = importlib.util.spec_from_file_location("leaderboard_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = script.splice_section("", "old-v0", "## Suite `old-v0`\n\nold table")
    text = script.splice_section(text, "new-v1", "## Suite `new-v1`\n\nnew table")
    assert text.startswith(script.HEADER) and text.count("# Leaderboard") == 1
    assert text.index("new table") < text.index("old table"), "a new suite goes first"
    again = script.splice_section(text, "old-v0", "## Suite `old-v0`\n\nold table, re-rendered")
    assert "old table, re-rendered" in again and "new table" in again and again.count("<!-- suite old-v0 -->") == 1
    assert script.splice_section(again, "old-v0", "## Suite `old-v0`\n\nold table, re-rendered") == again


def test_one_mask_recovers_to_the_same_test_score_and_images_every_time(tmp_path):
    """The fine-tune is deterministic on one machine: the same mask, recovered afresh (no cache shared), gives the same
    test score and gets the same test images right."""
    import gymnasium as gym

    from prune_gym.benchmark.scoring import RecoveryCache, RecoveryScorer

    env = gym.make("LayerRate-v0", task="lenet5-digits", macs_budget=0.5, reward_samples=100).unwrapped
    budget = env.rate_budget()
    keep = budget.keep_masks(budget.uniform_counts(filled=True))
    first, second = (RecoveryScorer("lenet5-digits", Recovery(steps=15, seeds=(0, 1)), RecoveryCache(tmp_path / name)).score(keep)
                     for name in ("a", "b"))
    assert first == second and first.test_correct is not None and len(set(first.test_scores)) == 2, (first, second)


def test_an_entry_no_uniform_row_fits_is_compared_with_its_reference():
    """FilterSelect-v0 entries have no uniform row (the uniform agents act in LayerRate-v0): the per-entry verdict
    compares the best agent with the reference every run records, beyond seed spread plus the test SE or not."""
    from prune_gym.benchmark.leaderboard import render_entries

    def result(agent, scores, uniform_reference):
        runs = [{"entry": "net/FilterSelect-0.3", "seed": seed, "test_score": score, "test_standard_error": 0.004,
                 "references": {"uniform_test_score": uniform_reference}} for seed, score in enumerate(scores)]
        return {"agent": agent, "runs": runs}

    far = render_entries([result("ddpg", [0.26, 0.27, 0.25], 0.20), result("sb3:SAC", [0.24, 0.25, 0.25], 0.20)])
    row = next(line for line in far.splitlines() if line.startswith("| net/FilterSelect-0.3"))
    assert row.endswith("| +0.0600 | 0.0122 | yes (vs reference) |"), row
    near = render_entries([result("ddpg", [0.21, 0.20, 0.19], 0.20)])
    assert next(line for line in near.splitlines() if line.startswith("| net/")).endswith("| no (vs reference) |")
