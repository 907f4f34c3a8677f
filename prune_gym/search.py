"""Searches as runs: one folder per run, every episode on disk as it finishes, resumable.

A run folder holds ``config.json`` (the resolved configuration, written
first), ``episodes.csv`` (one row per finished episode, flushed at once),
``best_mask.npz`` (the keep-mask of the best episode: the highest return
among episodes that meet the MACs budget, else the highest return),
``agent*`` (the agent's state), ``summary.json`` and the PNG plots. Ctrl-C
keeps every finished episode; ``resume`` continues to the requested count.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from prune_gym.agent_api import load_agent_class, make_agent
from prune_gym.errors import RunError
from prune_gym.pruning import PrunableNetwork, recalibrate_batchnorm
from prune_gym.rewards import get_reward
from prune_gym.tasks import get_task
from prune_gym.tracking import Tracker, plot_run
from prune_gym.wrappers import EpisodeRecord, EpisodeRecorder

CSV_FIELDS = ["episode", "episode_return", "accuracy", "macs_ratio", "params_ratio", "macs", "params", "budget_met", "rates", "kept_channels"]
ENV_IDS = ("LayerRate-v0", "FilterSelect-v0")


@dataclass
class SearchConfig:
    """Everything that defines a search (saved as the run's ``config.json``)."""

    task: str = "lenet5-digits"
    env: str = "LayerRate-v0"
    agent: str = "ddpg"
    reward: str = "accuracy"
    macs_budget: float = 0.5
    episodes: int = 400
    seed: int = 0
    reward_samples: int | None = 1000
    device: str = "cpu"
    wandb: str = "disabled"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Fail before anything is written: unknown names or out-of-range values."""
        get_task(self.task)
        get_reward(self.reward)
        load_agent_class(self.agent)
        if self.env not in ENV_IDS:
            raise ValueError(f"unknown env {self.env!r}; choose one of {list(ENV_IDS)}")
        if not 0 < self.macs_budget <= 1:
            raise ValueError(f"--macs-budget {self.macs_budget} is outside (0, 1]: give the fraction of MACs to keep, e.g. 0.5")
        if self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")
        if self.wandb not in ("online", "offline", "disabled"):
            raise ValueError(f"--wandb {self.wandb!r}: choose online, offline or disabled")


def _write_atomic(path: Path, write) -> None:
    """Write through a temp file in the same folder, then rename: never a partial file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_mask(path: Path, keep: list[np.ndarray]) -> None:
    """A keep-mask as ``.npz`` (one boolean array per group), atomically."""
    _write_atomic(path, lambda name: np.savez(open(name, "wb"), *[np.asarray(m, dtype=bool) for m in keep]))


def load_mask(path: Path) -> list[np.ndarray]:
    """The keep-mask saved by :func:`save_mask`."""
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def read_episodes(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``episodes.csv`` with numeric fields parsed."""
    path = Path(run_dir) / "episodes.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["episode"] = int(row["episode"])
        for key in ("episode_return", "accuracy", "macs_ratio", "params_ratio"):
            row[key] = float(row[key])
        row["budget_met"] = row["budget_met"] == "True"
    return rows


def _is_better(candidate: dict[str, Any], best: dict[str, Any] | None) -> bool:
    if best is None:
        return True
    return (candidate["budget_met"], candidate["episode_return"]) > (best["budget_met"], best["episode_return"])


class _SearchDone(Exception):
    """Raised from the episode callback once the requested episodes are done (agents may overshoot)."""


def default_run_dir(config: SearchConfig) -> Path:
    """``runs/<task>-<env>-<agent>-s<seed>-<time>``."""
    agent = config.agent.replace(":", "-")
    return Path("runs") / f"{config.task}-{config.env.split('-')[0]}-{agent}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_search(config: SearchConfig, run_dir: str | Path | None = None, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary also written to ``summary.json``.

    Raises:
        RunError: resuming a folder without ``config.json``, or starting in a non-empty folder.
        ValueError: an invalid configuration (nothing is written).
    """
    if resume:
        run_dir = Path(run_dir) if run_dir is not None else None
        if run_dir is None or not (run_dir / "config.json").exists():
            raise RunError(f"cannot resume {run_dir}: it has no config.json (is it a prune-gym run folder?)")
        config = SearchConfig(**json.loads((run_dir / "config.json").read_text()))
    else:
        config.validate()
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunError(f"run folder {run_dir} is not empty: pass --resume {run_dir} to continue it, or choose another --run-dir")

    rows = read_episodes(run_dir) if resume else []
    env_kwargs = {"reward_samples": config.reward_samples, "device": config.device, **config.env_kwargs}
    env = gym.make(f"prune_gym:{config.env}", task=config.task, reward=config.reward, macs_budget=config.macs_budget, **env_kwargs)
    best = max(rows, key=lambda r: (r["budget_met"], r["episode_return"]), default=None)
    state = {"best": best, "rows": rows}
    run_dir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(config, run_dir)

    bar = tqdm(total=config.episodes, initial=len(rows), desc="search", disable=not progress, unit="episode")

    def on_episode(record: EpisodeRecord) -> None:
        row = {**record.row(), "rates": " ".join(f"{r:.4f}" for r in record.rates),
               "kept_channels": " ".join(map(str, record.kept_channels))}
        row = {key: row[key] for key in CSV_FIELDS}
        with open(run_dir / "episodes.csv", "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            if handle.tell() == 0:
                writer.writeheader()
            writer.writerow(row)
        state["rows"].append(row)
        if _is_better(row, state["best"]):
            state["best"] = row
            save_mask(run_dir / "best_mask.npz", record.keep_mask)
        tracker.log_episode(record)
        best_row = state["best"]
        bar.set_postfix(best=f"{best_row['episode_return']:.4f}", acc=f"{best_row['accuracy']:.3f}", macs=f"{best_row['macs_ratio']:.3f}")
        bar.update()
        if len(state["rows"]) >= config.episodes:
            raise _SearchDone

    recorder = EpisodeRecorder(env, on_episode, start_episode=len(rows))
    if not resume:
        _write_atomic(run_dir / "config.json", lambda name: Path(name).write_text(json.dumps(asdict(config), indent=2)))
    agent = make_agent(config.agent, recorder, seed=config.seed, **config.agent_kwargs)
    agent_path = run_dir / "agent"
    weights_path = run_dir / "weights.pt"
    if resume and any(run_dir.glob("agent*")):
        agent.load(agent_path)
    if resume and weights_path.exists():
        env.unwrapped.load_state_dict(torch.load(weights_path, map_location=config.device, weights_only=True))
    start, interrupted = time.perf_counter(), False
    try:
        remaining = config.episodes - len(rows)
        if remaining > 0:
            agent.learn(remaining)
    except _SearchDone:
        pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        agent.save(agent_path)
        if env.unwrapped.weights_changed:
            weights = {k: v.detach().cpu() for k, v in env.unwrapped.network.model.state_dict().items()}
            _write_atomic(weights_path, lambda name: torch.save(weights, name))
    summary = _summarise(config, env.unwrapped, run_dir, state["rows"], state["best"], time.perf_counter() - start, interrupted)
    _write_atomic(run_dir / "summary.json", lambda name: Path(name).write_text(json.dumps(summary, indent=2)))
    plots = plot_run(run_dir, config.macs_budget)
    tracker.finish(summary, plots)
    env.close()
    return summary


def _summarise(config: SearchConfig, env, run_dir: Path, rows: list[dict[str, Any]], best: dict[str, Any] | None,
               seconds: float, interrupted: bool) -> dict[str, Any]:
    network = env.network
    summary: dict[str, Any] = {
        "run_dir": str(run_dir), "task": config.task, "env": config.env, "agent": config.agent, "reward": config.reward,
        "macs_budget": config.macs_budget, "episodes_done": len(rows), "episodes_requested": config.episodes,
        "interrupted": interrupted, "seconds_this_session": seconds,
        "original_macs": network.original_macs, "original_params": network.original_params,
        "accuracy_before": env.accuracy_before,
        "groups": [{"name": g.name, "channels": g.num_channels} for g in network.groups],
    }
    if best is not None:
        keep = load_mask(run_dir / "best_mask.npz")
        macs, params = network.macs_params(keep)
        summary["best"] = {"episode": int(best["episode"]), "episode_return": float(best["episode_return"]),
                           "accuracy": float(best["accuracy"]), "macs": macs, "params": params,
                           "macs_ratio": macs / network.original_macs, "params_ratio": params / network.original_params,
                           "budget_met": bool(best["budget_met"]), "kept_channels": [int(m.sum()) for m in keep]}
    return summary


def load_config(run_dir: str | Path) -> SearchConfig:
    """The configuration of a run folder."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir} has no config.json: not a prune-gym run folder")
    return SearchConfig(**json.loads(path.read_text()))


def pruned_network(run_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, nn.Module, list[np.ndarray]]:
    """(original model, physically pruned model, keep-mask) of a run's best episode.

    The pruned model comes from the run's ``weights.pt`` when the agent fine-tuned
    the network during the search (try-and-learn), else from the pretrained weights;
    with ``bn_recalibration`` its BatchNorm statistics are recalibrated as in the search.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    if not (run_dir / "best_mask.npz").exists():
        raise RunError(f"{run_dir} has no best_mask.npz: no episode finished yet")
    task = get_task(config.task)
    model = task.load_model(device=device, progress=False)
    searched = model
    if (run_dir / "weights.pt").exists():  # the agent fine-tuned the network during the search
        searched = copy.deepcopy(model)
        searched.load_state_dict(torch.load(run_dir / "weights.pt", map_location=device, weights_only=True))
    keep = load_mask(run_dir / "best_mask.npz")
    splits = task.splits(device)
    pruned = PrunableNetwork(searched, splits.reward_x[:1]).export(keep)
    if config.env_kwargs.get("bn_recalibration"):  # the statistics the search scored it with
        recalibrate_batchnorm(pruned, splits.train_x[:config.env_kwargs["bn_recalibration"]])
    return model, pruned, keep


def export_pruned(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write the best pruned network's state dict and mask (tensors only: ``weights_only`` loadable)."""
    run_dir = Path(run_dir)
    _, pruned, keep = pruned_network(run_dir)
    output = Path(output) if output is not None else run_dir / "pruned.pt"
    payload = {"task": load_config(run_dir).task, "keep_mask": [torch.from_numpy(m) for m in keep], "state_dict": pruned.state_dict()}
    _write_atomic(output, lambda name: torch.save(payload, name))
    return output


def load_pruned(path: str | Path, device: str = "cpu") -> nn.Module:
    """Rebuild a pruned network from a file written by :func:`export_pruned` (no code is unpickled)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    task = get_task(payload["task"])
    model = task.build_model().to(device)
    network = PrunableNetwork(model.eval(), task.splits(device).reward_x[:1])
    pruned = network.export([m.numpy() for m in payload["keep_mask"]])
    pruned.load_state_dict(payload["state_dict"])
    return pruned.eval()


def _latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Median wall time of one batched forward pass, in milliseconds."""
    timings = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


def finetune_run(run_dir: str | Path, epochs: int = 5, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """One-step recovery (ICTAI 2019): fine-tune the run's best pruned network once; writes ``finetune.json``.

    Reports test accuracy of the original, the pruned and the fine-tuned
    network, their MACs and params, and CPU/GPU latency of a 100-image batch.
    """
    from prune_gym.pruning import count_macs_params
    from prune_gym.tasks import evaluate, finetune

    run_dir = Path(run_dir)
    task = get_task(load_config(run_dir).task)
    original, pruned, keep = pruned_network(run_dir, device)
    splits = task.splits(device)
    report: dict[str, Any] = {"test_accuracy_original": evaluate(original, splits.test_x, splits.test_y),
                              "test_accuracy_pruned": evaluate(pruned, splits.test_x, splits.test_y)}
    result = finetune(pruned, splits, epochs, task.training, progress=progress)
    macs, params = count_macs_params(original, task.input_shape)
    pruned_macs, pruned_params = count_macs_params(pruned, task.input_shape)
    batch = splits.test_x[:100]
    report.update(test_accuracy_finetuned=result.test_accuracy, finetune_epochs=epochs, finetune_seconds=round(result.seconds, 1),
                  macs_original=macs, macs_pruned=pruned_macs, params_original=params, params_pruned=pruned_params,
                  latency_ms_original=round(_latency_ms(original, batch), 2), latency_ms_pruned=round(_latency_ms(pruned, batch), 2),
                  device=device)
    payload = {"task": task.name, "keep_mask": [torch.from_numpy(m) for m in keep], "state_dict": pruned.state_dict()}
    _write_atomic(run_dir / "finetuned.pt", lambda name: torch.save(payload, name))
    _write_atomic(run_dir / "finetune.json", lambda name: Path(name).write_text(json.dumps(report, indent=2)))
    return report
