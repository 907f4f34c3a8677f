"""Run folders: the on-disk format of a search, crash-safe (see :mod:`prune_gym.storage`).

A run folder holds:

=====================  ==========================================================
``config.json``        the fully resolved :class:`RunSpec` (written first, atomically)
``episodes.csv``       one :class:`EpisodeRecord` per finished episode, append-only,
                       each line with a CRC-32 (a torn last line is dropped on resume)
``best_mask.npz``      keep-mask of the best episode: the highest return among
                       episodes that meet the MACs budget, else the highest return
``checkpoint/``        the latest agent checkpoint (and fine-tuned ``weights.pt``),
                       replaced atomically every ``checkpoint_every`` episodes
``summary.json``       the run's outcome (atomically)
``*.png``, ``*.pdf``   plots; ``recovery.json``, ``recovered.pt``, ``pruned.pt`` after recovery/export
``.lock``              held by the process writing the folder (its PID inside)
``wandb_run_id.txt``   the run's tracking id: wandb's run id, its TensorBoard folder's suffix (a resume continues
                       both); ``wandb/`` offline runs
=====================  ==========================================================

Nothing here imports torch: the CLI reads run folders quickly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from prune_gym.errors import RunError
from prune_gym.storage import ChecksummedCSV, check_regular_file, exclusive_lock, write_atomic

WandbMode = Literal["online", "offline", "disabled"]
WANDB_MODES: tuple[WandbMode, ...] = ("online", "offline", "disabled")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run, flat and frozen (saved as the run's ``config.json``).

    Every run is described by one: the CLI, ``run_search``, the benchmark, tuning
    and the experiments build it, and nothing else carries a run's settings.
    Change one with :meth:`replace` or :meth:`with_env`.

    Attributes:
        task, env, agent: registered names (``prune-gym list tasks|environments|agents``).
        env_kwargs: every keyword argument of the environment but ``task`` in one mapping: ``macs_budget`` (fraction of
            the original MACs the pruned network may keep), ``reward`` (a name or ``module:function``), ``reward_samples``,
            ``device``, ... Missing ones take the environment's defaults; :func:`prune_gym.search.resolve_spec` writes
            the values actually used.
        agent_kwargs: the agent's hyper-parameters (its defaults are added when the run starts).
        episodes: episodes to run (= reward-split evaluations at most, for an agent rewarded once per episode).
        max_evaluations: stop before the reward-split evaluation past this many, even within an episode (an agent with
            a dense reward evaluates several times per episode); ``None``: only ``episodes`` bounds the search. The
            benchmark and tuning set it to the entry's budget, so every agent gets the same number of evaluations.
        seed: seeds the agent and the environment.
        checkpoint_every: save the agent every this many episodes (and at the end).
        wandb: ``online``, ``offline`` (a run in the folder to ``wandb sync`` later) or ``disabled``.
        wandb_project, wandb_entity, wandb_group, wandb_tags: where the wandb run goes
            (group default: task, env, budget and reward; tags: agent and seed are added).
        tensorboard: the folder of TensorBoard event files (each run in a subfolder of its own,
            :func:`prune_gym.tracking.tensorboard_folder`); ``None``: no TensorBoard. A resume may change it.
        agent_state: a path prefix written by an agent's ``save()`` (the same agent class and hyper-parameters, on an
            environment with the same spaces, e.g. one trained on a transfer track's pairs), loaded into the new agent
            before its first episode; ``None``: the agent starts afresh.
        act_only: each episode plays the agent's ``predict(observation, deterministic=True)`` instead of ``learn(1)``:
            the zero-shot evaluation of a loaded ``agent_state`` (nothing is learnt).
    """

    task: str = "lenet5-digits"
    env: str = "LayerRate-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent: str = "ddpg"
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int = 400
    max_evaluations: int | None = None
    seed: int = 0
    checkpoint_every: int = 10
    wandb: WandbMode = "disabled"
    wandb_project: str = "prune_gym"
    wandb_entity: str | None = None
    wandb_group: str | None = None
    wandb_tags: tuple[str, ...] = ()
    tensorboard: str | None = None
    agent_state: str | None = None
    act_only: bool = False

    RESUMABLE_CHANGES = ("episodes", "max_evaluations", "tensorboard")  # a resume may grow the budget, move the logs
    MACHINE_FIELDS = ("device",)  # env keywords that say where a run computes, not what it is

    def __post_init__(self) -> None:
        object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))
        object.__setattr__(self, "agent_kwargs", dict(self.agent_kwargs))
        if isinstance(self.wandb_tags, list):
            object.__setattr__(self, "wandb_tags", tuple(self.wandb_tags))

    __hash__ = None  # type: ignore[assignment]  # its mappings are not hashable

    @property
    def macs_budget(self) -> float | None:
        """The fraction of the original MACs the pruned network may keep (``None``: the environment's default)."""
        return self.env_kwargs.get("macs_budget")

    @property
    def reward(self) -> str | None:
        """The reward's name (``None``: the environment's default)."""
        return self.env_kwargs.get("reward")

    @property
    def device(self) -> str | None:
        """The torch device the environment computes on (``None``: the environment's default)."""
        return self.env_kwargs.get("device")

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def with_env(self, **kwargs: Any) -> RunSpec:
        """A copy whose environment keyword arguments are updated with ``kwargs``."""
        return dataclasses.replace(self, env_kwargs={**self.env_kwargs, **kwargs})

    def env_arguments(self) -> dict[str, Any]:
        """The environment's keyword arguments, ``task`` included: what ``gymnasium.make(spec.env, **...)`` takes."""
        return {"task": self.task, **self.env_kwargs}

    def make_env(self) -> Any:
        """The run's environment, ``gymnasium.make(env, task=task, **env_kwargs)``."""
        import gymnasium as gym

        return gym.make(self.env, **self.env_arguments())

    def to_json(self) -> str:
        """The spec as ``config.json`` text."""
        return json.dumps({**asdict(self), "wandb_tags": list(self.wandb_tags)}, indent=2)

    def differences(self, other: RunSpec, allowed: tuple[str, ...] = ()) -> list[str]:
        """Names of the fields (``env_kwargs.NAME`` for environment keywords) where ``other`` differs, but ``allowed`` ones
        and the machine's (``device``)."""
        names = [f.name for f in dataclasses.fields(self) if f.name not in ("env_kwargs", *allowed)]
        differ = [name for name in names if getattr(self, name) != getattr(other, name)]
        keys = sorted((set(self.env_kwargs) | set(other.env_kwargs)) - set(self.MACHINE_FIELDS))
        return differ + [f"env_kwargs.{key}" for key in keys if self.env_kwargs.get(key) != other.env_kwargs.get(key)]

    @classmethod
    def from_json(cls, path: Path) -> RunSpec:
        """Read a ``config.json``, with a one-line error for anything wrong in it.

        A config written before the environment's keywords were one mapping (``reward``, ``macs_budget``,
        ``reward_samples`` and ``device`` as fields of their own) is read into ``env_kwargs``.
        """
        check_regular_file(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunError(f"{path} is not a readable JSON config ({error}); restore it or start a new run") from None
        if not isinstance(data, dict):
            raise RunError(f"{path} holds a {type(data).__name__}, not a run specification")
        legacy = {name: data.pop(name) for name in ("reward", "macs_budget", "reward_samples", "device") if name in data}
        if legacy and isinstance(data.get("env_kwargs", {}), dict):
            data["env_kwargs"] = {**{k: v for k, v in legacy.items() if v is not None}, **data.get("env_kwargs", {})}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RunError(f"{path} has unknown fields {unknown}: written by another version of prune_gym?")
        problems = type_errors(data)
        if problems:
            raise RunError(f"{path}: {problems[0]}")
        return cls(**data)


CODE_KEYWORDS = ("reward", "observation", "criterion")  # environment keywords that may name code as 'module:attribute'


def trusted_modules() -> set[str]:
    """Top-level modules whose ``module:attribute`` names run without ``--trust-code``: prune_gym's and those of the
    installed plug-ins (packages behind ``prune_gym.*`` entry points, which the user installed)."""
    from importlib.metadata import entry_points

    groups = ("prune_gym.agents", "prune_gym.rewards", "prune_gym.observations", "prune_gym.importance")
    return {"prune_gym"} | {ep.value.split(":")[0].split(".")[0] for group in groups for ep in entry_points(group=group)}


def code_names(spec: RunSpec) -> list[str]:
    """``FIELD 'module:attribute'`` for every name in ``spec`` whose resolution imports a module that is not trusted
    (:func:`trusted_modules`) or a file: the task, the environment id, the agent (an installed one's name, ``sb3:PPO``
    included, is no code) and the reward, observation and criterion keywords."""
    from prune_gym.agent_api import names_code

    agent = spec.agent if names_code(spec.agent) else None
    return untrusted_code(task=spec.task, env=spec.env, agent=agent, **{key: spec.env_kwargs.get(key) for key in CODE_KEYWORDS})


def untrusted_code(**named: Any) -> list[str]:
    """``NAME 'module:attribute'`` for each of ``named`` that is a ``module:attribute`` string of an untrusted module, or
    a ``path/to/file.py:attribute`` (a file is never trusted)."""
    from prune_gym.registry import code_file

    trusted = trusted_modules()
    return [f"{field} {value!r}" for field, value in named.items() if isinstance(value, str) and ":" in value
            and (code_file(value) is not None or value.split(":")[0].split(".")[0] not in trusted)]


def check_trusted(names: list[str], source: str | os.PathLike, trust_code: bool) -> None:
    """Refuse, in one line, to import the code ``names`` that ``source`` (a run folder or a file) names, unless the
    user said they trust it (``--trust-code``, as Hugging Face's ``trust_remote_code``)."""
    if names and not trust_code:
        raise RunError(f"{source} names code that would be imported and run ({', '.join(names)}): pass --trust-code "
                       "only if you trust where it came from")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "task": (str,), "env": (str,), "agent": (str,), "episodes": (int,), "max_evaluations": (int, type(None)), "seed": (int,),
    "checkpoint_every": (int,), "env_kwargs": (dict,), "agent_kwargs": (dict,), "wandb": (str,), "wandb_project": (str,),
    "wandb_entity": (str, type(None)), "wandb_group": (str, type(None)), "wandb_tags": (list, tuple),
    "tensorboard": (str, type(None)), "agent_state": (str, type(None)), "act_only": (bool,),
}


def type_errors(fields: dict[str, Any] | RunSpec) -> list[str]:
    """Fields of a run specification (or the mapping of one) whose values have the wrong type."""
    values = asdict(fields) if isinstance(fields, RunSpec) else fields
    problems = []
    for name, types in _FIELD_TYPES.items():
        if name not in values:
            continue
        value = values[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            problems.append(f"field {name!r} is {value!r}, expected {' or '.join(t.__name__ for t in types)}")
    return problems


@dataclass(frozen=True)
class EpisodeRecord:
    """One finished episode: its return, the pruned network it produced, and when.

    ``macs_ratio``/``params_ratio`` are kept / original; ``rates`` are the applied
    **pruned** fractions per group; ``kept_channels`` per group; ``keep_mask`` one
    boolean array per group; ``evaluations`` counts the distinct reward-split
    evaluations of the search so far, ``seconds`` its wall time so far.
    """

    episode: int
    episode_return: float
    score: float
    macs: int
    params: int
    macs_ratio: float
    params_ratio: float
    budget_met: bool
    rates: tuple[float, ...]
    kept_channels: tuple[int, ...]
    evaluations: int
    seconds: float
    keep_mask: tuple[np.ndarray, ...] = field(repr=False, compare=False)

    FIELDS = ("episode", "episode_return", "score", "macs_ratio", "params_ratio", "macs", "params", "budget_met",
              "rates", "kept_channels", "evaluations", "seconds", "keep_mask")

    def to_row(self) -> dict[str, str]:
        """The record as CSV strings (floats round-trip exactly; the mask as hex of its packed bits)."""
        bits = np.packbits(np.concatenate([np.asarray(m, dtype=bool) for m in self.keep_mask])) if self.keep_mask else np.zeros(0, np.uint8)
        return {"episode": str(self.episode), "episode_return": repr(float(self.episode_return)),
                "score": repr(float(self.score)), "macs_ratio": repr(float(self.macs_ratio)),
                "params_ratio": repr(float(self.params_ratio)), "macs": str(self.macs), "params": str(self.params),
                "budget_met": str(bool(self.budget_met)), "rates": " ".join(f"{r:.6g}" for r in self.rates),
                "kept_channels": " ".join(map(str, self.kept_channels)), "evaluations": str(self.evaluations),
                "seconds": f"{self.seconds:.3f}", "keep_mask": bits.tobytes().hex()}

    @classmethod
    def from_row(cls, row: dict[str, str], widths: list[int] | None = None) -> EpisodeRecord:
        """Parse a row written by :meth:`to_row`; ``widths`` (channels per group) restores the keep-mask."""
        mask: tuple[np.ndarray, ...] = ()
        if widths is not None:
            bits = np.unpackbits(np.frombuffer(bytes.fromhex(row["keep_mask"]), dtype=np.uint8))[: sum(widths)].astype(bool)
            mask = tuple(np.split(bits, np.cumsum(widths)[:-1]))
        return cls(episode=int(row["episode"]), episode_return=float(row["episode_return"]), score=float(row["score"]),
                   macs=int(row["macs"]), params=int(row["params"]), macs_ratio=float(row["macs_ratio"]),
                   params_ratio=float(row["params_ratio"]), budget_met=row["budget_met"] == "True",
                   rates=tuple(float(r) for r in row["rates"].split()), kept_channels=tuple(int(k) for k in row["kept_channels"].split()),
                   evaluations=int(row["evaluations"]), seconds=float(row["seconds"]), keep_mask=mask)

    def ranks_above(self, other: EpisodeRecord | None) -> bool:
        """Whether this episode is a better search result than ``other``: budget met first, then the higher return."""
        return other is None or (self.budget_met, self.episode_return) > (other.budget_met, other.episode_return)


def best_episode(records: list[EpisodeRecord]) -> EpisodeRecord | None:
    """The best of ``records`` (see :meth:`EpisodeRecord.ranks_above`; the earliest wins ties)."""
    return best_so_far(records)[-1] if records else None


def best_so_far(records: list[EpisodeRecord]) -> list[EpisodeRecord]:
    """The best episode after each of ``records`` by the one rule of :meth:`EpisodeRecord.ranks_above`.

    The recovered mask, the learning curves, wandb's ``best/*`` and the tuning metric all follow it.
    """
    best: EpisodeRecord | None = None
    bests = []
    for record in records:
        if record.ranks_above(best):
            best = record
        assert best is not None
        bests.append(best)
    return bests


def best_score_curve(records: list[EpisodeRecord], length: int | None = None) -> list[float]:
    """The reward-split score of the best episode so far (NaN while no episode met the budget), padded to ``length``."""
    curve = [best.score if best.budget_met else float("nan") for best in best_so_far(records)][:length]
    if length is not None:
        curve += [curve[-1] if curve else float("nan")] * (length - len(curve))
    return curve


def save_mask(path: Path, keep: list[np.ndarray] | tuple[np.ndarray, ...]) -> None:
    """A keep-mask as ``.npz`` (one boolean array per group), atomically."""
    write_atomic(path, lambda handle: np.savez(handle, *[np.asarray(m, dtype=bool) for m in keep]))


def load_mask(path: Path) -> list[np.ndarray]:
    """The keep-mask saved by :func:`save_mask`.

    Raises:
        RunError: missing or not a keep-mask file.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            masks = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise RunError(f"{path} is not a keep-mask file ({type(error).__name__}: {error}); delete it or start a new run") from None
    if not masks or any(m.dtype != bool or m.ndim != 1 for m in masks):
        raise RunError(f"{path} is not a keep-mask file (expected one boolean array per group)")
    return masks


class RunFolder:
    """The files of one run folder (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.episodes_path = self.path / "episodes.csv"
        self.best_mask_path = self.path / "best_mask.npz"
        self.summary_path = self.path / "summary.json"
        self.checkpoint_path = self.path / "checkpoint"
        self.lock_path = self.path / ".lock"
        self._csv = ChecksummedCSV(self.episodes_path, list(EpisodeRecord.FIELDS))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --------------------------------------------------------------- creation
    @contextlib.contextmanager
    def writing(self, create: bool) -> Iterator[RunFolder]:
        """Hold the folder's lock for the block; with ``create``, make the folder and remove it again on failure.

        A folder this call created is removed if the block fails before any
        episode was recorded, so a failed start leaves nothing behind. Only the
        holder cleans: a writer refused the lock touches nothing (the lock is
        ``fcntl``'s on an open file, never a file whose existence is the lock,
        and the lock file itself is never deleted by a refused process).

        Raises:
            RunError: the folder cannot be created, is not empty (``create``), or another process writes it.
        """
        created = False
        if create:
            if self.path.exists() and not self.path.is_dir():
                raise RunError(f"run folder {self.path} is a file: choose another --run-dir")
            if self.path.exists() and any(child != self.lock_path for child in self.path.iterdir()):
                raise RunError(f"run folder {self.path} is not empty: pass --resume {self.path} to continue it, "
                               "or choose another --run-dir")
            try:
                created = not self.path.exists()
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise RunError(f"cannot create run folder {self.path}: {error.strerror or error}") from None
        elif not self.config_path.exists():
            raise RunError(f"cannot resume {self.path}: it has no config.json (is it a prune-gym run folder?)")
        with exclusive_lock(self.lock_path, f"run folder {self.path}"):  # refused: nothing of the holder's is touched
            try:
                self._remove_leftovers()
                yield self
            except BaseException:
                if create and not self.episodes_path.exists():  # a failed start, cleaned while this process holds the lock
                    if created:
                        shutil.rmtree(self.path, ignore_errors=True)
                    else:
                        for child in self.path.iterdir():
                            if child != self.lock_path:
                                (shutil.rmtree if child.is_dir() else os.remove)(child)
                raise

    def _remove_leftovers(self) -> None:
        """Partial files and checkpoint folders a killed writer left (safe: this process holds the lock)."""
        for leftover in [*self.path.glob(".*.partial"), *self.path.glob(".checkpoint-*")]:
            if leftover.name != ".checkpoint-previous" or (self.checkpoint_path / "checkpoint.json").exists():
                (shutil.rmtree if leftover.is_dir() else os.remove)(leftover)

    # ----------------------------------------------------------------- config
    def write_spec(self, spec: RunSpec) -> None:
        """Write ``config.json`` atomically."""
        write_atomic(self.config_path, spec.to_json())

    def read_spec(self) -> RunSpec:
        """The run's specification."""
        if not self.config_path.exists():
            raise RunError(f"{self.path} has no config.json: not a prune-gym run folder")
        return RunSpec.from_json(self.config_path)

    # --------------------------------------------------------------- episodes
    def episodes(self, widths: list[int] | None = None) -> tuple[list[EpisodeRecord], str | None]:
        """The recorded episodes (masks restored when ``widths`` is given) and a warning about a dropped torn line."""
        rows, warning = self._csv.read()
        records = []
        for number, row in enumerate(rows, start=2):
            try:
                records.append(EpisodeRecord.from_row(row, widths))
            except (ValueError, KeyError) as error:
                raise RunError(f"{self.episodes_path} line {number}: unreadable record ({error})") from None
        for expected, record in enumerate(records):
            if record.episode != expected:
                raise RunError(f"{self.episodes_path}: episode {record.episode} where {expected} was expected; the file was modified")
        return records, warning

    def repair_episodes(self) -> str | None:
        """Cut a torn last line off ``episodes.csv`` before appending again; returns the warning, if any."""
        return self._csv.repair()

    def append_episode(self, record: EpisodeRecord) -> None:
        """Append one episode durably (one fsync'd line)."""
        self._csv.append(record.to_row())

    # ------------------------------------------------------ masks and summary
    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` atomically."""
        write_atomic(self.summary_path, json.dumps(summary, indent=2))

    def read_summary(self) -> dict[str, Any]:
        """The run's ``summary.json``."""
        check_regular_file(self.summary_path)
        try:
            summary = json.loads(self.summary_path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} has no summary.json: the search has not ended yet (resume it)") from None
        except (OSError, ValueError) as error:
            raise RunError(f"{self.summary_path} is unreadable ({error}); resume the run to rewrite it") from None
        if not isinstance(summary, dict):
            raise RunError(f"{self.summary_path} is not a run summary")
        return summary

    # ------------------------------------------------------------ checkpoints
    @contextlib.contextmanager
    def new_checkpoint(self) -> Iterator[Path]:
        """An empty folder to write the next checkpoint into; it becomes the current checkpoint when the block ends.

        A crash at any moment leaves the old or the new checkpoint whole; a failure
        inside the block (a full disk, say) removes the partial folder and re-raises.
        """
        staging = self.path / f".checkpoint-{os.getpid()}-{time.monotonic_ns()}"
        staging.mkdir()
        try:
            yield staging
            for file in staging.iterdir():
                with open(file, "rb") as handle:
                    os.fsync(handle.fileno())
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        previous = self.path / ".checkpoint-previous"
        shutil.rmtree(previous, ignore_errors=True)
        if self.checkpoint_path.exists():
            os.replace(self.checkpoint_path, previous)
        os.replace(staging, self.checkpoint_path)
        shutil.rmtree(previous, ignore_errors=True)

    def current_checkpoint(self) -> Path | None:
        """The folder of the latest complete checkpoint, if any (also after a crash between the two renames)."""
        for candidate in (self.checkpoint_path, self.path / ".checkpoint-previous"):
            if (candidate / "checkpoint.json").exists():
                return candidate
        return None
