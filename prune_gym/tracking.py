"""Learning curves: wandb runs (online, offline or disabled) and local PNG plots."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from prune_gym.runs import EpisodeRecord, RunFolder, SearchConfig, best_episode


class Tracker:
    """Sends a search's config, per-episode metrics and final plots to wandb (``config.wandb`` mode).

    Runs of one task share a wandb group, so several agents' learning curves
    compare side by side in the ``prune_gym`` project. ``disabled`` writes nothing.
    """

    def __init__(self, config: SearchConfig, run_dir: Path) -> None:
        self.run = None
        if config.wandb == "disabled":
            return
        import wandb

        self.run = wandb.init(project=config.wandb_project, group=config.task, name=run_dir.name, config=asdict(config),
                              mode=config.wandb, dir=str(run_dir), resume="allow", id=run_dir.name.replace(".", "-"))

    def log_episode(self, record: EpisodeRecord, best: EpisodeRecord | None) -> None:
        """One point per episode on every learning curve."""
        if self.run is not None:
            self.run.log({"episode_return": record.episode_return, "score": record.score,
                          "macs_ratio": record.macs_ratio, "params_ratio": record.params_ratio,
                          "budget_met": int(record.budget_met)}, step=record.episode)

    def log_agent_metrics(self, metrics: dict[str, float]) -> None:
        """The agent's own training metrics (losses, ...), at the current step."""
        if self.run is not None:
            self.run.log(metrics)

    def finish(self, summary: dict[str, Any], plots: list[Path]) -> None:
        """Attach the summary and the PNG plots, then close the wandb run."""
        if self.run is None:
            return
        import wandb

        self.run.summary.update({k: v for k, v in summary.get("best", {}).items() if np.isscalar(v)})
        self.run.log({path.stem: wandb.Image(str(path)) for path in plots})
        self.run.finish()


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write ``learning_curve.png`` and ``score_vs_macs.png`` from the run's ``episodes.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = RunFolder(run_dir)
    macs_budget = folder.read_config().macs_budget
    records, _ = folder.episodes()
    if not records:
        return []
    episodes = np.array([r.episode for r in records])
    returns = np.array([r.episode_return for r in records])
    window = max(1, min(20, len(records) // 5))
    moving = np.convolve(returns, np.ones(window) / window, mode="valid")

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(episodes, returns, ".", alpha=0.4, label="episode return")
    axis.plot(episodes[window - 1:], moving, label=f"moving average ({window})")
    axis.set(xlabel="episode", ylabel="return", title=folder.path.name)
    axis.legend()
    curve = folder.path / "learning_curve.png"
    figure.tight_layout()
    figure.savefig(curve, dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    macs = np.array([r.macs_ratio for r in records])
    scores = np.array([r.score for r in records])
    axis.scatter(macs, scores, c=episodes, s=10, cmap="viridis", label="episodes (colour = episode)")
    best = best_episode(records)
    assert best is not None
    axis.scatter([best.macs_ratio], [best.score], marker="*", s=250, c="red", label=f"best (episode {best.episode})")
    if macs_budget is not None:
        axis.axvline(macs_budget, color="grey", linestyle="--", label=f"MACs budget {macs_budget:g}")
    axis.set(xlabel="MACs kept / original", ylabel="reward-split score", title=folder.path.name)
    axis.legend(loc="lower right")
    scatter = folder.path / "score_vs_macs.png"
    figure.tight_layout()
    figure.savefig(scatter, dpi=100)
    plt.close(figure)
    return [curve, scatter]
