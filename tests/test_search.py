"""Runs: artefacts, resume after Ctrl-C, export/fine-tune/plot, wandb offline, and the CLI."""

import json

import pytest
import torch

from prune_gym.cli import main
from prune_gym.errors import RunError
from prune_gym.pruning import count_macs_params
from prune_gym.recovery import export_run, load_pruned, pruned_network
from prune_gym.runs import RunFolder, RunSpec, best_episode
from prune_gym.search import resume_search, run_search
from prune_gym.wrappers import EpisodeRecorder


def read_episodes(run):
    return RunFolder(run).episodes()[0]

FAST = dict(task="lenet5-digits", env_kwargs={"reward_samples": 200})


def test_search_writes_every_artefact_and_the_best_mask_reproduces_its_macs(tmp_path):
    run = tmp_path / "run"
    summary = run_search(RunSpec(agent="random-search", episodes=12, **FAST), run_dir=run, progress=False)
    for name in ("config.json", "episodes.csv", "best_mask.npz", "summary.json", "learning_curve.png", "score_vs_macs.png",
                 "checkpoint/agent"):
        assert (run / name).exists(), name
    rows = read_episodes(run)
    assert [r.episode for r in rows] == list(range(12))
    best = best_episode(rows)
    assert summary["best"]["episode"] == best.episode and summary["best"]["score"] == pytest.approx(best.score)
    assert json.loads((run / "summary.json").read_text())["best"]["macs"] == summary["best"]["macs"]
    exported = load_pruned(export_run(run))
    assert count_macs_params(exported, (1, 28, 28))[0] == summary["best"]["macs"]
    assert not list(run.glob("*.partial"))


def test_interrupted_run_keeps_its_episodes_and_resumes_to_the_total(tmp_path, monkeypatch):
    run = tmp_path / "run"
    original_step = EpisodeRecorder.step
    calls = {"episodes": 0}

    def interrupting_step(self, action):
        result = original_step(self, action)
        if result[2]:
            calls["episodes"] += 1
            if calls["episodes"] == 5:
                raise KeyboardInterrupt
        return result

    monkeypatch.setattr(EpisodeRecorder, "step", interrupting_step)
    summary = run_search(RunSpec(agent="ddpg", episodes=10, agent_kwargs={"warmup_episodes": 3}, **FAST), run_dir=run, progress=False)
    assert summary["interrupted"] and summary["episodes_done"] == 5
    assert len(read_episodes(run)) == 5
    monkeypatch.setattr(EpisodeRecorder, "step", original_step)
    resumed = resume_search(run, progress=False)
    assert not resumed["interrupted"] and resumed["episodes_done"] == 10
    assert [r.episode for r in read_episodes(run)] == list(range(10))


def test_weights_fine_tuned_during_a_search_are_kept_exported_and_reloaded_on_resume(tmp_path):
    run = tmp_path / "run"
    config = RunSpec(task="lenet5-digits", env="FilterSelect-v0", env_kwargs={"reward": "try-and-learn", "reward_samples": 200},
                     agent="try-and-learn", episodes=20,
                     agent_kwargs={"recovery_steps": 10, "trials_per_update": 4, "max_updates_per_layer": 2})
    run_search(config, run_dir=run, progress=False)
    tuned = torch.load(run / "checkpoint" / "weights.pt", weights_only=True)
    original, pruned, keep = pruned_network(run)
    torch.testing.assert_close(pruned.features[0].weight, tuned["features.0.weight"][torch.from_numpy(keep[0])])
    assert not torch.equal(original.features[0].weight, tuned["features.0.weight"])
    resume_search(run, progress=False)
    for name, tensor in torch.load(run / "checkpoint" / "weights.pt", weights_only=True).items():
        assert torch.equal(tensor, tuned[name]), name


def test_bad_inputs_are_clear_errors_and_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="macs_budget"):
        run_search(RunSpec(task="lenet5-digits", env_kwargs={"macs_budget": 1.5}), run_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="installed agents"):
        run_search(RunSpec(agent="nope", **FAST), run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="registered tasks"):
        run_search(RunSpec(task="nope"), run_dir=tmp_path / "c")
    assert not any((tmp_path / name).exists() for name in "abc")
    with pytest.raises(RunError, match="config.json"):
        resume_search(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(RunError, match="--resume"):
        run_search(RunSpec(agent="uniform", episodes=1, **FAST), run_dir=tmp_path / "full")


def test_cli_search_recover_export_plot_and_list(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["search", "--task", "lenet5-digits", "--agent", "uniform", "--episodes", "2", "--run-dir", str(run), "--quiet",
            "--reward-samples", "200", "--env-arg", "criterion=std"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "reward-split accuracy" in out and str(run) in out
    assert json.loads((run / "config.json").read_text())["env_kwargs"]["criterion"] == "std"
    assert main(["recover", str(run), "--epochs", "1", "--quiet"]) == 0
    report = json.loads((run / "recovery.json").read_text())
    assert report["macs_pruned"] < report["macs_original"] and 0 < report["test_score_recovered"] <= 1
    assert report["latency_ms_pruned"] > 0
    assert main(["export", str(run), "--output", str(tmp_path / "net.pt")]) == 0
    assert (tmp_path / "net.pt").exists()
    (run / "learning_curve.png").unlink()
    assert main(["plot", str(run)]) == 0 and (run / "learning_curve.png").exists()
    assert main(["list", "agents"]) == 0 and "try-and-learn" in capsys.readouterr().out
    assert main(["search", "--task", "lenet5-digits", "--macs-budget", "0", "--run-dir", str(tmp_path / "bad")]) == 2
    assert "macs_budget" in capsys.readouterr().err


def test_wandb_offline_run_is_written_under_the_run_folder(tmp_path):
    run = tmp_path / "run"
    run_search(RunSpec(agent="uniform", episodes=3, wandb="offline", **FAST), run_dir=run, progress=False)
    assert list((run / "wandb").glob("offline-run-*")), "an offline wandb run to `wandb sync` later"


def test_an_evaluation_budget_stops_a_dense_reward_agent_within_an_episode(tmp_path):
    """A dense reward (``try-and-learn``: the score after every layer) evaluates at every step: capped, the search spends
    exactly the budget; uncapped, more."""
    config = RunSpec(task="lenet5-digits", env="FilterSelect-v0", agent="ddpg", episodes=12, seed=0,
                     env_kwargs={"reward": "try-and-learn", "reward_samples": 200, "action_type": "continuous"},
                     agent_kwargs={"warmup_episodes": 12})
    free = run_search(config, tmp_path / "free", progress=False)
    assert free["episodes_done"] == 12 and free["evaluations"] > 12
    capped = run_search(config.replace(max_evaluations=12), tmp_path / "capped", progress=False)
    assert capped["evaluations"] == 12 and capped["episodes_done"] < 12 and not capped["interrupted"]
    records, _ = RunFolder(tmp_path / "capped").episodes([6, 16])
    assert [r.evaluations for r in records] == sorted(r.evaluations for r in records) and records[-1].evaluations <= 12
    assert resume_search(tmp_path / "capped", progress=False)["evaluations"] == 12, "a resumed capped search spends nothing more"
    capped_config = RunFolder(tmp_path / "capped").read_spec()
    assert capped_config.max_evaluations == 12
    with pytest.raises(ValueError, match="max_evaluations"):
        run_search(config.replace(max_evaluations=0), tmp_path / "bad", progress=False)


def test_main_job_task_a_search_beats_uniform_pruning_and_the_table_says_so(tmp_path, capsys):
    """README's main job: on cnn5-digits, where to prune matters, so a short random search already beats uniform
    L1 pruning at the same budget; the summary and the printed table put the two side by side."""
    run = tmp_path / "run"
    spec = RunSpec(task="cnn5-digits", agent="random-search", episodes=20, seed=0,
                   env_kwargs={"macs_budget": 0.5, "bn_recalibration": 100})
    summary = run_search(spec, run_dir=run, progress=False)
    uniform, best = summary["uniform"], summary["best"]
    assert uniform["criterion"] == "l1" and 0.45 < uniform["macs_ratio"] <= 0.5 and best["macs_ratio"] <= 0.5
    assert best["score"] > uniform["score"] + 0.1, (best["score"], uniform["score"])
    assert json.loads((run / "summary.json").read_text())["uniform"] == uniform
    assert main(["search", "--resume", str(run)]) == 0  # a finished run prints its table again
    printed = capsys.readouterr().out
    assert f"uniform l1 (rate {uniform['rate']:.2f})" in printed
    assert f"the best episode beats uniform l1 pruning at the same budget (+{best['score'] - uniform['score']:.4f}" in printed
