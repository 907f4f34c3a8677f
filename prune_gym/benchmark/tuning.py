"""Fair hyper-parameter tuning: every agent gets the same trials, searcher, scheduler and tuning seeds.

``prune-gym tune`` runs ``trials`` configurations of an agent's
hyper-parameters, drawn from a ``space.yaml`` by Optuna's TPE
(``ray.tune.search.optuna.OptunaSearch``, seeded), under Ray Tune's ASHA
scheduler. A trial searches every entry of the suite the agent fits, once per
**tuning seed** (disjoint from the suite's benchmark seeds, so the benchmark
never scores a seed the configuration was picked on), each search with the
entry's episode and evaluation budget (as the benchmark gives it). After every
episode it reports the mean over its searches so far of the reward-split score
of the best episode so far (the rule that picks the mask the benchmark
recovers; 0 before an episode meets the budget), normalised per entry like the benchmark's sample-efficiency curves
(0 = uniform pruning with the suite's baseline criterion, 1 = the unpruned
network: comparable across entries), or raw (``metric="proxy"``). ASHA
compares trials at equal episode counts and stops the weak ones early. The
test split is never used to choose.

The best configuration among the trials that ran their whole budget is written
as ``best_config.json``, the JSON object ``prune-gym benchmark --agent-config``
reads; ``tuning.json`` records every trial and the episodes spent.

``space.yaml`` maps hyper-parameter names to one distribution each::

    sigma: {loguniform: [0.05, 1.0]}        # log-uniform between the bounds
    sigma_decay: {uniform: [0.9, 0.99]}     # uniform between the bounds
    batch_size: {randint: [16, 128]}        # an integer, both bounds included
    warmup_episodes: {choice: [10, 50, 100]} # one of the values (numbers, strings, booleans)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prune_gym.benchmark.executors import limit_threads
from prune_gym.benchmark.ray_executor import LOCAL, check_cluster_fits, check_resources, granted_device, ray_session, require_ray
from prune_gym.benchmark.runner import Job, machine, plan
from prune_gym.benchmark.scoring import EntryReferences, RecoveryCache, entry_references
from prune_gym.benchmark.suites import get_suite
from prune_gym.runs import EpisodeRecord
from prune_gym.search import check_spec
from prune_gym.storage import write_atomic
from prune_gym.validation import check_int, invalid

METRIC = "best_so_far"
METRICS = ("normalised", "proxy")
DISTRIBUTIONS = {"uniform": "a float between two bounds", "loguniform": "a float between two positive bounds, log scale",
                 "randint": "an integer between two bounds, both included", "choice": "one of a list of values"}
DEFAULT_TUNING_SEEDS = (100, 101)
BEST_CONFIG = "best_config.json"
REPORT = "tuning.json"


def parse_space(space: Any, source: str = "space") -> dict[str, tuple[str, list[Any]]]:
    """Check a search space ``{name: {distribution: arguments}}``; returns ``{name: (distribution, arguments)}``.

    Raises:
        ValueError: one line naming the hyper-parameter and what is wrong with it.
    """
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{source}: expected a mapping of hyper-parameter names to distributions, e.g. 'sigma: {{uniform: [0.1, 1]}}'")
    parsed = {}
    for name, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
            raise ValueError(f"{source}: {name}: expected one of {sorted(DISTRIBUTIONS)} with its arguments, "
                             f"e.g. '{name}: {{uniform: [0.1, 1]}}', got {spec!r}")
        kind, arguments = next(iter(spec.items()))
        if kind == "choice":
            if not isinstance(arguments, list) or not arguments or \
                    not all(value is None or isinstance(value, str | int | float | bool) for value in arguments):
                raise ValueError(f"{source}: {name}: choice needs a non-empty list of numbers, strings or booleans, got {arguments!r}")
        else:
            numeric = isinstance(arguments, list) and len(arguments) == 2 and \
                all(isinstance(v, int | float) and not isinstance(v, bool) for v in arguments)
            if not numeric or not arguments[0] < arguments[1]:
                raise ValueError(f"{source}: {name}: {kind} needs [low, high] with low < high, got {arguments!r}")
            if kind == "loguniform" and arguments[0] <= 0:
                raise ValueError(f"{source}: {name}: loguniform needs a positive low bound, got {arguments[0]!r}")
            if kind == "randint" and not all(isinstance(v, int) for v in arguments):
                raise ValueError(f"{source}: {name}: randint needs integer bounds, got {arguments!r}")
        parsed[str(name)] = (kind, list(arguments))
    return parsed


def load_space(path: str | Path) -> dict[str, tuple[str, list[Any]]]:
    """Read and check a ``space.yaml`` (see the module's docstring for the format)."""
    import yaml

    try:
        space = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"--space {path}: not a readable YAML file ({' '.join(str(error).split())})") from None
    return parse_space(space, f"--space {path}")


def tune_space(space: dict[str, tuple[str, list[Any]]]) -> dict[str, Any]:
    """The Ray Tune search space of a parsed space (``tune.uniform``, ``loguniform``, ``randint``, ``choice``)."""
    from ray import tune

    domains = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
               "randint": lambda a: tune.randint(a[0], a[1] + 1), "choice": tune.choice}
    return {name: domains[kind](arguments) for name, (kind, arguments) in space.items()}


def representative(space: dict[str, tuple[str, list[Any]]]) -> dict[str, Any]:
    """A configuration of the space (low bounds, first choices): what the agent is checked with before any trial."""
    return {name: arguments[0] for name, (_kind, arguments) in space.items()}


@dataclass(frozen=True)
class TuningPlan:
    """What every trial runs: one search per job (entry x tuning seed) and how an episode's score becomes the metric.

    ``references`` maps an entry's name to its references; empty for the raw proxy metric.
    """

    searches: tuple[Job, ...]
    references: dict[str, EntryReferences]
    folder: Path
    cpus_per_run: float
    gpus_per_run: float

    @property
    def episodes(self) -> int:
        """Episodes of a whole trial (= its reports, ASHA's time axis)."""
        return sum(job.entry.episodes for job in self.searches)

    def value(self, entry: str, best: float) -> float:
        """The score of a search's best episode so far as the metric: normalised by the entry's references, raw, or 0
        before any budget-meeting episode (NaN)."""
        if not math.isfinite(best):
            return 0.0
        return self.references[entry].normalise_proxy(best) if self.references else best


class _Reporter:
    """Reports a trial's metric to Tune after each episode: the mean of the finished searches' values and the running one's."""

    def __init__(self, plan: TuningPlan) -> None:
        from ray import tune

        self.plan, self.report = plan, tune.report
        self.finished: list[float] = []
        self.entry, self.best = "", math.nan

    def start(self, entry: str) -> None:
        self.entry, self.best = entry, math.nan

    def on_episode(self, _record: EpisodeRecord, best: EpisodeRecord) -> None:
        self.best = best.score if best.budget_met else math.nan  # the search's best episode, by the rule that picks its mask
        current = self.plan.value(self.entry, self.best)
        self.report({METRIC: (sum(self.finished) + current) / (len(self.finished) + 1), "search": len(self.finished)})

    def finish(self) -> None:
        self.finished.append(self.plan.value(self.entry, self.best))


def _trial(hyperparameters: dict[str, Any], tuning: TuningPlan) -> None:
    """One Tune trial: every search of the plan with these hyper-parameters, reporting after each episode."""
    from ray import tune

    from prune_gym.search import run_search

    limit_threads(max(1, int(tuning.cpus_per_run)))
    device = granted_device(tuning.gpus_per_run)
    folder = tuning.folder / tune.get_context().get_trial_id()
    reporter = _Reporter(tuning)
    for job in tuning.searches:
        reporter.start(job.entry.name)
        spec = job.spec.replace(agent_kwargs={**job.spec.agent_kwargs, **hyperparameters})
        run_search(spec.with_env(device=device) if device else spec, folder / job.entry.slug / f"seed-{job.seed}",
                   progress=False, on_episode=reporter.on_episode)
        reporter.finish()


def _plain(value: Any) -> Any:
    """A Tune/Optuna value as plain JSON (NumPy scalars to Python numbers)."""
    return value.item() if hasattr(value, "item") else value


def tune_agent(agent: str, suite_name: str, space: dict[str, tuple[str, list[Any]]], trials: int, out: str | Path,
               tuning_seeds: list[int] | None = None, metric: str = "normalised", address: str = LOCAL,
               cpus_per_run: float = 1, gpus_per_run: float = 0, max_in_flight: int | None = None, storage: str | Path | None = None,
               grace_period: int | None = None, reduction_factor: float = 3, seed: int = 0, device: str = "cpu",
               env_overrides: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Tune ``agent`` on ``suite_name`` with ``trials`` configurations of ``space`` (from :func:`load_space`); returns ``tuning.json``.

    ``grace_period``: episodes before ASHA may stop a trial (default: a quarter of the first search);
    ``storage``: where the trials' run folders and Tune's records go (default ``out``; on a cluster, a path every node sees).

    Raises:
        ValueError: an unknown suite or agent, tuning seeds that overlap the suite's, a space the agent rejects,
            resources no node has, or no trial that ran its whole budget.
    """
    require_ray()
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    suite = get_suite(suite_name)
    seeds = list(DEFAULT_TUNING_SEEDS if tuning_seeds is None else tuning_seeds)
    if not seeds:
        raise invalid("tuning seeds", seeds, "at least one integer >= 0")
    seeds = [check_int("tuning seeds", seed, 0, "integers >= 0") for seed in seeds]
    overlap = sorted(set(seeds) & set(suite.seeds))
    if overlap:
        raise ValueError(f"tuning seeds {overlap} are benchmark seeds of {suite.name} {list(suite.seeds)}: tune on other seeds "
                         f"(--tuning-seeds {' '.join(str(max(suite.seeds) + 100 + i) for i in range(len(seeds)))})")
    if metric not in METRICS:
        raise ValueError(f"invalid metric {metric!r}: expected one of {list(METRICS)}")
    check_int("trials", trials, 1, "a positive number of configurations to try")
    check_resources(cpus_per_run, gpus_per_run)
    out = Path(out).resolve()
    storage = Path(storage).resolve() if storage is not None else out
    from prune_gym.agent_api import agent_hyperparameters

    cache = RecoveryCache(storage / "cache")
    jobs, skipped = plan(suite, agent, agent_hyperparameters(agent, {}), seeds, storage, cache, device, env_overrides)
    if not jobs:
        raise ValueError(f"agent {agent!r} fits no entry of suite {suite.name!r}: " + "; ".join(skipped))
    check_spec(jobs[0].spec.replace(agent_kwargs=agent_hyperparameters(agent, representative(space))))
    references: dict[str, EntryReferences] = {}
    if metric == "normalised":
        for entry in {job.entry.name: job.entry for job in jobs}.values():
            references[entry.name] = entry_references(entry, suite.recovery, suite.baseline_criterion, cache, device,
                                                     suite.filled_uniform)
    trial_plan = TuningPlan(tuple(jobs), references, storage / "trials", cpus_per_run, gpus_per_run)
    grace = max(1, jobs[0].entry.episodes // 4) if grace_period is None else grace_period
    if check_int("grace_period", grace, 1, f"1 to {trial_plan.episodes} episodes (a whole trial)") > trial_plan.episodes:
        raise invalid("grace_period", grace, f"1 to {trial_plan.episodes} episodes (a whole trial)")
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=trial_plan.episodes, grace_period=grace,
                              reduction_factor=reduction_factor)
    started = time.perf_counter()
    with ray_session(address) as ray:
        check_cluster_fits(ray, cpus_per_run, gpus_per_run)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_trial, tuning=trial_plan), {"cpu": cpus_per_run, "gpu": gpus_per_run}),
            param_space=tune_space(space),
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=OptunaSearch(seed=seed), scheduler=scheduler,
                                        num_samples=trials, max_concurrent_trials=max_in_flight),
            run_config=tune.RunConfig(name=f"tune-{agent.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str(storage / "ray_tune"), verbose=1 if progress else 0),
        )
        grid = tuner.fit()
    rows: list[dict[str, Any]] = []
    for result in (grid[index] for index in range(len(grid))):
        metrics = result.metrics or {}
        iterations = int(metrics.get("training_iteration", 0))
        status = "error" if result.error else "completed" if iterations == trial_plan.episodes else "stopped"
        rows.append({"trial": metrics.get("trial_id"), "config": {k: _plain(v) for k, v in (result.config or {}).items()},
                     "status": status, "episodes": iterations, METRIC: metrics.get(METRIC),
                     "error": (str(result.error).strip().splitlines() or [""])[0] if result.error else None})
    completed = [row for row in rows if row["status"] == "completed"]
    if not completed:
        errors = [row["error"] for row in rows if row["error"]]
        raise ValueError(f"no trial of {agent} ran its whole budget" + (f"; first error: {errors[0]}" if errors else ""))
    best = max(completed, key=lambda row: row[METRIC])
    report = {"agent": agent, "suite": suite.name, "entries": sorted({job.entry.name for job in jobs}), "not_applicable": skipped,
              "tuning_seeds": seeds, "metric": metric, "space": {name: {kind: args} for name, (kind, args) in space.items()},
              "searcher": {"name": "optuna TPE (ray.tune.search.optuna.OptunaSearch)", "seed": seed},
              "scheduler": {"name": "ASHA", "grace_period": grace, "reduction_factor": reduction_factor, "max_t": trial_plan.episodes},
              "trials": rows, "episodes_spent": sum(row["episodes"] for row in rows), "best_config": best["config"],
              "best_value": best[METRIC], "seconds": time.perf_counter() - started, "machine": machine()}
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / BEST_CONFIG, json.dumps(best["config"], indent=2))
    write_atomic(out / REPORT, json.dumps(report, indent=2))
    return report
