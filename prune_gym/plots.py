"""Figures of one or several runs: best-so-far learning curves across seeds and the score-vs-MACs Pareto front.

:func:`plot_runs` groups the runs that differ only in their seed (same agent,
environment and agent arguments) and writes each figure as PNG (200 dpi) and
PDF (vector, TrueType fonts), :func:`plot_run` those of one run into its own folder:

* ``learning_curve``: the best episode so far (budget met first, then the
  highest return, as the search ranks them): its return, and its score once it
  meets the MACs budget, against reward-split evaluations (the search's cost);
  mean and 95% confidence interval (Student t) over the seeds of each group, cut
  at the group's shortest run; a group of one run also shows every episode as a
  dot; the warm-up of random actions (``warmup_episodes`` in the agent's
  arguments, as DDPG has) shaded;
* ``score_vs_macs``: every episode of every run, shaded by the reward-split
  evaluations spent when it ran (colour bar), each group's Pareto front (the
  highest score for at most that many MACs), each run's best episode, the MACs
  budget and the unpruned network.

The title names task, environment, MACs budget, reward and the groups with their
seeds; legends sit below the axes, off the data.
"""

from __future__ import annotations

import functools
import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prune_gym.runs import EpisodeRecord, RunFolder, RunSpec, best_episode
from prune_gym.runs import best_so_far as best_episodes_so_far

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

SHARED_FIELDS = ("task", "env", "macs_budget", "reward")
"""Configuration fields every run of one figure must share."""
_NOT_SETTINGS = {"seed", "episodes", "device", "checkpoint_every", "wandb", "wandb_project", "wandb_entity", "wandb_group", "wandb_tags"}
_STYLE: dict[RcKeyType, Any] = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
          "ytick.labelsize": 7, "figure.titlesize": 9, "axes.spines.top": False, "axes.spines.right": False,
          "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5, "savefig.dpi": 200, "pdf.fonttype": 42}
_MARKERS = "os^Dv<>P"


@dataclass(frozen=True)
class PlottedRun:
    """What the figures read from a run folder."""

    path: Path
    config: RunSpec
    records: list[EpisodeRecord]
    metric: str
    score_before: float | None

    @classmethod
    def read(cls, path: str | Path) -> PlottedRun:
        """Read ``config.json``, ``episodes.csv`` and, when written, ``summary.json``.

        Raises:
            ValueError: the run has no finished episode.
        """
        folder = RunFolder(path)
        config = folder.read_spec()
        records, _ = folder.episodes()
        if not records:
            raise ValueError(f"run {folder.path} has no finished episode yet: nothing to plot")
        summary = folder.read_summary() if folder.summary_path.exists() else {}
        return cls(folder.path, config, records, summary.get("metric", "score"), summary.get("score_before"))

    @property
    def best(self) -> EpisodeRecord:
        """The run's best episode (budget met first, then the highest return)."""
        best = best_episode(self.records)
        assert best is not None
        return best

    @property
    def warmup_evaluations(self) -> int:
        """Reward-split evaluations spent in the agent's warm-up (``warmup_episodes`` of its arguments; 0 without one)."""
        episodes = int(self.config.agent_kwargs.get("warmup_episodes") or 0)
        return self.records[min(episodes, len(self.records)) - 1].evaluations if episodes > 0 else 0


@dataclass(frozen=True)
class RunGroup:
    """Runs that differ only in their seed, and the label that tells the group apart from the others."""

    label: str
    runs: list[PlottedRun]

    @property
    def seeds(self) -> str:
        """``seed 0`` or ``seeds 0, 1, 2``."""
        seeds = sorted(run.config.seed for run in self.runs)
        return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def _settings(config: RunSpec) -> dict[tuple[str, str], str]:
    """What makes runs different experiments (all but the seed, length and logging), values as JSON."""
    fields = {name: value for name, value in asdict(config).items() if name not in _NOT_SETTINGS | {"env_kwargs", "agent_kwargs"}}
    settings = {("", name): value for name, value in fields.items()}
    settings.update({("env", name): value for name, value in config.env_kwargs.items()})
    settings.update({("agent", name): value for name, value in config.agent_kwargs.items()})
    return {key: json.dumps(value, sort_keys=True) for key, value in settings.items()}


def _label(settings: dict[tuple[str, str], str], same_agent: list[dict[tuple[str, str], str]],
           every: list[dict[tuple[str, str], str]]) -> str:
    """The agent, then each setting whose value differs in another group (of the same agent, for the agent's arguments)."""
    details = []
    for (kind, name), value in settings.items():
        peers = same_agent if kind == "agent" else every
        if name != "agent" and any(peer.get((kind, name)) != value for peer in peers):
            plain = json.loads(value)
            details.append(f"{name}={plain if isinstance(plain, str) else value}")
    return " ".join([json.loads(settings[("", "agent")]), *details])


def group_runs(runs: Sequence[PlottedRun]) -> list[RunGroup]:
    """Group runs by everything but the seed; labels are the agent plus the settings that tell its group apart.

    Raises:
        ValueError: the runs differ in task, environment, MACs budget or reward (one figure compares one setting).
    """
    for name in SHARED_FIELDS:
        values = {json.dumps(getattr(run.config, name)) for run in runs}
        if len(values) > 1:
            raise ValueError(f"the runs differ in {name} ({', '.join(sorted(values))}): plot runs of one task, environment, "
                             "MACs budget and reward together")
    by_setting: dict[tuple, list[PlottedRun]] = {}
    for run in runs:
        by_setting.setdefault(tuple(sorted(_settings(run.config).items())), []).append(run)
    every = [dict(key) for key in by_setting]
    groups = [RunGroup(_label(settings, [s for s in every if s[("", "agent")] == settings[("", "agent")]], every), members)
              for settings, members in zip(every, by_setting.values())]
    return sorted(groups, key=lambda group: group.label)


def best_so_far(records: Sequence[EpisodeRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """After each episode: reward-split evaluations so far, the best episode's return, and its score once it meets
    the budget (NaN before)."""
    rows = [(record.evaluations, best.episode_return, best.score if best.budget_met else np.nan)
            for record, best in zip(records, best_episodes_so_far(list(records)))]
    evaluations, returns, scores = np.array(rows, dtype=float).T
    return evaluations, returns, scores


def mean_and_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs (axis 0) and its Student-t confidence interval (the mean itself for one run)."""
    mean = values.mean(axis=0)
    if len(values) < 2:
        return mean, mean, mean
    from scipy.stats import t

    half = t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(axis=0, ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def curves_on_grid(runs: Sequence[PlottedRun]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs' best-so-far returns and scores (one row per run) at every evaluation count any run reached, up to
    the shortest run's end."""
    curves = [best_so_far(run.records) for run in runs]
    end = min(evaluations[-1] for evaluations, _, _ in curves)
    grid = np.unique(np.concatenate([evaluations for evaluations, _, _ in curves]))
    grid = grid[grid <= end]

    def at_grid(evaluations: np.ndarray, values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(evaluations, grid, side="right") - 1  # the last episode finished by then
        return np.where(index >= 0, values[np.maximum(index, 0)], np.nan)

    returns = np.array([at_grid(evaluations, values) for evaluations, values, _ in curves])
    scores = np.array([at_grid(evaluations, values) for evaluations, _, values in curves])
    return grid, returns, scores


def pareto_front(macs_ratio: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points no other point beats (at most as many MACs and a higher score), by increasing MACs."""
    order = np.lexsort((-score, macs_ratio))
    front, highest = [], -np.inf
    for index in order:
        if score[index] > highest:
            front.append(index)
            highest = score[index]
    return macs_ratio[front], score[front]


def _title(groups: Sequence[RunGroup], width: int) -> str:
    """Task, environment, budget and reward; then the groups and their seeds, wrapped to ``width`` characters."""
    config = groups[0].runs[0].config
    budget = "default" if config.macs_budget is None else f"{config.macs_budget:g}"
    runs = textwrap.fill("; ".join(f"{group.label} ({group.seeds})" for group in groups), width, break_on_hyphens=False)
    return f"{config.task} · {config.env} · MACs budget {budget} · reward {config.reward}\n{runs}"


def _styled(draw: Callable[[Sequence[RunGroup]], Figure]) -> Callable[[Sequence[RunGroup]], Figure]:
    """Draw under the figures' style (font sizes, grid, no top/right spines)."""

    @functools.wraps(draw)
    def styled(groups: Sequence[RunGroup]) -> Figure:
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return draw(groups)

    return styled


def _colours(groups: Sequence[RunGroup]) -> list[Any]:
    """One tab10 colour per group."""
    import matplotlib

    return [matplotlib.colormaps["tab10"](index % 10) for index in range(len(groups))]


@_styled
def learning_curve_figure(groups: Sequence[RunGroup]) -> Figure:
    """The best episode so far against reward-split evaluations: its return (left), its score within the budget (right)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    colours = _colours(groups)
    figure = Figure(figsize=(7.0, 3.4), layout="constrained")
    axes = figure.subplots(1, 2, sharex=True)
    metric = groups[0].runs[0].metric
    handles: list[Any] = []
    labels: list[str] = []
    shown: list[list[np.ndarray]] = [[], []]  # per panel: the values drawn, which set its scale
    for group, colour in zip(groups, colours):
        grid, returns, scores = curves_on_grid(group.runs)
        several = len(group.runs) > 1
        for axis, values, seen in zip(axes, (returns, scores), shown):
            seen.append(values.ravel())
            mean, low, high = mean_and_ci(values)
            line, = axis.plot(grid, mean, drawstyle="steps-post", color=colour, marker="o" if len(grid) == 1 else None, markersize=4)
            if several:
                axis.fill_between(grid, low, high, step="post", color=colour, alpha=0.2, linewidth=0)
        handles.append(line)
        labels.append(f"{group.label}: mean ± 95% CI" if several else group.label)
        if not several:  # one run: every episode as a dot
            records = group.runs[0].records
            met = [r for r in records if r.budget_met]
            for axis, seen, episodes, value in zip(axes, shown, (records, met), ("episode_return", "score")):
                seen.append(np.array([getattr(r, value) for r in episodes]))
                axis.plot([r.evaluations for r in episodes], seen[-1], ".", color=colour, alpha=0.3, markersize=3)
        warmup = min(np.mean([run.warmup_evaluations for run in group.runs]), grid[-1])
        if warmup:
            for axis in axes:
                span = axis.axvspan(0, warmup, color=colour, alpha=0.1, linewidth=0)
            handles.append(span)
            labels.append(f"{group.label}: warm-up (random actions)")
    for axis, seen in zip(axes, shown):  # the runs' values set the scale; a wide interval of few seeds runs off it
        values = np.concatenate(seen)
        if np.isfinite(values).any():
            low, high = np.nanmin(values), np.nanmax(values)
            axis.set_ylim(low - 0.05 * (high - low + 1e-3), high + 0.05 * (high - low + 1e-3))
    if any(len(group.runs) == 1 for group in groups):
        handles.append(Line2D([], [], linestyle="", marker=".", color="grey"))
        labels.append("episodes of a single run")
    axes[0].set(title="best episode so far: return", xlabel="reward-split evaluations", ylabel="return")
    axes[1].set(title="best episode so far, once within the MACs budget", xlabel="reward-split evaluations",
                ylabel=f"reward-split {metric}")
    if not any(record.budget_met for group in groups for run in group.runs for record in run.records):
        axes[1].text(0.5, 0.5, "no episode met the MACs budget", transform=axes[1].transAxes, ha="center", va="center")
    figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), frameon=False)
    figure.suptitle(_title(groups, 110))
    return figure


@_styled
def score_vs_macs_figure(groups: Sequence[RunGroup]) -> Figure:
    """Every episode's score against its MACs, with each group's Pareto front and each run's best episode."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    colours = _colours(groups)
    figure = Figure(figsize=(5.2, 4.6), layout="constrained")
    axis = figure.subplots()
    shades = ListedColormap(matplotlib.colormaps["Greys"](np.linspace(0.25, 1.0, 256)))
    scale = Normalize(0, max(run.records[-1].evaluations for group in groups for run in group.runs))
    handles: list[Any] = []
    labels: list[str] = []
    for group, colour, marker in zip(groups, colours, _MARKERS * len(groups)):
        records = [record for run in group.runs for record in run.records]
        macs = np.array([r.macs_ratio for r in records])
        score = np.array([r.score for r in records])
        axis.scatter(macs, score, c=[r.evaluations for r in records], cmap=shades, norm=scale, marker=marker, s=10, linewidths=0,
                     alpha=0.7)
        axis.plot(*pareto_front(macs, score), drawstyle="steps-post", color=colour, linewidth=1.5)
        axis.scatter([run.best.macs_ratio for run in group.runs], [run.best.score for run in group.runs], marker="*", s=120,
                     color=colour, edgecolors="black", linewidths=0.5, zorder=3)
        handles.append(Line2D([], [], color=colour, marker=marker, markerfacecolor="grey", markeredgewidth=0))
        labels.append(group.label)
    handles.append(Line2D([], [], linestyle="", marker="*", markersize=10, color="white", markeredgecolor="black"))
    labels.append("best episode of a run")
    config = groups[0].runs[0].config
    if config.macs_budget is not None:
        handles.append(axis.axvline(config.macs_budget, color="tab:red", linestyle="--", linewidth=1))
        labels.append(f"MACs budget {config.macs_budget:g}")
    before = groups[0].runs[0].score_before
    if before is not None:
        handles.append(axis.scatter([1.0], [before], marker="X", s=50, color="black", zorder=3))
        labels.append("unpruned network")
    axis.set(xlabel="MACs kept / original", ylabel=f"reward-split {groups[0].runs[0].metric}")
    figure.colorbar(ScalarMappable(scale, shades), ax=axis, label="reward-split evaluations when the episode ran")
    figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False,
                  title="markers: episodes (shade: colour bar) · lines: Pareto fronts", title_fontsize=7)
    figure.suptitle(_title(groups, 80))
    return figure


def plot_runs(run_dirs: Sequence[str | Path], output: str | Path) -> list[Path]:
    """Write ``learning_curve`` and ``score_vs_macs`` (.png and .pdf) of the runs into ``output``; returns the paths.

    Raises:
        ValueError: no run given, a run without episodes, or runs of different tasks, environments, budgets or rewards.
    """
    import matplotlib

    if not run_dirs:
        raise ValueError("no run folder given: pass one or more run folders")
    groups = group_runs([PlottedRun.read(path) for path in run_dirs])
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(_STYLE):  # savefig reads dpi and PDF font type then
        for name, draw in (("learning_curve", learning_curve_figure), ("score_vs_macs", score_vs_macs_figure)):
            figure = draw(groups)
            for suffix in (".png", ".pdf"):
                paths.append(folder / f"{name}{suffix}")
                figure.savefig(paths[-1])
    return paths


def plot_run(run_dir: str | Path) -> list[Path]:
    """Draw one run's figures into its own folder (:func:`plot_runs`); returns the PNG and PDF paths."""
    return plot_runs([run_dir], run_dir)
