"""Experiment tracking in wandb (online, offline or disabled), following wandb's stable-baselines3 integration.

One wandb run per run folder: its id is created once and kept in the folder
(``wandb_run_id.txt``), so ``--resume`` continues the same wandb run and two
folders never merge, whatever their names. The run's config is the resolved
:class:`~prune_gym.runs.RunSpec` plus ``prune_gym_version`` and
``git_commit`` (of prune_gym's source checkout, when it is one); its group
defaults to task/env/budget/reward (:func:`default_group`), so agents and seeds
of one setting compare side by side; its tags are the agent, ``seed=N`` and
the user's ``wandb_tags``.

What is logged (x-axes declared with ``define_metric``):

=================  ===================================================================
``episode``        index of the episode in ``episodes.csv``: x-axis of ``episode/*`` and of the agent's metrics
``evaluations``    distinct reward-split evaluations so far: x-axis of ``best/*``
``env_steps``      environment steps so far (one per group and episode)
``seconds``        wall time of the search so far
``episode/*``      ``return``, ``score`` (the task's metric), ``macs_ratio``, ``params_ratio``
                   (kept / original), ``budget_met`` of each episode (no summary: single episodes are noise)
``best/*``         the search's best episode so far (budget met first, then the highest return):
                   ``episode``, ``return``, ``score``, ``macs_ratio``, ``params_ratio``, ``budget_met``
agent metrics      under the agent's own names (``train/critic_loss``, ``rollout/ep_rew_mean``, ...)
``plots/*``        the figures of :mod:`prune_gym.plots`, at the end
=================  ===================================================================

The run's summary is the best episode (``best/*``, plus its ``macs``, ``params``,
``kept_channels``, ``evaluations`` and ``seconds``) and the search's outcome
(``episodes_done``, ``interrupted``, ``score_before``, ``original_macs``,
``original_params``), written after everything else so nothing overwrites it.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prune_gym.errors import RunError
from prune_gym.runs import EpisodeRecord, RunSpec

RUN_ID_FILE = "wandb_run_id.txt"
_EPISODE_FIELDS = {"return": "episode_return", "score": "score", "macs_ratio": "macs_ratio", "params_ratio": "params_ratio",
                   "budget_met": "budget_met"}


def default_group(config: RunSpec) -> str:
    """The wandb group of runs that compare directly: ``<task>/<env>/macs<budget>/<reward>``."""
    budget = "default" if config.macs_budget is None else f"{config.macs_budget:g}"
    return f"{config.task}/{config.env}/macs{budget}/{config.reward or 'default'}"


def run_tags(config: RunSpec) -> list[str]:
    """The agent, ``seed=N`` and the user's tags, without repeats."""
    return list(dict.fromkeys([config.agent, f"seed={config.seed}", *config.wandb_tags]))


def source_commit() -> str | None:
    """The git commit of prune_gym's source checkout (``-dirty`` if it has uncommitted changes); None when not a checkout."""
    package = Path(__file__).resolve().parent

    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(package), *arguments], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        top_level, commit = git("rev-parse", "--show-toplevel", "HEAD").splitlines()
        if Path(top_level).resolve() != package.parent:  # an installed copy inside some other repository
            return None
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def run_config(config: RunSpec) -> dict[str, Any]:
    """The wandb config: the resolved search configuration, prune_gym's version and source commit."""
    from prune_gym import __version__

    return {**asdict(config), "wandb_tags": list(config.wandb_tags), "prune_gym_version": __version__, "git_commit": source_commit()}


def run_id(run_dir: Path) -> str:
    """The wandb run id kept in ``run_dir`` (created on first use: 12 random hex digits)."""
    path = run_dir / RUN_ID_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(6) + "\n")
    return path.read_text().strip()


def episode_metrics(prefix: str, episode: Mapping[str, Any]) -> dict[str, float]:
    """``<prefix>/return``, ``score``, ``macs_ratio``, ``params_ratio`` and ``budget_met`` (1.0 or 0.0) of an episode
    given as a mapping of :class:`EpisodeRecord` fields."""
    return {f"{prefix}/{key}": float(episode[field]) for key, field in _EPISODE_FIELDS.items()}


def best_metrics(best: Mapping[str, Any]) -> dict[str, float]:
    """``best/*``: the best episode's index and :func:`episode_metrics`."""
    return {"best/episode": best["episode"], **episode_metrics("best", best)}


class Tracker:
    """Sends a search's config, per-episode metrics, the agent's metrics and the final plots to wandb (``config.wandb`` mode).

    ``disabled`` starts nothing and writes nothing.

    Raises:
        RunError: wandb cannot start (online without credentials, say).
    """

    def __init__(self, config: RunSpec, run_dir: Path) -> None:
        self.run: Any = None
        self._step_metrics = {"seconds": "episode", "episode/*": "episode", "best/*": "evaluations"}
        if config.wandb == "disabled":
            return
        import wandb

        try:
            self.run = wandb.init(project=config.wandb_project, entity=config.wandb_entity, mode=config.wandb, dir=str(run_dir),
                                  id=run_id(run_dir), resume="allow", name=run_dir.name, group=config.wandb_group or default_group(config),
                                  tags=run_tags(config), config=run_config(config), job_type="search")
        except wandb.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunError(f"wandb {config.wandb} cannot start ({reason}): log in with `wandb login` (or set WANDB_API_KEY), "
                           "or pass --wandb offline and `wandb sync` the run later") from None
        for step in ("episode", "evaluations", "env_steps"):
            self.run.define_metric(step, hidden=True)
        for pattern, step in self._step_metrics.items():
            self.run.define_metric(pattern, step_metric=step, summary="none" if pattern == "episode/*" else None)

    def log_episode(self, record: EpisodeRecord, best: EpisodeRecord | None) -> None:
        """One point per episode on every learning curve (``best``: the search's best so far, this episode included)."""
        if self.run is None:
            return
        row = {"episode": record.episode, "evaluations": record.evaluations, "env_steps": (record.episode + 1) * len(record.rates),
               "seconds": record.seconds, **episode_metrics("episode", vars(record))}
        self.run.log({**row, **(best_metrics(vars(best)) if best is not None else {})})

    def log_agent_metrics(self, metrics: dict[str, float]) -> None:
        """The agent's own training metrics (losses, entropy, ...) under its names, against the current episode."""
        if self.run is None:
            return
        for key in metrics:
            pattern = f"{key.split('/', 1)[0]}/*" if "/" in key else key
            if pattern not in self._step_metrics:
                self.run.define_metric(pattern, step_metric="episode")
                self._step_metrics[pattern] = "episode"
        self.run.log(dict(metrics))

    def finish(self, summary: dict[str, Any], plots: list[Path]) -> None:
        """Log the PNG plots (``plots/<name>``), then write the summary (the best episode, last), and close the run."""
        if self.run is None:
            return
        import wandb

        images = {f"plots/{path.stem}": wandb.Image(str(path)) for path in plots if path.suffix == ".png"}
        if images:
            self.run.log(images)
        outcome = {key: summary[key] for key in ("episodes_done", "interrupted", "score_before", "original_macs", "original_params")}
        best = summary.get("best")
        if best is not None:
            outcome.update(best_metrics(best))
            outcome.update({f"best/{key}": best[key] for key in ("macs", "params", "kept_channels", "evaluations", "seconds")})
        self.run.summary.update(outcome)
        self.run.finish()
