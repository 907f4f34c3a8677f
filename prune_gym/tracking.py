"""Experiment tracking in wandb (online, offline or disabled) and TensorBoard, following their stable-baselines3 integrations.

One tracked run per run folder: its id is created once and kept in the folder
(``wandb_run_id.txt``), so ``--resume`` continues the same wandb run and the same
TensorBoard run, and two folders never merge, whatever their names. Both are
named :func:`run_name` (``<agent>-s<seed>``).

wandb: the run's config is the resolved :class:`~prune_gym.runs.RunSpec` plus
``prune_gym_version`` and ``git_commit`` (of prune_gym's source checkout, when it
is one), and at the end the unpruned network's ``score_before``,
``original_macs`` and ``original_params``; its group defaults to
task/env/budget/reward (:func:`default_group`), so agents and seeds of one
setting compare side by side; its tags are the agent, ``seed=N`` and the user's
``wandb_tags``.

TensorBoard (``RunSpec.tensorboard``, ``--tensorboard DIR``): event files in
``DIR/<run name>-<run id>`` (:func:`tensorboard_folder`), so ``tensorboard --logdir DIR``
shows every run written there. An agent that writes TensorBoard itself
(``log_to_tensorboard(folder)``: the stable-baselines3 agents, through SB3's own
logger) writes its metrics in the same folder, against its own x-axis (SB3: timesteps).

What is logged, one point per episode (wandb: x-axes declared with ``define_metric``;
TensorBoard: every scalar against the episode index):

=================  ===================================================================
``episode``        index of the episode in ``episodes.csv``: x-axis of ``episode/*`` and of the agent's metrics
``evaluations``    distinct reward-split evaluations so far: wandb's x-axis of ``best/*``
``env_steps``      environment steps so far (one per group and episode)
``seconds``        wall time of the search so far
``episode/*``      ``return``, ``score`` (the task's metric), ``macs_ratio``, ``params_ratio``
                   (kept / original), ``budget_met`` of each episode
``best/*``         the search's best episode so far (budget met first, then the highest return):
                   ``episode``, ``return``, ``score``, ``macs_ratio``, ``params_ratio``, ``budget_met``
agent metrics      under the agent's own names (``train/critic_loss``, ``rollout/ep_rew_mean``, ...),
                   against the last finished episode
``plots/*``        the figures of :mod:`prune_gym.plots`, at the end (wandb only)
=================  ===================================================================

The wandb summary is the best episode (``best/*``, plus its ``macs``, ``params``,
``kept_channels``, ``evaluations`` and ``seconds``), the search's totals
(``total/episodes``, ``total/evaluations``, ``total/env_steps``, ``total/seconds``)
and whether it was ``interrupted``: every other metric is declared without a
summary (``summary="none"``), so no last value of a curve stands in for the run,
and the summary is written after everything else so nothing overwrites it.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prune_gym.errors import RunError
from prune_gym.registry import folder_name_part
from prune_gym.runs import EpisodeRecord, RunSpec

RUN_ID_FILE = "wandb_run_id.txt"
_EPISODE_FIELDS = {"return": "episode_return", "score": "score", "macs_ratio": "macs_ratio", "params_ratio": "params_ratio",
                   "budget_met": "budget_met"}
_STEP_METRICS = ("episode", "evaluations", "env_steps")
_UNPRUNED = ("score_before", "original_macs", "original_params")


def run_name(config: RunSpec) -> str:
    """The run's name in wandb and TensorBoard: ``<agent>-s<seed>``, the agent as in run folder names (``sb3-PPO-s0``)."""
    return f"{folder_name_part(config.agent)}-s{config.seed}"


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
    """The tracked run's id kept in ``run_dir`` (created on first use: 12 random hex digits)."""
    path = run_dir / RUN_ID_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(6) + "\n")
    return path.read_text().strip()


def tensorboard_folder(config: RunSpec, run_dir: Path) -> Path:
    """Where the run in ``run_dir`` writes its TensorBoard event files: ``<config.tensorboard>/<run name>-<run id>``."""
    assert config.tensorboard is not None
    return Path(config.tensorboard) / f"{run_name(config)}-{run_id(run_dir)}"


def check_tensorboard(folder: str | None) -> None:
    """Refuse, in one line, a TensorBoard folder that cannot be one (empty, or an existing file); None: no TensorBoard.

    Raises:
        ValueError: what is wrong and what to pass instead.
    """
    if folder is None:
        return
    if not folder.strip():
        raise ValueError("--tensorboard is empty: give the folder for TensorBoard's event files, e.g. --tensorboard runs/tb")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise ValueError(f"--tensorboard {folder} is a file: give a folder for TensorBoard's event files (it is created)")


def episode_metrics(prefix: str, episode: Mapping[str, Any]) -> dict[str, float]:
    """``<prefix>/return``, ``score``, ``macs_ratio``, ``params_ratio`` and ``budget_met`` (1.0 or 0.0) of an episode
    given as a mapping of :class:`EpisodeRecord` fields."""
    return {f"{prefix}/{key}": float(episode[field]) for key, field in _EPISODE_FIELDS.items()}


def best_metrics(best: Mapping[str, Any]) -> dict[str, float]:
    """``best/*``: the best episode's index and :func:`episode_metrics`."""
    return {"best/episode": best["episode"], **episode_metrics("best", best)}


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The wandb summary of a search's ``summary.json``: ``best/*``, ``total/*`` and ``interrupted``."""
    groups = summary["groups"]
    metrics: dict[str, Any] = {"total/episodes": summary["episodes_done"], "total/evaluations": summary["evaluations"],
                               "total/env_steps": summary["episodes_done"] * len(groups), "total/seconds": summary["seconds"],
                               "interrupted": summary["interrupted"]}
    best = summary.get("best")
    if best is not None:
        metrics.update(best_metrics(best))
        metrics.update({f"best/{key}": best[key] for key in ("macs", "params", "kept_channels", "evaluations", "seconds")})
    return metrics


class Tracker:
    """Sends a search's per-episode metrics and the agent's metrics to wandb (``config.wandb`` mode: with the config, the
    final plots and summary) and to TensorBoard (``config.tensorboard``); with neither, it starts and writes nothing.

    ``episodes_done``: episodes the run folder already holds (a resume), the x of agent metrics before the next one ends.

    Raises:
        RunError: wandb cannot start (online without credentials, say), or the TensorBoard folder cannot be written.
    """

    def __init__(self, config: RunSpec, run_dir: Path, episodes_done: int = 0) -> None:
        self.run: Any = None
        self.tensorboard: Any = None  # torch's SummaryWriter
        self.tensorboard_dir = tensorboard_folder(config, run_dir) if config.tensorboard is not None else None
        self._episode = max(episodes_done - 1, 0)
        self._agent_log: Any = None  # what an agent that writes TensorBoard itself opened (closed at the end)
        self._wandb_metrics = {"seconds": "episode", "episode/*": "episode", "best/*": "evaluations", "plots/*": None}
        if config.wandb != "disabled":
            self._start_wandb(config, run_dir)
        if self.tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            try:
                self.tensorboard = SummaryWriter(str(self.tensorboard_dir))
            except OSError as error:
                if self.run is not None:
                    self.run.finish(exit_code=1)
                raise RunError(f"cannot write TensorBoard logs in {self.tensorboard_dir} ({error.strerror or error}): "
                               "choose another --tensorboard folder") from None

    def _start_wandb(self, config: RunSpec, run_dir: Path) -> None:
        import wandb

        try:
            self.run = wandb.init(project=config.wandb_project, entity=config.wandb_entity, mode=config.wandb, dir=str(run_dir),
                                  id=run_id(run_dir), resume="allow", name=run_name(config),
                                  group=config.wandb_group or default_group(config), tags=run_tags(config),
                                  config=run_config(config), job_type="search")
        except wandb.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunError(f"wandb {config.wandb} cannot start ({reason}): log in with `wandb login` (or set WANDB_API_KEY), "
                           "or pass --wandb offline and `wandb sync` the run later") from None
        for axis in _STEP_METRICS:
            self.run.define_metric(axis, hidden=True, summary="none")
        for pattern, step in self._wandb_metrics.items():  # best/*: the best so far, the run's outcome; nothing else
            self.run.define_metric(pattern, step_metric=step, summary=None if pattern == "best/*" else "none")

    def attach(self, agent: Any) -> None:
        """Take the agent's training metrics: set its ``metrics_callback``; an agent that writes TensorBoard itself
        (``log_to_tensorboard(folder)``, which returns what to close at the end) writes in this run's folder, and its
        metrics then go to wandb only."""
        if hasattr(agent, "metrics_callback"):
            agent.metrics_callback = self.log_agent_metrics
        if self.tensorboard_dir is not None and callable(getattr(agent, "log_to_tensorboard", None)):
            self._agent_log = agent.log_to_tensorboard(self.tensorboard_dir)

    def log_episode(self, record: EpisodeRecord, best: EpisodeRecord | None) -> None:
        """One point per episode on every learning curve (``best``: the search's best so far, this episode included)."""
        self._episode = record.episode
        row = {"evaluations": record.evaluations, "env_steps": (record.episode + 1) * len(record.rates),
               "seconds": record.seconds, **episode_metrics("episode", vars(record)),
               **(best_metrics(vars(best)) if best is not None else {})}
        if self.tensorboard is not None:
            for key, value in row.items():
                self.tensorboard.add_scalar(key, value, record.episode)
        if self.run is not None:
            self.run.log({"episode": record.episode, **row})

    def log_agent_metrics(self, metrics: dict[str, float]) -> None:
        """The agent's own training metrics (losses, entropy, ...) under its names, against the last finished episode."""
        if self.tensorboard is not None and self._agent_log is None:
            for key, value in metrics.items():
                self.tensorboard.add_scalar(key, value, self._episode)
        if self.run is None:
            return
        for key in metrics:
            pattern = f"{key.split('/', 1)[0]}/*" if "/" in key else key
            if pattern not in self._wandb_metrics:
                self.run.define_metric(pattern, step_metric="episode", summary="none")
                self._wandb_metrics[pattern] = "episode"
        self.run.log(dict(metrics))

    def finish(self, summary: dict[str, Any], plots: list[Path]) -> None:
        """Close the TensorBoard event files (this tracker's and the agent's); log the PNG plots (``plots/<name>``), add the
        unpruned network to the config, write the summary (:func:`summary_metrics`, last) and close the wandb run."""
        if self._agent_log is not None:
            self._agent_log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.run is None:
            return
        import wandb

        images = {f"plots/{path.stem}": wandb.Image(str(path)) for path in plots if path.suffix == ".png"}
        if images:
            self.run.log(images)
        self.run.config.update({key: summary[key] for key in _UNPRUNED}, allow_val_change=True)
        self.run.summary.update(summary_metrics(summary))
        self.run.finish()
