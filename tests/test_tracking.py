"""Tracking: real searches logged to an offline wandb run and to TensorBoard, read back; the figures across seeds; SB3
metrics forwarding."""

import json
import re
import struct
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from matplotlib.collections import FillBetweenPolyCollection
from matplotlib.patches import Rectangle
from run_cli import assert_one_line_error, cli
from scipy.stats import t
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import prune_gym
from prune_gym.cli import main
from prune_gym.errors import RunError
from prune_gym.plots import (
    PlottedRun,
    best_so_far,
    group_runs,
    learning_curve_figure,
    mean_and_ci,
    pareto_front,
    plot_runs,
    score_vs_macs_figure,
)
from prune_gym.runs import RunFolder, RunSpec, best_episode
from prune_gym.search import resume_search, run_search
from prune_gym.tracking import RUN_ID_FILE
from prune_gym.wrappers import EpisodeRecorder

FAST = dict(task="lenet5-digits", env_kwargs={"reward_samples": 200})
BLOCK, HEADER = 32768, 7  # wandb's .wandb file: LevelDB-log blocks; chunk header crc32 u32, length u16, type u8


def wandb_records(path: Path):
    """The ``Record`` protobufs of an offline run's ``.wandb`` file (wandb 0.31 ships no reader)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a wandb run file"
    position, pending = HEADER, b""  # the file header: ':W&B', magic u16, version u8
    while position + HEADER <= len(data):
        room = BLOCK - position % BLOCK
        if room < HEADER:  # a block's tail too short for a header is padding
            position += room
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        if kind == 0:
            position += room
            continue
        pending += data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def items(updates) -> dict:
    """History items or summary updates as a dict; nested keys (``["plots/x", "path"]``) as nested dicts."""
    values: dict = {}
    for item in updates:
        *outer, last = [item.key] if item.key else list(item.nested_key)
        target = values
        for key in outer:
            target = target.setdefault(key, {})
        target[last] = json.loads(item.value_json)
    return values


def read_offline_run(run_dir: Path) -> list[dict]:
    """Run metadata, config (its updates included), metric definitions, history rows and the final summary of every offline
    run in ``run_dir``."""
    import wandb

    wandb.teardown()  # the service writes the run file asynchronously: stop it, as the process's exit would, to read it whole
    runs = []
    for file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        run, config, metrics, history, summary, order = None, {}, {}, [], {}, []
        for record in wandb_records(file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = record.run
                config.update(items(run.config.update))
            elif kind == "config":
                config.update(items(record.config.update))
            elif kind == "metric":
                metrics[record.metric.name or record.metric.glob_name] = record.metric
            elif kind == "history":
                history.append(items(record.history.item))
                order.append(("history", set(history[-1])))
            elif kind == "summary":
                update = items(record.summary.update)
                summary.update(update)
                order.append(("summary", set(update)))
        runs.append({"run": run, "config": config, "metrics": metrics, "history": history, "summary": summary, "order": order})
    return runs


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard run in ``folder`` (all its event files), as (step, value) pairs by tag."""
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


def steps(points: list[tuple[int, float]]) -> list[int]:
    return [step for step, _ in points]


EPISODE_TAGS = {"evaluations", "env_steps", "seconds", "best/episode",
                *(f"{prefix}/{key}" for prefix in ("episode", "best") for key in ("return", "score", "macs_ratio", "params_ratio",
                                                                                   "budget_met"))}
SUMMARY_KEYS = {"interrupted", "total/episodes", "total/evaluations", "total/env_steps", "total/seconds",
                *(f"best/{key}" for key in ("episode", "return", "score", "macs_ratio", "params_ratio", "budget_met", "macs", "params",
                                            "kept_channels", "evaluations", "seconds"))}


def test_an_offline_search_logs_curves_agent_metrics_and_ends_with_the_best_episode_and_totals_as_summary(tmp_path):
    run = tmp_path / "run"
    config = RunSpec(agent="ddpg", episodes=6, agent_kwargs={"warmup_episodes": 2}, wandb="offline", wandb_tags=["mine"], **FAST)
    summary = run_search(config, run_dir=run, progress=False)
    (logged,) = read_offline_run(run)
    records = RunFolder(run).episodes()[0]
    best = summary["best"]

    assert logged["run"].run_id == (run / RUN_ID_FILE).read_text().strip() and re.fullmatch(r"[0-9a-f]{12}", logged["run"].run_id)
    assert logged["run"].display_name == "ddpg-s0" and logged["run"].run_group == "lenet5-digits/LayerRate-v0/macs0.5/error"
    assert list(logged["run"].tags) == ["ddpg", "seed=0", "mine"]
    wandb_config = logged["config"]
    assert wandb_config["prune_gym_version"] == prune_gym.__version__
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", wandb_config["git_commit"])  # the tests run from a git checkout
    assert wandb_config["agent_kwargs"]["sigma"] == 0.5 and wandb_config["env_kwargs"]["criterion"] == "l1"  # resolved defaults
    assert wandb_config["score_before"] == summary["score_before"] and wandb_config["original_macs"] == summary["original_macs"]

    metrics = logged["metrics"]
    assert metrics["episode"].options.hidden and metrics["evaluations"].options.hidden
    assert metrics["episode/*"].step_metric == "episode"
    assert metrics["best/*"].step_metric == "evaluations" and metrics["seconds"].step_metric == "episode"
    assert metrics["train/*"].step_metric == "episode" and metrics["rollout/*"].step_metric == "episode"
    assert {name for name, metric in metrics.items() if not metric.summary.none} == {"best/*"}, "no last value in the summary"

    episodes = [row for row in logged["history"] if "episode/return" in row]
    assert [row["episode"] for row in episodes] == list(range(6))
    for row, record in zip(episodes, records):
        assert row["episode/return"] == record.episode_return and row["episode/score"] == record.score
        assert row["episode/macs_ratio"] == record.macs_ratio and row["episode/budget_met"] == float(record.budget_met)
        assert row["evaluations"] == record.evaluations and row["seconds"] == pytest.approx(record.seconds, abs=1e-3)
        assert row["env_steps"] == 2 * (record.episode + 1)  # LeNet-5: two groups
        best_so_far_ = best_episode(records[: record.episode + 1])
        assert row["best/return"] == best_so_far_.episode_return and row["best/episode"] == best_so_far_.episode
    agent_rows = [row for row in logged["history"] if "train/critic_loss" in row]
    assert agent_rows and all(np.isfinite(row["train/critic_loss"]) and "episode" in row for row in agent_rows)
    assert any("rollout/ep_rew_mean" in row for row in logged["history"])

    final = {key: value for key, value in logged["summary"].items() if not key.startswith("_")}  # _runtime, ...: wandb's own
    assert set(final) == SUMMARY_KEYS, "the best episode and the totals, no last value of a curve"
    assert final["best/episode"] == best["episode"] and final["best/return"] == best["episode_return"]
    assert final["best/score"] == best["score"] and final["best/macs"] == best["macs"]
    assert final["best/kept_channels"] == best["kept_channels"] and final["interrupted"] is False
    assert final["total/episodes"] == 6 and final["total/evaluations"] == records[-1].evaluations
    assert final["total/env_steps"] == 12 and final["total/seconds"] == pytest.approx(records[-1].seconds, abs=1e-3)
    images = next(row for row in logged["history"] if "plots/learning_curve" in row)
    assert images["plots/learning_curve"]["_type"] == images["plots/score_vs_macs"]["_type"] == "image-file"
    assert list(run.glob("wandb/offline-run-*/files/media/images/plots/learning_curve_*.png"))
    plots_at = next(i for i, (kind, keys) in enumerate(logged["order"]) if kind == "history" and "plots/learning_curve" in keys)
    best_at = max(i for i, (kind, keys) in enumerate(logged["order"]) if kind == "summary" and "best/kept_channels" in keys)
    assert plots_at < best_at
    assert not any(keys & {"best/score", "best/return"} for _, keys in logged["order"][best_at + 1:]), "nothing overwrites the summary"


def test_online_wandb_without_credentials_is_a_one_line_error_and_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc either
    with pytest.raises(RunError, match=r"wandb online cannot start \(No API key.*wandb login.*--wandb offline"):
        run_search(RunSpec(agent="uniform", episodes=1, wandb="online", **FAST), run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_continues_its_wandb_and_tensorboard_runs_and_same_named_runs_never_share_one(tmp_path, monkeypatch):
    original_step = EpisodeRecorder.step
    finished = {"episodes": 0}

    def interrupting_step(self, action):
        result = original_step(self, action)
        finished["episodes"] += bool(result[2])
        if finished["episodes"] == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(EpisodeRecorder, "step", interrupting_step)
    first, tensorboard = tmp_path / "a" / "run", tmp_path / "tb"
    config = RunSpec(agent="random-search", episodes=4, wandb="offline", tensorboard=str(tensorboard), **FAST)
    assert run_search(config, run_dir=first, progress=False)["interrupted"]
    monkeypatch.setattr(EpisodeRecorder, "step", original_step)
    resume_search(first, progress=False)
    before, after = read_offline_run(first)
    run_id = (first / RUN_ID_FILE).read_text().strip()
    assert before["run"].run_id == after["run"].run_id == run_id
    assert [row["episode"] for row in after["history"] if "episode/return" in row] == [2, 3]
    assert before["summary"]["interrupted"] is True and after["summary"]["interrupted"] is False
    assert after["summary"]["best/episode"] == RunFolder(first).read_summary()["best"]["episode"]
    (folder,) = tensorboard.iterdir()
    assert folder.name == f"random-search-s0-{run_id}" and len(list(folder.glob("events.out.tfevents.*"))) == 2
    returns = tensorboard_scalars(folder)["episode/return"]
    assert returns == [(record.episode, pytest.approx(record.episode_return)) for record in RunFolder(first).episodes()[0]]

    moved = tmp_path / "elsewhere"  # a finished run: nothing to log, but another --tensorboard does not make it another run
    assert main(["search", "--resume", str(first), "--tensorboard", str(moved), "--quiet"]) == 0

    second = tmp_path / "b" / "run"
    run_search(RunSpec(agent="random-search", episodes=1, wandb="offline", **FAST), run_dir=second, progress=False)
    (other,) = read_offline_run(second)
    assert other["run"].display_name == after["run"].display_name == "random-search-s0" and other["run"].run_id != run_id


def test_tensorboard_gets_every_episode_the_agents_metrics_and_sb3s_own_logs(tmp_path):
    tensorboard = tmp_path / "tb"
    search = ["search", "--task", "lenet5-digits", "--reward-samples", "200", "--tensorboard", str(tensorboard), "--quiet"]
    cma_es = ["--agent", "cma-es", "--agent-arg", "population_size=4", "--episodes", "8"]
    assert main([*search, *cma_es, "--run-dir", str(tmp_path / "cma")]) == 0
    assert main([*search, "--run-dir", str(tmp_path / "ppo"), "--agent", "sb3:PPO", "--episodes", "12"]) == 0
    folders = {name: tensorboard / f"{agent}-s0-{(tmp_path / name / RUN_ID_FILE).read_text().strip()}"
               for name, agent in (("cma", "cma-es"), ("ppo", "sb3-PPO"))}
    assert sorted(tensorboard.iterdir()) == sorted(folders.values())

    cma, records = tensorboard_scalars(folders["cma"]), RunFolder(tmp_path / "cma").episodes()[0]
    assert set(cma) == EPISODE_TAGS | {"train/generation_best_return", "train/generation_mean_return"}
    assert {tag: steps(cma[tag]) for tag in EPISODE_TAGS} == {tag: list(range(8)) for tag in EPISODE_TAGS}, "one per episode"
    assert [value for _, value in cma["episode/return"]] == pytest.approx([record.episode_return for record in records])
    assert [value for _, value in cma["episode/macs_ratio"]] == pytest.approx([record.macs_ratio for record in records])
    assert [value for _, value in cma["evaluations"]] == [record.evaluations for record in records]
    assert cma["best/return"][-1][1] == pytest.approx(best_episode(records).episode_return)
    returns = [record.episode_return for record in records]  # log_metrics after each generation of 4, at its last episode
    assert cma["train/generation_best_return"] == [(3, pytest.approx(max(returns[:4]))), (7, pytest.approx(max(returns[4:])))]
    assert cma["train/generation_mean_return"] == [(3, pytest.approx(np.mean(returns[:4]))), (7, pytest.approx(np.mean(returns[4:])))]

    ppo, records = tensorboard_scalars(folders["ppo"]), RunFolder(tmp_path / "ppo").episodes()[0]
    assert {tag: steps(ppo[tag]) for tag in EPISODE_TAGS} == {tag: list(range(12)) for tag in EPISODE_TAGS}, "one per episode"
    sb3 = set(ppo) - EPISODE_TAGS
    assert {"train/value_loss", "train/policy_gradient_loss", "train/entropy_loss", "train/approx_kl", "rollout/ep_rew_mean"} <= sb3
    # SB3's own logger, against timesteps: a rollout is 4 episodes x 2 groups, its update's losses dumped with the next one
    returns = [record.episode_return for record in records]
    assert ppo["rollout/ep_rew_mean"] == [(8, pytest.approx(np.mean(returns[:4]))), (16, pytest.approx(np.mean(returns[:8]))),
                                          (24, pytest.approx(np.mean(returns)))]
    losses = {tag: points for tag, points in ppo.items() if tag.startswith("train/")}
    assert {tag: steps(points) for tag, points in losses.items()} == {tag: [16, 24] for tag in losses}
    assert np.all(np.isfinite([value for points in losses.values() for _, value in points]))


def test_tensorboard_misuse_is_a_one_line_error_and_leaves_nothing(tmp_path):
    a_file = tmp_path / "tb"
    a_file.write_text("")
    with pytest.raises(ValueError, match=f"^--tensorboard {a_file} is a file: give a folder"):
        run_search(RunSpec(agent="uniform", episodes=1, tensorboard=str(a_file), **FAST), run_dir=tmp_path / "a", progress=False)
    # SB3 would take tensorboard_log and write nothing there (the adapter sets its logger): refused, pointing at --tensorboard
    assert_one_line_error(cli("search", "--task", "lenet5-digits", "--reward-samples", "200", "--episodes", "1", "--quiet", "--agent",
                              "sb3:PPO", "--agent-arg", "tensorboard_log=logs", "--run-dir", str(tmp_path / "b"), cwd=tmp_path),
                          "tensorboard_log", "--tensorboard DIR")
    assert [path.name for path in tmp_path.iterdir()] == ["tb"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two seeds of DDPG (warm-up 4 episodes), one of uniform with L1 and one with std: real runs on LeNet-5 digits."""
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for seed in (0, 1):
        made[f"ddpg{seed}"] = root / f"ddpg-s{seed}"
        run_search(RunSpec(agent="ddpg", episodes=10, seed=seed, agent_kwargs={"warmup_episodes": 4}, **FAST),
                   run_dir=made[f"ddpg{seed}"], progress=False)
    for criterion in ("l1", "std"):
        made[criterion] = root / f"uniform-{criterion}"
        run_search(RunSpec(task="lenet5-digits", agent="uniform", episodes=2, env_kwargs={"criterion": criterion, "reward_samples": 200}),
                   run_dir=made[criterion], progress=False)
    return made


def test_runs_group_by_everything_but_the_seed_and_labels_name_what_differs(runs):
    groups = group_runs([PlottedRun.read(path) for path in runs.values()])
    assert [(group.label, group.seeds) for group in groups] == [("ddpg criterion=l1", "seeds 0, 1"), ("uniform criterion=l1", "seed 0"),
                                                                ("uniform criterion=std", "seed 0")]
    assert [g.label for g in group_runs([PlottedRun.read(runs["ddpg0"]), PlottedRun.read(runs["ddpg1"])])] == ["ddpg"]
    other_budget = runs["l1"].parent / "other-budget"
    run_search(RunSpec(task="lenet5-digits", agent="uniform", episodes=1,
                       env_kwargs={"macs_budget": 0.3, "reward_samples": 200}), run_dir=other_budget, progress=False)
    with pytest.raises(ValueError, match="differ in macs_budget"):
        group_runs([PlottedRun.read(runs["l1"]), PlottedRun.read(other_budget)])


def test_best_so_far_curves_mean_and_confidence_interval_and_pareto_front_are_exact():
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    mean, low, high = mean_and_ci(values)
    np.testing.assert_allclose(mean, [3.0, 4.0])
    np.testing.assert_allclose(high - mean, t.ppf(0.975, 2) * 2.0 / np.sqrt(3))
    np.testing.assert_array_equal(mean_and_ci(values[:1])[1], [1.0, 2.0])
    macs, score = pareto_front(np.array([0.5, 0.3, 0.4, 0.3, 0.6]), np.array([0.9, 0.7, 0.6, 0.8, 0.85]))
    np.testing.assert_array_equal(macs, [0.3, 0.5]) and np.testing.assert_array_equal(score, [0.8, 0.9])


def test_the_learning_curve_shows_each_groups_mean_best_so_far_its_interval_and_the_warm_up(runs):
    ddpg = [PlottedRun.read(runs["ddpg0"]), PlottedRun.read(runs["ddpg1"])]
    groups = group_runs([*ddpg, PlottedRun.read(runs["l1"])])
    figure = learning_curve_figure(groups)
    returns_axis, scores_axis = figure.axes
    mean_line = returns_axis.lines[0]
    curves = [best_so_far(run.records) for run in ddpg]
    end = min(evaluations[-1] for evaluations, _, _ in curves)
    for x, y in zip(mean_line.get_xdata(), mean_line.get_ydata()):
        assert x <= end
        at = [returns[np.searchsorted(evaluations, x, side="right") - 1] for evaluations, returns, _ in curves]
        assert y == pytest.approx(np.mean(at))
    assert any(isinstance(c, FillBetweenPolyCollection) for c in returns_axis.collections), "a 95% CI band for two seeds"
    warmup = max(run.records[3].evaluations for run in ddpg)
    spans = [p for p in returns_axis.patches if isinstance(p, Rectangle)]
    assert spans and 0 < spans[0].get_width() <= warmup
    figure.draw_without_rendering()  # runs the constrained layout
    legend = figure.legends[0].get_window_extent()
    assert legend.y1 <= min(axis.get_window_extent().y0 for axis in figure.axes), "the legend is below the data"
    title = figure.get_suptitle()
    for part in ("lenet5-digits", "LayerRate-v0", "MACs budget 0.5", "reward error", "ddpg (seeds 0, 1)", "uniform (seed 0)"):
        assert part in title


def test_the_pareto_figure_has_a_colour_bar_every_episode_and_each_runs_best(runs):
    groups = group_runs([PlottedRun.read(path) for path in runs.values()])
    figure = score_vs_macs_figure(groups)
    axis, colour_bar = figure.axes
    assert "evaluations" in colour_bar.get_ylabel()
    episodes = sum(len(run.records) for group in groups for run in group.runs)
    scatters = [c for c in axis.collections if len(c.get_offsets()) and c.get_array() is not None]
    assert sum(len(c.get_offsets()) for c in scatters) == episodes
    assert axis.get_xlabel() == "MACs kept / original" and axis.get_ylabel() == "reward-split accuracy"


def test_plot_command_writes_png_and_pdf_for_several_runs_and_rejects_empty_input(runs, tmp_path, capsys):
    output = tmp_path / "figures"
    assert main(["plot", *map(str, runs.values()), "--output", str(output)]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == ["learning_curve.pdf", "learning_curve.png", "score_vs_macs.pdf", "score_vs_macs.png"]
    assert all(Path(p).stat().st_size > 5000 for p in written)
    assert Path(written[1]).read_bytes()[:4] == b"%PDF"
    empty = tmp_path / "empty"
    empty.mkdir()
    RunFolder(empty).write_spec(RunSpec())
    assert main(["plot", str(empty)]) == 2 and "no finished episode" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no run folder"):
        plot_runs([], output)


def test_sb3_metrics_reach_the_agents_callback_without_files_or_output(tmp_path, monkeypatch, capsys):
    from prune_gym_agents.ddpg import AMCAgent

    monkeypatch.chdir(tmp_path)
    env = gym.make("prune_gym:LayerRate-v0", task="lenet5-digits", reward_samples=200)
    agent = AMCAgent(env, seed=0, warmup_episodes=1)
    received = []
    agent.metrics_callback = received.append
    agent.learn(3)
    assert len(received) == 3, "one dump per episode"
    assert received[0]["time/episodes"] == 1 and received[-1]["time/total_timesteps"] == 3 * agent.episode_length
    assert "train/critic_loss" in received[-1] and all(isinstance(v, float) for m in received for v in m.values())
    assert capsys.readouterr().out == "" and not list(tmp_path.iterdir())
