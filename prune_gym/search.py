"""The search loop: an agent on an environment, every episode on disk as it finishes, resumable.

:func:`run_search` validates the run specification before anything is written,
holds the run folder's lock for the whole search, appends each finished episode
to ``episodes.csv``, keeps the best mask, checkpoints the agent (and weights an
agent fine-tuned) every ``checkpoint_every`` episodes, and on resume drops a
torn last record, restores the last checkpoint and continues to the requested
count. The folder format lives in :mod:`prune_gym.runs`.

What a resumed run reproduces: after Ctrl-C (or SIGTERM) the search stops at the
end of the running episode and checkpoints there, so resuming continues exactly
where an uninterrupted run would be (same agent state, replay buffer and random
state). After ``kill -9`` or a crash no finished episode is lost, but the agent
restarts from its last checkpoint, so the episodes recorded after it were not
learned from (with ``checkpoint_every=1``, at most the episode whose record was written when the process died; the
resume names them). The checkpoint keeps the environment's evaluation cache too, so evaluation counts continue as
an uninterrupted run's.
"""

from __future__ import annotations

import inspect
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from prune_gym.agent_api import agent_hyperparameters, check_agent, compatible_environment, make_agent
from prune_gym.envs import environment_class
from prune_gym.envs.base import PruningEnv
from prune_gym.errors import RunError
from prune_gym.plots import plot_run
from prune_gym.progress import progress_bar
from prune_gym.registry import absolute_code_name, folder_name_part
from prune_gym.rewards import get_reward
from prune_gym.runs import (
    CODE_KEYWORDS,
    WANDB_MODES,
    EpisodeRecord,
    RunFolder,
    RunSpec,
    best_episode,
    check_trusted,
    code_names,
    save_mask,
    type_errors,
)
from prune_gym.tasks import get_task
from prune_gym.tracking import Tracker, check_tensorboard
from prune_gym.validation import check_choice, check_int
from prune_gym.wrappers import EpisodeBudgetExhausted, EpisodeRecorder

INTERRUPTED_EXIT_CODE = 130


def environment_defaults(cls: type) -> dict[str, Any]:
    """Keyword defaults of an environment class and its bases' ``__init__`` (``task`` and ``render_mode`` left out)."""
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object or klass is gym.Env:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.default is not parameter.empty and parameter.name not in ("task", "render_mode"):
                defaults[parameter.name] = parameter.default
    return defaults


def resolve_spec(spec: RunSpec) -> RunSpec:
    """Check every name and value of ``spec`` and fill in the environment's and the agent's defaults; nothing is written.

    The environment's action type is chosen from what the agent declares when not given; ``path/to/file.py:attribute``
    names (agent, task, reward, observation, criterion) are stored with the file's absolute path.

    Raises:
        ValueError: the first problem found, in one line.
    """
    problems = type_errors(spec)
    if problems:
        raise ValueError(f"invalid run specification: {problems[0]}")
    code = {key: absolute_code_name(value) for key, value in spec.env_kwargs.items() if key in CODE_KEYWORDS and isinstance(value, str)}
    spec = spec.replace(task=absolute_code_name(spec.task), agent=absolute_code_name(spec.agent)).with_env(**code)
    get_task(spec.task)
    check_agent(spec.agent, spec.agent_kwargs)
    check_int("episodes", spec.episodes, 1, "a positive number of episodes")
    if spec.max_evaluations is not None:
        check_int("max_evaluations", spec.max_evaluations, 1, "a positive number of reward evaluations")
    check_int("seed", spec.seed, 0, "a seed >= 0")
    check_int("checkpoint_every", spec.checkpoint_every, 1, "a positive number of episodes")
    check_choice("wandb", spec.wandb, WANDB_MODES)
    check_tensorboard(spec.tensorboard)
    if spec.agent_state is not None:
        state = Path(spec.agent_state)
        if not any(state.parent.glob(f"{state.name}*")):
            raise ValueError(f"agent_state {spec.agent_state!r}: no file starts with that prefix; give the path an agent's "
                             "save(path) was called with (e.g. a transfer benchmark's trained/seed-N/agent)")
    cls = environment_class(spec.env)
    defaults = environment_defaults(cls)
    unknown = sorted(set(spec.env_kwargs) - set(defaults))
    if unknown:
        raise ValueError(f"invalid env argument(s) {unknown} for {spec.env}; its arguments: {sorted(defaults)}")
    env_id, action_type = compatible_environment(spec.agent, spec.agent_kwargs, spec.env, spec.env_kwargs.get("action_type"))
    env_kwargs = {**defaults, **spec.env_kwargs, "action_type": action_type}
    if callable(env_kwargs["reward"]):
        raise ValueError("a search stores its reward by name: register the function (prune_gym.register_reward) "
                         "or pass 'package.module:function'")
    get_reward(env_kwargs["reward"]).check_kwargs(env_kwargs.get("reward_kwargs") or {})
    return spec.replace(env=env_id, env_kwargs=env_kwargs, agent_kwargs=agent_hyperparameters(spec.agent, spec.agent_kwargs))


def check_spec(spec: RunSpec) -> None:
    """Check the agent against its protocol (:func:`~prune_gym.agent_api.check_agent`), then build the spec's environment
    and agent once, so that hyper-parameters the agent rejects fail before any run starts."""
    check_agent(spec.agent, spec.agent_kwargs)
    env = spec.make_env()
    try:
        make_agent(spec.agent, env, seed=spec.seed, **spec.agent_kwargs)
    finally:
        env.close()


def default_run_dir(spec: RunSpec) -> Path:
    """``runs/<task>-<env>-<agent>-s<seed>-<time>``."""
    return Path("runs") / (f"{folder_name_part(spec.task)}-{spec.env.split('-')[0]}-{folder_name_part(spec.agent)}"
                           f"-s{spec.seed}-{time.strftime('%Y%m%d-%H%M%S')}")


class _StopRequests:
    """Turns the first SIGINT/SIGTERM into a request to stop after the running episode; a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def _handle(self, number: int, _frame: Any) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this episode (press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __exit__(self, *_: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class _Session:
    """Per-episode bookkeeping of one search: the CSV, the best mask, the tracker and the progress bar."""

    def __init__(self, spec: RunSpec, folder: RunFolder, records: list[EpisodeRecord], progress: bool,
                 on_episode: Callable[[EpisodeRecord, EpisodeRecord], None] | None = None) -> None:
        self.folder, self.callback = folder, on_episode
        self.tracker: Tracker | None = None
        self.records = records
        self.best = best_episode(records)
        self.bar = progress_bar(spec.episodes, "search", "episode", enabled=progress, initial=len(records))

    @property
    def done(self) -> int:
        return len(self.records)

    def on_episode(self, record: EpisodeRecord) -> None:
        self.folder.append_episode(record)
        self.records.append(record)
        if self.best is None or record.ranks_above(self.best):
            self.best = record
            save_mask(self.folder.best_mask_path, record.keep_mask)
        if self.tracker is not None:
            self.tracker.log_episode(record, self.best)
        if self.callback is not None:
            self.callback(record, self.best)
        self.bar.set_postfix(best=f"{self.best.episode_return:.4f}", acc=f"{self.best.score:.3f}", macs=f"{self.best.macs_ratio:.3f}")
        self.bar.update()


def _save_checkpoint(folder: RunFolder, agent: Any, env: Any, episodes: int) -> None:
    """The agent's state (and weights it fine-tuned) after ``episodes`` episodes, replacing the last checkpoint atomically."""
    try:
        with folder.new_checkpoint() as staging:
            agent.save(staging / "agent")
            if env.weights_changed:
                weights = {k: v.detach().cpu() for k, v in env.network.model.state_dict().items()}
                torch.save(weights, staging / "weights.pt")
            (staging / "checkpoint.json").write_text(json.dumps({"episodes": episodes}))
            (staging / "evaluations.json").write_text(json.dumps(env.evaluator.cache_entries()))
    except OSError as error:
        raise RunError(f"could not write the agent checkpoint in {folder.path} ({error.strerror or error}); every finished "
                       f"episode is in episodes.csv: free some space, then `prune-gym search --resume {folder.path}`") from None


def _restore_checkpoint(folder: RunFolder, agent: Any, env: Any, device: str, records: list[EpisodeRecord], torn: bool) -> int:
    """Load the last checkpoint into the agent, the env's weights and its evaluation cache (so a resumed search counts
    and re-scores reward evaluations exactly as an uninterrupted one); returns the episodes it had seen (0: none).

    The masks of episodes recorded after the checkpoint (a kill -9 before the next one) join the cache with their
    recorded scores, as they were evaluated.
    """
    checkpoint = folder.current_checkpoint()
    seen = 0
    try:
        if checkpoint is not None:
            if (checkpoint / "weights.pt").exists():
                env.load_state_dict(torch.load(checkpoint / "weights.pt", map_location=device, weights_only=True))
            agent.load(checkpoint / "agent")
            seen = int(json.loads((checkpoint / "checkpoint.json").read_text())["episodes"])
            if (checkpoint / "evaluations.json").exists():
                env.evaluator.restore_cache(json.loads((checkpoint / "evaluations.json").read_text()))
        for record in records[seen:]:
            env.evaluator.remember(record.keep_mask, record.score)
    except Exception as error:  # a damaged or foreign checkpoint: one line naming it
        raise RunError(f"cannot restore the agent checkpoint {checkpoint} ({type(error).__name__}: {error}); "
                       f"delete that folder to resume without it (the agent then starts afresh)") from None
    if seen > len(records) and torn:
        print(f"note: the agent's checkpoint has seen {seen} episodes, episodes.csv keeps {len(records)} (its torn last "
              f"record was dropped): episodes {len(records)}-{seen - 1} run again", file=sys.stderr)
    elif seen > len(records):
        raise RunError(f"{folder.episodes_path} holds {len(records)} episodes but the agent's checkpoint has seen {seen}: the "
                       f"file was deleted, emptied or cut; restore it, or delete {checkpoint} to start the agent afresh")
    return seen


def run_search(spec: RunSpec, run_dir: str | Path | None = None, progress: bool = True,
               on_episode: Callable[[EpisodeRecord, EpisodeRecord], None] | None = None, plots: bool = True) -> dict[str, Any]:
    """Run ``spec`` in ``run_dir``: start it, resume it if the folder holds it unfinished, or return it if it finished.

    A folder that holds a run is continued only when its spec is ``spec``: ``episodes`` and ``max_evaluations`` may
    grow (a finished run is extended) and ``device`` may differ; any other difference is refused in one line.
    Returns the summary also written to ``summary.json``. ``on_episode(record, best)`` is called after each episode
    is on disk (e.g. to report to a tuner). ``plots=False`` draws no figures at the end (a benchmark's runs: matplotlib's
    four files cost more than a one-shot search; ``prune-gym plot RUN`` draws them later).

    Raises:
        ValueError: an invalid specification (nothing is written).
        RunError: a folder that holds another run, cannot be started or resumed, or is in use by another process.
    """
    spec = resolve_spec(spec)
    folder = RunFolder(run_dir if run_dir is not None else default_run_dir(spec))
    resume = folder.config_path.exists()
    if resume:
        stored = folder.read_spec()
        differ = stored.differences(spec, allowed=RunSpec.RESUMABLE_CHANGES)
        if differ:
            raise RunError(f"{folder.path} holds another run ({', '.join(differ)} differ): choose another run folder, "
                           f"or continue it as it is with `prune-gym search --resume {folder.path}`")
        summary = _finished_summary(folder, spec)
        if summary is not None:
            return summary
    with folder.writing(create=not resume), _StopRequests() as stop:
        try:
            return _search(folder, spec, resume, progress, stop, on_episode, plots)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise RunError(f"the search stopped: {error.strerror or error}{where}; every finished episode is in "
                           f"{folder.episodes_path}: free some space, then `prune-gym search --resume {folder.path}`") from None


def resume_search(run_dir: str | Path, progress: bool = True, trust_code: bool = False, **changes: Any) -> dict[str, Any]:
    """Continue the run in ``run_dir`` as its ``config.json`` describes it, with ``changes`` to ``episodes``,
    ``max_evaluations``, ``device`` or ``tensorboard`` (e.g. ``episodes=40`` extends a finished 30-episode run).

    A ``module:attribute`` name in the folder's spec (task, environment, agent, reward, ...) outside prune_gym and the
    installed plug-ins, or a ``file.py:attribute`` one, is imported only with ``trust_code``: a run folder from someone
    else is code, like a pickle.

    Raises:
        RunError: not a run folder, a change to anything else (a run keeps its specification), or untrusted code.
    """
    refused = sorted(set(changes) - {*RunSpec.RESUMABLE_CHANGES, *RunSpec.MACHINE_FIELDS})
    if refused:
        raise RunError(f"--resume continues {run_dir} as it was specified; only --episodes, --max-evaluations, --device and "
                       f"--tensorboard may change, not {', '.join(refused)} (start a new run folder for another specification)")
    folder = RunFolder(run_dir)
    spec = folder.read_spec()
    check_trusted(code_names(spec), folder.config_path, trust_code)
    device = changes.pop("device", None)
    spec = spec.replace(**{name: value for name, value in changes.items() if value is not None})
    return run_search(spec.with_env(device=device) if device is not None else spec, run_dir, progress=progress)


def _finished_summary(folder: RunFolder, spec: RunSpec) -> dict[str, Any] | None:
    """The summary of the run in ``folder`` if it ended by the budget ``spec`` asks for and its episodes are all there
    (no more to do), else None: a torn last record is resumed (and repaired), a damaged one refused.

    Raises:
        RunError: ``episodes.csv`` is damaged or was modified.
    """
    if not folder.summary_path.exists():
        return None
    summary = folder.read_summary()
    records, torn = folder.episodes()
    same_budget = summary.get("episodes_requested") == spec.episodes and summary.get("max_evaluations") == spec.max_evaluations
    whole = torn is None and len(records) == summary.get("episodes_done")
    return summary if same_budget and whole and summary.get("finished") else None


def _search(folder: RunFolder, spec: RunSpec, resume: bool, progress: bool, stop: _StopRequests,
            on_episode: Callable[[EpisodeRecord, EpisodeRecord], None] | None, plots: bool) -> dict[str, Any]:
    """The body of :func:`run_search`, holding the folder's lock."""
    warning = folder.repair_episodes() if resume else None
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    env = spec.make_env()
    pruning_env = env.unwrapped
    assert isinstance(pruning_env, PruningEnv)
    records, _ = folder.episodes([group.num_channels for group in pruning_env.network.groups])
    if len(records) > spec.episodes:
        raise RunError(f"{folder.path} has {len(records)} episodes already, more than the {spec.episodes} asked for: "
                       f"ask for at least {len(records)}")
    session = _Session(spec, folder, records, progress, on_episode)
    last = records[-1] if records else None
    recorder = EpisodeRecorder(env, session.on_episode, start_episode=len(records),
                               evaluations_offset=last.evaluations if last else 0, seconds_offset=last.seconds if last else 0.0,
                               max_episodes=spec.episodes, max_evaluations=spec.max_evaluations)
    agent = make_agent(spec.agent, recorder, seed=spec.seed, **spec.agent_kwargs)
    if spec.agent_state is not None and (not resume or folder.current_checkpoint() is None):  # else the checkpoint's
        try:
            agent.load(spec.agent_state)
        except Exception as error:
            raise RunError(f"cannot load agent_state {spec.agent_state} into {spec.agent!r} ({type(error).__name__}: "
                           f"{' '.join(str(error).split())}): it must be saved by the same agent with the same "
                           "hyper-parameters, on an environment with the same spaces") from None
    if resume:
        seen = _restore_checkpoint(folder, agent, pruning_env, str(pruning_env.device), records, torn=warning is not None)
        if seen < len(records):
            print(f"note: the agent resumes from its checkpoint after episode {seen}; episodes {seen}-{len(records) - 1} "
                  "were recorded after it (the process was killed) and stay in episodes.csv", file=sys.stderr)
    folder.write_spec(spec)  # new, or resumed with more episodes or on another device
    tracker = session.tracker = Tracker(spec, folder.path, episodes_done=session.done)
    tracker.attach(agent)
    interrupted, checkpointed = False, session.done
    try:
        while session.done < spec.episodes and not stop.requested:
            before = session.done
            if spec.act_only:
                play_episode(recorder, agent, seed=spec.seed)
            else:
                agent.learn(1)
            if session.done == before:
                raise RunError(f"agent {spec.agent!r} returned from learn(1) without finishing an episode: "
                               "an agent's learn(episodes) must run that many episodes")
            if session.done - checkpointed >= spec.checkpoint_every or stop.requested:
                _save_checkpoint(folder, agent, pruning_env, session.done)
                checkpointed = session.done
    except EpisodeBudgetExhausted:
        pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.bar.close()
    interrupted = interrupted or (stop.requested and session.done < spec.episodes)
    if not interrupted:
        _save_checkpoint(folder, agent, pruning_env, session.done)
    summary = summarise(spec, pruning_env, folder, session.records, interrupted)
    folder.write_summary(summary)
    figures = plot_run(folder.path) if plots and session.records else []
    tracker.finish(summary, figures)
    env.close()
    return summary


def play_episode(env: gym.Env, agent: Any, seed: int | None = None) -> None:
    """One episode of ``agent.predict(observation, deterministic=True)`` on ``env``: nothing is learnt (the search's
    recorder wrapper records it)."""
    observation, _ = env.reset(seed=seed)
    done = False
    while not done:
        observation, _, terminated, truncated, _ = env.step(agent.predict(observation, deterministic=True))
        done = terminated or truncated


def uniform_pruning(env: Any) -> dict[str, Any]:
    """The yardstick of a run: every group pruned at one rate (the smallest that meets the MACs budget) under the
    environment's criterion, scored on the reward split like an episode (not charged to the agent)."""
    budget = env.rate_budget()
    rates = budget.uniform_rates()
    keep = budget.keep_masks(budget.kept_counts(rates))
    macs, params = env.network.macs_params(keep)
    return {"criterion": env.criterion, "rate": float(rates[0]), "score": env.evaluator.score(keep), "macs": macs,
            "params": params, "macs_ratio": macs / env.network.original_macs,
            "params_ratio": params / env.network.original_params}


def summarise(spec: RunSpec, env: Any, folder: RunFolder, records: list[EpisodeRecord], interrupted: bool) -> dict[str, Any]:
    """The run's outcome: the specification in brief, progress (``finished``: it ended by its budget, nothing more to
    do), the unpruned network, uniform pruning at the same budget (:func:`uniform_pruning`) and the best episode."""
    network = env.network
    summary: dict[str, Any] = {
        "run_dir": str(folder.path), "task": spec.task, "env": spec.env, "agent": spec.agent, "reward": spec.reward,
        "macs_budget": spec.macs_budget, "seed": spec.seed, "episodes_done": len(records),
        "episodes_requested": spec.episodes, "max_evaluations": spec.max_evaluations,
        "interrupted": interrupted, "finished": not interrupted,
        "seconds": records[-1].seconds if records else 0.0,
        "evaluations": records[-1].evaluations if records else 0,
        "original_macs": network.original_macs, "original_params": network.original_params,
        "score_before": env.score_before, "metric": env.task.metric,
        "groups": [{"name": g.name, "channels": g.num_channels} for g in network.groups],
    }
    summary["uniform"] = uniform_pruning(env)
    best = best_episode(records)
    if best is not None:
        summary["best"] = {"episode": best.episode, "episode_return": best.episode_return, "score": best.score,
                           "macs": best.macs, "params": best.params, "macs_ratio": best.macs_ratio,
                           "params_ratio": best.params_ratio, "budget_met": best.budget_met,
                           "kept_channels": list(best.kept_channels), "evaluations": best.evaluations, "seconds": best.seconds}
    return summary
