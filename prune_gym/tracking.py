"""Learning curves: wandb runs (online, offline or disabled) and local PNG plots."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prune_gym.wrappers import EpisodeRecord

if TYPE_CHECKING:
    from prune_gym.search import SearchConfig


class Tracker:
    """Sends a search's config, per-episode metrics and final plots to wandb (``config.wandb`` mode).

    Runs of one task share a wandb group, so several agents' learning curves
    compare side by side in the ``prune_gym`` project. ``disabled`` writes nothing.
    """

    def __init__(self, config: "SearchConfig", run_dir: Path) -> None:
        self.run = None
        if config.wandb == "disabled":
            return
        import wandb

        self.run = wandb.init(project="prune_gym", group=config.task, name=run_dir.name, config=asdict(config),
                              mode=config.wandb, dir=str(run_dir), resume="allow", id=run_dir.name.replace(".", "-"))

    def log_episode(self, record: EpisodeRecord) -> None:
        """One point per episode on every learning curve."""
        if self.run is not None:
            self.run.log({"episode_return": record.episode_return, "accuracy": record.accuracy,
                          "macs_ratio": record.macs_ratio, "params_ratio": record.params_ratio,
                          "budget_met": int(record.budget_met)}, step=record.episode)

    def finish(self, summary: dict[str, Any], plots: list[Path]) -> None:
        """Attach the summary and the PNG plots, then close the wandb run."""
        if self.run is None:
            return
        import wandb

        self.run.summary.update({k: v for k, v in summary.get("best", {}).items() if np.isscalar(v)})
        self.run.log({path.stem: wandb.Image(str(path)) for path in plots})
        self.run.finish()


def plot_run(run_dir: str | Path, macs_budget: float) -> list[Path]:
    """Write ``learning_curve.png`` and ``accuracy_vs_macs.png`` from the run's ``episodes.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prune_gym.search import read_episodes

    run_dir = Path(run_dir)
    rows = read_episodes(run_dir)
    if not rows:
        return []
    episodes = np.array([r["episode"] for r in rows])
    returns = np.array([r["episode_return"] for r in rows])
    window = max(1, min(20, len(rows) // 5))
    moving = np.convolve(returns, np.ones(window) / window, mode="valid")

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(episodes, returns, ".", alpha=0.4, label="episode return")
    axis.plot(episodes[window - 1:], moving, label=f"moving average ({window})")
    axis.set(xlabel="episode", ylabel="return", title=run_dir.name)
    axis.legend()
    curve = run_dir / "learning_curve.png"
    figure.tight_layout()
    figure.savefig(curve, dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    macs = np.array([r["macs_ratio"] for r in rows])
    accuracy = np.array([r["accuracy"] for r in rows])
    axis.scatter(macs, accuracy, c=episodes, s=10, cmap="viridis", label="episodes (colour = episode)")
    best = max(rows, key=lambda r: (r["budget_met"], r["episode_return"]))
    axis.scatter([best["macs_ratio"]], [best["accuracy"]], marker="*", s=250, c="red", label=f"best (episode {best['episode']})")
    axis.axvline(macs_budget, color="grey", linestyle="--", label=f"MACs budget {macs_budget:g}")
    axis.set(xlabel="MACs kept / original", ylabel="reward-split accuracy", title=run_dir.name)
    axis.legend(loc="lower right")
    scatter = run_dir / "accuracy_vs_macs.png"
    figure.tight_layout()
    figure.savefig(scatter, dpi=100)
    plt.close(figure)
    return [curve, scatter]
