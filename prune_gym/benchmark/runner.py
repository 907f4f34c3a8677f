"""``prune-gym benchmark``: one agent on every entry and seed of a suite, resumable, scored by the suite's protocol.

The results folder holds ``benchmark.json`` (suite, agent, hyper-parameters:
a folder never mixes two), one run folder per (entry, seed)
(``<entry>/seed-<n>/``, a normal prune-gym run folder plus ``score.json`` or
``failed.json``), the recovery cache, and ``results.json`` (every run and the
aggregates). A re-run skips scored runs, resumes interrupted ones and retries
failed ones; Ctrl-C loses no finished run.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import prune_gym
from prune_gym.agent_api import agent_hyperparameters, compatible_environment, transfers
from prune_gym.benchmark.aggregate import MANIFEST, RESULTS, collect
from prune_gym.benchmark.executors import Executor, LocalExecutor
from prune_gym.benchmark.scoring import RecoveryCache, RecoveryScorer, entry_references, mask_digest, standard_error
from prune_gym.benchmark.suites import Entry, Suite, get_suite
from prune_gym.benchmark.transfer import TrainJob, train_on_pairs
from prune_gym.errors import RunError
from prune_gym.progress import progress_bar
from prune_gym.runs import RunFolder, RunSpec, best_episode, best_score_curve, load_mask
from prune_gym.search import check_spec, run_search
from prune_gym.storage import file_sha256, write_atomic
from prune_gym.tasks import get_task
from prune_gym.validation import check_int


@dataclass(frozen=True)
class Job:
    """One search of a benchmark: ``spec`` (an agent on one entry with one seed) in ``run_dir``, scored with ``cache``."""

    suite: str
    entry: Entry
    spec: RunSpec
    run_dir: Path
    cache: RecoveryCache

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def agent(self) -> str:
        return self.spec.agent

    @property
    def device(self) -> str:
        return self.spec.device or "cpu"

    def on_device(self, device: str) -> Job:
        """This job computing on ``device`` (what an executor grants)."""
        return dataclasses.replace(self, spec=self.spec.with_env(device=device))

    def failure(self, error: str, **details: Any) -> dict[str, Any]:
        """The failed result of this run, with ``error`` (and ``details``), also written to its folder as ``failed.json``
        (unless the run was scored meanwhile, by another benchmark writing the same folder)."""
        failure = {"entry": self.entry.name, "seed": self.seed, "agent": self.agent, "status": "failed", "error": error, **details}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not (self.run_dir / "score.json").exists():
            write_atomic(self.run_dir / "failed.json", json.dumps(failure, indent=2))
        return failure


MEASURING_PACKAGES = ("torch", "torchvision", "torch-pruning", "numpy", "gymnasium", "stable-baselines3", "tianshou",
                      "scikit-learn", "rliable")
"""The packages whose versions can change a recovered score or a search, recorded with every benchmark."""


def _cpuinfo(field: str) -> str | None:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith(field))
    except (OSError, StopIteration):
        return None


def machine() -> dict[str, Any]:
    """What ran the benchmark: processor and its SIMD flags (they change float results), cores, torch threads and
    torch's CPU capability, device, the versions of :data:`MEASURING_PACKAGES`, Python and the date."""
    flags = (_cpuinfo("flags") or "").split()
    simd = sorted(flag for flag in flags if flag.startswith(("avx", "sse", "fma", "amx", "neon", "asimd")))
    versions: dict[str, str | None] = {}
    for package in MEASURING_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": _cpuinfo("model name") or platform.processor(), "cpu_flags": simd, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "prune_gym": prune_gym.__version__, "python": platform.python_version(), "packages": versions,
            "date": time.strftime("%Y-%m-%d")}


def plan(suite: Suite, agent: str, agent_kwargs: dict[str, Any], seeds: list[int], out: Path, cache: RecoveryCache, device: str,
         env_overrides: dict[str, Any] | None = None) -> tuple[list[Job], list[str]]:
    """The jobs of a benchmark, and the entries the agent cannot run on (with the reason).

    Each job's spec is :meth:`Entry.run_spec`: the suite's environment keywords, then ``env_overrides`` (e.g.
    ``criterion`` for the uniform baseline), on the environment and action type the agent declares.
    """
    jobs, skipped = [], []
    for entry in suite.entries:
        spec = entry.run_spec(agent, agent_kwargs, env_overrides=env_overrides, device=device)
        try:
            env_id, action_type = compatible_environment(agent, agent_kwargs, entry.env, spec.env_kwargs.get("action_type"))
        except ValueError as error:
            skipped.append(f"{entry.name}: {error}")
            continue
        spec = spec.replace(env=env_id).with_env(action_type=action_type)
        jobs += [Job(suite.name, entry, spec.replace(seed=seed), out / entry.slug / f"seed-{seed}", cache) for seed in seeds]
    return jobs, skipped


def run_job(job: Job) -> dict[str, Any]:
    """Search, then score by the suite's protocol; returns the run's result (``status`` ok or failed, never raises)."""
    score_path = job.run_dir / "score.json"
    if score_path.exists():
        try:
            scored = json.loads(score_path.read_text())
        except (OSError, ValueError) as error:
            return job.failure(f"{score_path} is unreadable ({error}): delete it to score the run again")
        (job.run_dir / "failed.json").unlink(missing_ok=True)
        return scored
    started = time.perf_counter()
    failed = job.run_dir / "failed.json"
    if failed.exists() and not (job.run_dir / "config.json").exists():  # an earlier try failed before its run started
        failed.unlink()
    try:
        suite = get_suite(job.suite)
        summary = run_search(job.spec, job.run_dir, progress=False, plots=False)
        if summary["interrupted"]:
            raise KeyboardInterrupt
        result = score_run(job, suite, summary)
        result["benchmark_seconds"] = time.perf_counter() - started
        write_atomic(score_path, json.dumps(result, indent=2))
        (job.run_dir / "failed.json").unlink(missing_ok=True)  # an earlier try's, or another benchmark's refused one
        return result
    except KeyboardInterrupt:
        raise
    except Exception as error:
        return job.failure(f"{type(error).__name__}: {error}", traceback=traceback.format_exc(limit=8))


def score_run(job: Job, suite: Suite, summary: dict[str, Any]) -> dict[str, Any]:
    """The run's selected mask, recovered and scored on the test split, normalised against the entry's references."""
    folder = RunFolder(job.run_dir)
    network_widths = [group["channels"] for group in summary["groups"]]
    records, _ = folder.episodes(network_widths)
    best = best_episode(records)
    if best is None:
        raise RunError(f"{job.run_dir} finished no episode")
    keep = load_mask(folder.best_mask_path)
    checkpoint = folder.current_checkpoint()
    weights = None
    if checkpoint is not None and (checkpoint / "weights.pt").exists():
        weights = torch.load(checkpoint / "weights.pt", map_location=job.device, weights_only=True)
    bn_recalibration = int(job.spec.env_kwargs.get("bn_recalibration", 0))
    references = entry_references(job.entry, suite.recovery, suite.baseline_criterion, job.cache, job.device,
                                  suite.filled_uniform)
    recovered = RecoveryScorer(job.entry.task, suite.recovery, job.cache, job.device).score(
        keep, bn_recalibration=bn_recalibration, weights=weights)
    normalised = references.normalise(recovered.test_score) if best.budget_met else 0.0
    curve = [references.normalise_proxy(score) for score in best_score_curve(records, job.entry.episodes)]
    return {
        "entry": job.entry.name, "seed": job.seed, "agent": job.agent, "status": "ok" if best.budget_met else "budget-missed",
        "env": job.spec.env, "action_type": job.spec.env_kwargs.get("action_type"), "best_episode": best.episode,
        "proxy_score": best.score, "macs_ratio": best.macs_ratio, "params_ratio": best.params_ratio, "budget_met": best.budget_met,
        "mask": mask_digest(keep), "test_scores": list(recovered.test_scores), "test_score": recovered.test_score,
        "test_correct": None if recovered.test_correct is None else list(recovered.test_correct),
        "test_standard_error": standard_error(recovered.test_score, recovered.test_samples), "normalised": normalised,
        "evaluations": summary["evaluations"], "episodes": summary["episodes_done"], "search_seconds": summary["seconds"],
        "normalised_proxy_curve": curve, "references": dataclasses.asdict(references),
    }


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    path = out / MANIFEST
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(manifest, indent=2))
        return
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        raise RunError(f"{path} is unreadable: use another --out folder") from None
    for key in ("suite", "agent", "agent_kwargs", "env_overrides", "transfer"):
        if existing.get(key) != manifest[key]:
            raise RunError(f"{out} holds a benchmark of {key} {existing.get(key)!r}, not {manifest[key]!r}: "
                           "use another --out folder (one folder per suite, agent and hyper-parameters)")


def _transfer_mode(suite: Suite, agent: str, zero_shot: bool) -> str | None:
    """How ``agent`` meets a transfer suite's held-out entries (None: the suite has no transfer track)."""
    if suite.transfer is None:
        if zero_shot:
            raise ValueError(f"suite {suite.name!r} has no transfer track: zero-shot runs need one (e.g. transfer-v0)")
        return None
    if zero_shot and not transfers(agent):
        raise ValueError(f"agent {agent!r} does not transfer (it declares no `transfers = True`): zero-shot is for agents "
                         "that learn a policy; leave out --zero-shot to give it the few-shot evaluations from scratch")
    return "zero-shot" if zero_shot else "few-shot" if transfers(agent) else "from scratch"


def _from_trained(jobs: list[Job], suite: Suite, agent: str, agent_kwargs: dict[str, Any], seeds: list[int], trained: Path,
                  device: str, zero_shot: bool, executor: Executor, progress: bool) -> list[Job]:
    """Train ``agent`` on the suite's train pairs for every seed (reusing finished trainings in ``trained``), then the
    held-out ``jobs`` starting from that state: one deterministic episode (``zero_shot``) or the entry's evaluations.
    A seed whose training failed has its held-out runs failed with the training's error."""
    train_jobs = [TrainJob(suite.name, agent, agent_kwargs, seed, trained / f"seed-{seed}", device) for seed in seeds]
    bar = progress_bar(len(train_jobs), f"{agent} learning on {suite.name}'s train pairs (seeds)", "seed", enabled=progress)
    failed = {}
    for train_job, record in executor.run(train_on_pairs, train_jobs):
        if record["status"] != "ok":
            failed[train_job.seed] = record["error"]
        bar.update()
    bar.close()
    states = {train_job.seed: str(train_job.agent_state.resolve()) for train_job in train_jobs}
    ready = []
    for job in jobs:
        if job.seed in failed:
            job.failure(f"the training on the train pairs failed: {failed[job.seed]}")
            continue
        spec = job.spec.replace(agent_state=states[job.seed], act_only=zero_shot)
        ready.append(dataclasses.replace(job, spec=spec.replace(episodes=1, max_evaluations=1) if zero_shot else spec))
    return ready


def run_benchmark(agent: str, suite_name: str, out: str | Path, seeds: list[int] | None = None,
                  agent_kwargs: dict[str, Any] | None = None, env_overrides: dict[str, Any] | None = None,
                  executor: Executor | None = None, device: str = "cpu", progress: bool = True,
                  cache: str | Path | None = None, entries: list[str] | None = None, zero_shot: bool = False,
                  trained: str | Path | None = None) -> dict[str, Any]:
    """Benchmark ``agent`` on every entry (or the named ``entries``) and seed of a suite; returns (and writes)
    ``results.json``, which covers every run the folder holds.

    On a transfer suite (:class:`~prune_gym.benchmark.suites.Transfer`) an agent that transfers first learns on the
    train pairs, once per seed, in ``trained`` (default ``out/trained``; shareable by its zero-shot and few-shot
    benchmarks), then meets the held-out entries from that state: ``zero_shot`` plays one episode of its deterministic
    policy, else it learns for the entry's evaluations. Any other agent gets those evaluations from scratch. The
    results' ``transfer`` says which (``zero-shot``, ``few-shot``, ``from scratch``).

    ``env_overrides`` replace the suite's environment keywords (``criterion`` for a
    uniform baseline with another ranking); they are part of the results' identity.
    ``cache`` holds the recovered networks and each entry's references (default
    ``out/cache``); benchmarks may share one, since its keys carry the task's
    checkpoint, the mask and the recovery, so that the references of an entry
    and a mask found by several agents or seeds are recovered once.

    Raises:
        ValueError: unknown suite, entry or agent, an empty seed list, hyper-parameters the agent rejects, or
            ``zero_shot`` for an agent that does not transfer or a suite without transfer track.
        RunError: ``out`` holds another suite's or agent's benchmark.
    """
    suite = get_suite(suite_name)
    if entries is not None:  # names or slugs; an unknown one lists the suite's entries
        chosen = {suite.entry(name).name: suite.entry(name) for name in entries}
        suite = dataclasses.replace(suite, entries=tuple(chosen.values()))
    seeds = list(suite.seeds if seeds is None else seeds)
    if not seeds:
        raise ValueError("--seeds is empty: give at least one seed, or leave it out for the suite's seeds")
    seeds = list(dict.fromkeys(check_int("seeds", seed, 0, "integers >= 0") for seed in seeds))  # each seed once
    given = dict(agent_kwargs or {})
    if agent == "uniform" and suite.filled_uniform:
        given.setdefault("filled", True)  # the suite's reference is the filled uniform pruning
    agent_kwargs = agent_hyperparameters(agent, given)
    transfer = _transfer_mode(suite, agent, zero_shot)
    env_overrides = dict(env_overrides or {})
    out = Path(out)
    jobs, skipped = plan(suite, agent, agent_kwargs, seeds, out, RecoveryCache(Path(cache) if cache else out / "cache"), device,
                         env_overrides)
    if not jobs:
        raise ValueError(f"agent {agent!r} fits no entry of suite {suite.name!r}: " + "; ".join(skipped))
    _check_manifest(out, {"suite": suite.name, "agent": agent, "agent_kwargs": agent_kwargs, "agent_kwargs_given": given,
                          "env_overrides": env_overrides, "not_applicable": skipped, "transfer": transfer})
    tasks = {job.entry.task for job in jobs} | {entry.task for entry in (suite.transfer.train if suite.transfer else ())}
    for task in tasks:
        get_task(task).load_model(progress=progress)  # pretrains small tasks once, before any worker starts
    check_spec(jobs[0].spec)
    executor = executor or LocalExecutor()
    if transfer in ("zero-shot", "few-shot"):
        jobs = _from_trained(jobs, suite, agent, agent_kwargs, seeds, Path(trained) if trained else out / "trained", device,
                             zero_shot, executor, progress)
    bar = progress_bar(len(jobs), f"{agent} on {suite.name} (entries x seeds)", "run", enabled=progress)
    for job, result in executor.run(run_job, jobs):
        bar.set_postfix(last=f"{job.entry.name} seed {job.seed}: {result['status']}")
        bar.update()
    bar.close()
    results = collect(out)
    results["machine"] = machine()
    results["checkpoints"] = {task: file_sha256(get_task(task).checkpoint_path()) for task in sorted(tasks)}
    write_atomic(out / RESULTS, json.dumps(results, indent=2))
    return results
