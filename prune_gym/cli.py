"""The ``prune-gym`` command: ``pretrain``, ``search``, ``fine-tune``, ``export``, ``plot`` and ``list``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prune_gym.errors import PruneGymError
from prune_gym.registry import first_line
from prune_gym.runs import WANDB_MODES, RunSpec

if TYPE_CHECKING:
    from rich.console import Console

DEFAULTS = {field.name: field.default for field in dataclasses.fields(RunSpec) if field.default is not dataclasses.MISSING}
ENV_OPTIONS = ("reward", "macs_budget", "reward_samples", "device")  # search options that are environment keywords
RESUME_OPTIONS = ("episodes", "max_evaluations", "device")  # what --resume may change
MAX_SEEDS = 1000


def _pretrain(args: argparse.Namespace) -> int:
    from prune_gym.tasks import get_task
    from prune_gym.tasks.training import load_checkpoint

    task = get_task(args.task)
    path = task.checkpoint_path()
    if path.exists() and not args.retrain:
        metadata = load_checkpoint(path, task.build_model(), task.name)
        print(f"{task.name}: checkpoint {path} already trained (test {task.metric} {metadata['test_score']:.2%}); "
              f"pass --retrain to train again")
        return 0
    result = task.pretrain(device=args.device, epochs=args.epochs, progress=not args.quiet)
    print(f"{task.name}: test {task.metric} {result.test_score:.2%}, reward-split {task.metric} {result.reward_score:.2%}, "
          f"{result.epochs} epochs in {result.seconds:.1f} s; checkpoint {path}")
    return 0


def parse_key_values(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings to a dict; values parsed as JSON when they parse (numbers, booleans, lists)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        try:
            result[key] = json.loads(value)
        except json.JSONDecodeError:
            result[key] = value
    return result


def _search(args: argparse.Namespace) -> int:
    from prune_gym.search import INTERRUPTED_EXIT_CODE, resume_search, run_search

    if args.seeds is not None:
        return _search_seeds(args)
    if args.ray is not None or args.workers is not None:
        raise ValueError("--ray and --workers run several seeds: add --seeds (e.g. --seeds 0-4)")
    if args.resume:
        given = _given_options(args)
        refused = sorted(set(given) - {*RESUME_OPTIONS, "resume", "quiet"})
        if refused:
            flags = ", ".join("--" + name.replace("_", "-") for name in refused)
            raise ValueError(f"--resume continues {args.resume} as it was specified: {flags} "
                             "cannot change (only --episodes, --max-evaluations and --device can); start a new --run-dir instead")
        summary = resume_search(args.resume, progress=not args.quiet, **{name: given[name] for name in RESUME_OPTIONS if name in given})
    else:
        summary = run_search(search_spec(args), run_dir=args.run_dir, progress=not args.quiet)
    _print_summary(summary)
    return INTERRUPTED_EXIT_CODE if summary["interrupted"] else 0


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``search`` the user gave (their defaults are None or empty)."""
    return {name: value for name, value in vars(args).items() if value not in (None, [], False) and name not in ("command", "handler")}


def search_spec(args: argparse.Namespace) -> RunSpec:
    """The run specification of ``prune-gym search``: named options, then ``--env-arg`` / ``--agent-arg`` keywords.

    Raises:
        ValueError: an environment keyword given both as an option and as ``--env-arg``.
    """
    env_kwargs = parse_key_values(args.env_arg)
    named = {name: getattr(args, name) for name in ENV_OPTIONS if getattr(args, name) is not None}
    twice = sorted(set(named) & set(env_kwargs))
    if twice:
        raise ValueError(f"{', '.join(twice)} given both as --{twice[0].replace('_', '-')} and as --env-arg: give it once")
    fields = {name: getattr(args, name) for name in ("task", "env", "agent", "episodes", "seed", "checkpoint_every", "wandb",
                                                     "wandb_project") if getattr(args, name) is not None}
    return RunSpec(**fields, env_kwargs={**named, **env_kwargs}, agent_kwargs=parse_key_values(args.agent_arg),
                   max_evaluations=args.max_evaluations, wandb_entity=args.wandb_entity, wandb_group=args.wandb_group,
                   wandb_tags=tuple(args.wandb_tags))


def parse_seeds(tokens: list[str]) -> list[int]:
    """``["0-4", "7"]`` to ``[0, 1, 2, 3, 4, 7]``: seeds and inclusive ranges, each seed once."""
    seeds: dict[int, None] = {}
    for token in tokens:
        first, dash, last = token.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()) or (dash and int(last) < int(first)):
            raise ValueError(f"--seeds {token!r}: expected seeds >= 0 or ranges FIRST-LAST, e.g. --seeds 0-4 or --seeds 0 3 7")
        if int(last if dash else first) - int(first) + len(seeds) >= MAX_SEEDS:
            raise ValueError(f"--seeds {' '.join(tokens)}: more than {MAX_SEEDS} seeds; give fewer")
        seeds.update(dict.fromkeys(range(int(first), int(last if dash else first) + 1)))
    if not seeds:
        raise ValueError("--seeds is empty: give seeds or ranges, e.g. --seeds 0-4")
    return list(seeds)


def _optional_seeds(tokens: list[str] | None) -> list[int] | None:
    return None if tokens is None else parse_seeds(tokens)


def _executor(args: argparse.Namespace) -> Any:
    """The local pool of ``--workers`` processes (default 1), or with ``--ray [ADDRESS]`` a Ray executor whose runs ask for
    ``--cpus-per-run`` CPUs (default 1) and ``--gpus-per-run`` GPUs (default 0), at most ``--workers`` at once."""
    if args.ray is None:
        from prune_gym.benchmark.executors import LocalExecutor

        if args.cpus_per_run is not None or args.gpus_per_run is not None:
            raise ValueError("--cpus-per-run and --gpus-per-run are Ray resources: add --ray (the local pool gives each of its "
                             "--workers cores / workers torch threads)")
        return LocalExecutor(1 if args.workers is None else args.workers)
    from prune_gym.benchmark.ray_executor import RayExecutor

    return RayExecutor(args.ray, cpus_per_run=1 if args.cpus_per_run is None else args.cpus_per_run,
                       gpus_per_run=0 if args.gpus_per_run is None else args.gpus_per_run, max_in_flight=args.workers)


def _search_seeds(args: argparse.Namespace) -> int:
    """``search --seeds``: one run folder per seed under --run-dir, on the local pool or Ray; finished seeds are skipped."""
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from prune_gym.benchmark.executors import SearchJob, run_search_job
    from prune_gym.search import resolve_spec
    from prune_gym.tasks import get_task

    if args.resume:
        raise ValueError("--resume continues one run folder: run the same --seeds command again to continue a multi-seed search")
    if args.run_dir is None:
        raise ValueError("--seeds needs --run-dir: the folder that holds one run folder per seed (RUN/seed-N)")
    spec = resolve_spec(search_spec(args))  # one-line errors before any worker starts
    get_task(spec.task).load_model(progress=not args.quiet)  # pretrains a small task once, not in every worker
    run_dir = Path(args.run_dir).resolve()
    jobs = [SearchJob(spec.replace(seed=seed), run_dir / f"seed-{seed}") for seed in parse_seeds(args.seeds)]
    table = Table(title=f"{spec.agent} on {spec.env}, {spec.task}: {len(jobs)} seeds")
    for column in ("seed", "best reward-split score", "MACs kept", "budget", "episodes", "run folder"):
        table.add_column(column, justify="left" if column == "run folder" else "right")
    failed = []
    for job, result in _executor(args).run(run_search_job, jobs):
        best = result.get("best")
        if result["status"] != "ok":
            failed.append(f"seed {job.spec.seed}: {result['error']}")
        elif best is not None:
            table.add_row(str(job.spec.seed), f"{best['score']:.4f}", f"{best['macs_ratio']:.3f}",
                          "met" if best["budget_met"] else "NOT met", str(result["episodes_done"]), result["run_dir"])
    Console().print(table)
    for failure in failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 2 if failed else 0


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    best = summary.get("best")
    if best is None:
        console.print(f"no episode finished; run folder {summary['run_dir']}")
        return
    table = Table(title=f"best episode {best['episode']} of {summary['episodes_done']} "
                        f"({summary['agent']} on {summary['env']}, {summary['task']})")
    table.add_column("group")
    table.add_column("kept / channels", justify="right")
    for group, kept in zip(summary["groups"], best["kept_channels"]):
        table.add_row(group["name"], f"{kept} / {group['channels']}")
    console.print(table)
    totals = Table(show_header=True)
    for column in ("", "before", "after", "after / before"):
        totals.add_column(column, justify="right")
    totals.add_row("MACs", f"{summary['original_macs']:,}", f"{best['macs']:,}", f"{best['macs_ratio']:.3f}")
    totals.add_row("params", f"{summary['original_params']:,}", f"{best['params']:,}", f"{best['params_ratio']:.3f}")
    totals.add_row(f"reward-split {summary['metric']}", f"{summary['score_before']:.4f}", f"{best['score']:.4f}",
                   f"{best['score'] / summary['score_before']:.3f}")
    console.print(totals)
    state = f"interrupted: resume with `prune-gym search --resume {summary['run_dir']}`" if summary["interrupted"] else "done"
    console.print(f"budget {summary['macs_budget']} (MACs kept) {'met' if best['budget_met'] else 'NOT met'}; {state}")
    console.print(f"run folder and plots: {summary['run_dir']}/learning_curve.png, score_vs_macs.png (and .pdf)")


def _agent_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        config = json.loads(open(path).read())
    except (OSError, ValueError) as error:
        raise ValueError(f"--agent-config {path}: not a readable JSON file ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"--agent-config {path}: expected a JSON object of hyper-parameters")
    return config


def _benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from prune_gym.benchmark.runner import RESULTS, run_benchmark

    storage = Path(args.storage or args.out).resolve()
    results = run_benchmark(args.agent, args.suite, storage, seeds=_optional_seeds(args.seeds),
                            agent_kwargs={**_agent_config(args.agent_config), **parse_key_values(args.agent_arg)},
                            env_overrides=parse_key_values(args.env_arg), executor=_executor(args),
                            device=args.device, progress=not args.quiet, cache=args.cache)
    if storage != Path(args.out).resolve():
        from prune_gym.storage import write_atomic

        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_atomic(Path(args.out) / RESULTS, (storage / RESULTS).read_bytes())
    aggregate = results["aggregates"]
    if "iqm" in aggregate:
        print(f"{args.agent} on {args.suite}: IQM {aggregate['iqm']:.3f} [{aggregate['iqm_ci'][0]:.3f}, {aggregate['iqm_ci'][1]:.3f}], "
              f"mean test score after recovery {aggregate['mean_test_score']:.4f}, {len(results['runs'])} runs")
    for failure in results["failed"]:
        print(f"failed: {failure['entry']} seed {failure['seed']}: {failure['error']}", file=sys.stderr)
    print(f"results: {args.out}/results.json")
    return 2 if results["failed"] else 0


def _tune(args: argparse.Namespace) -> int:
    from prune_gym.benchmark.tuning import BEST_CONFIG, METRIC, load_space, tune_agent

    report = tune_agent(args.agent, args.suite, load_space(args.space), args.trials, args.out,
                        tuning_seeds=_optional_seeds(args.tuning_seeds),
                        metric=args.metric, address=args.ray or "local", max_in_flight=args.workers,
                        cpus_per_run=1 if args.cpus_per_run is None else args.cpus_per_run,
                        gpus_per_run=0 if args.gpus_per_run is None else args.gpus_per_run, storage=args.storage,
                        grace_period=args.grace_period, seed=args.seed, device=args.device,
                        env_overrides=parse_key_values(args.env_arg), progress=not args.quiet)
    states = [trial["status"] for trial in report["trials"]]
    print(f"{args.agent} on {args.suite}: {len(states)} trials ({states.count('completed')} completed, {states.count('stopped')} "
          f"stopped early by ASHA, {states.count('error')} failed), {report['episodes_spent']} episodes on tuning seeds "
          f"{report['tuning_seeds']}; best {report['metric']} {METRIC} {report['best_value']:.4f} with {report['best_config']}")
    print(f"best configuration: {args.out}/{BEST_CONFIG} (prune-gym benchmark --agent-config {args.out}/{BEST_CONFIG})")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from prune_gym.benchmark.fidelity import render_fidelity
    from prune_gym.benchmark.leaderboard import load_results, plot_leaderboard, render, render_entries

    results = load_results(args.folders)
    text = render(results) + "\nPer entry: test score after recovery\n\n" + render_entries(results)
    if args.fidelity:
        fidelity = []
        for path in args.fidelity:
            try:
                fidelity.append(json.loads(open(path).read()))
            except (OSError, ValueError) as error:
                raise ValueError(f"--fidelity {path}: not a readable fidelity file ({error})") from None
        text += "\nProxy fidelity: how well each reward protocol ranks candidates as the recovered test score does\n\n"
        text += render_fidelity(fidelity)
    if args.plots:
        for path in plot_leaderboard(results, args.plots):
            print(path)
    if args.output:
        from prune_gym.storage import write_atomic

        write_atomic(args.output, text)
        print(f"leaderboard written to {args.output}")
    else:
        print(text)
    return 0


def _fidelity(args: argparse.Namespace) -> int:
    from prune_gym.benchmark import get_suite
    from prune_gym.benchmark.fidelity import measure_fidelity, render_fidelity

    options = {}
    for pair in args.option:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--option {pair!r}: expected KEY=V1,V2 (e.g. bn_recalibration=0,100)")
        options[key] = [parse_key_values([f"v={value}"])["v"] for value in values.split(",")]
    entries = args.entry or [entry.name for entry in get_suite(args.suite).entries]
    results = [measure_fidelity(args.suite, entry, args.out, options, args.random, tuple(args.runs), args.device) for entry in entries]
    print(render_fidelity(results))
    return 0


def _checkpoint(args: argparse.Namespace) -> int:
    from prune_gym.tasks.checkpoints import export_checkpoint, import_checkpoint, task_checkpoint_sha256

    if args.action == "sha256":
        print(f"{task_checkpoint_sha256(args.task)}  {args.task}")
        return 0
    if args.file is None:
        raise ValueError(f"checkpoint {args.action} needs a FILE")
    if args.action == "export":
        print(f"{args.task}: checkpoint written to {args.file} (sha256 {export_checkpoint(args.task, args.file)})")
    else:
        print(f"{args.task}: checkpoint {args.file} imported (sha256 {import_checkpoint(args.task, args.file)})")
    return 0


def _fine_tune(args: argparse.Namespace) -> int:
    from prune_gym.recovery import fine_tune_run

    report = fine_tune_run(args.run, epochs=args.epochs, device=args.device, progress=not args.quiet)
    for key, value in report.items():
        print(f"{key:>28}: {value}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from prune_gym.recovery import export_run

    print(f"pruned network written to {export_run(args.run, args.output)} (load it with prune_gym.recovery.load_pruned)")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from prune_gym.plots import plot_runs

    output = args.output or (args.runs[0] if len(args.runs) == 1 else "plots")
    for path in plot_runs(args.runs, output):
        print(path)
    return 0


def _console() -> Console:
    """A rich console that never wraps when piped: rows and paths stay whole for grep and copy-paste."""
    from rich.console import Console

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 100_000
    return console


def _doc(item: Any) -> str:
    """The first line of an object's docstring; for a ``functools.partial``, its function's, then the bound arguments."""
    if isinstance(item, functools.partial):
        bound = inspect.signature(item.func).bind_partial(*item.args, **item.keywords).arguments
        return f"{_doc(item.func)} ({', '.join(f'{name}={value!r}' for name, value in bound.items())})"
    return first_line(item)


def _agent_rows() -> list[tuple[str, ...]]:
    """Installed agents: name, action spaces, description; adapters one row per algorithm (``sb3:PPO``)."""
    from prune_gym.agent_api import list_agents, load_agent_class, supported_action_spaces, supported_environments

    def spaces(name: str) -> str:
        declared = supported_action_spaces(name)
        environments = supported_environments(name)
        text = ", ".join(space.__name__ for space in declared) if declared is not None else "any"
        return f"{text} on {', '.join(environments)}" if environments else text

    rows: list[tuple[str, ...]] = []
    for name in list_agents():
        try:
            cls = load_agent_class(name)
        except ValueError as error:  # a broken third-party agent: say so, list the others
            rows.append((name, "", str(error)))
            continue
        algorithms = getattr(cls, "algorithms", None)  # an adapter: `name:ALGO` passes algorithm=ALGO
        if callable(algorithms) and "algorithm" in inspect.signature(cls).parameters:
            rows += [(f"{name}:{algorithm}", spaces(f"{name}:{algorithm}"), description) for algorithm, description in algorithms().items()]
        else:
            rows.append((name, spaces(name), _doc(cls)))
    return rows


def _task_rows() -> list[tuple[str, ...]]:
    from prune_gym.tasks import get_task, list_tasks

    def checkpoint(task: Any) -> str:
        if task.checkpoint_path().exists():
            return "cached"
        return "trains on first use" if task.auto_pretrain else "run `prune-gym pretrain`"

    return [(name, checkpoint(task), task.metric, task.description) for name in list_tasks() for task in [get_task(name)]]


def _catalogue(what: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Column headers and rows of ``prune-gym list WHAT``; imports only what that listing needs."""
    if what == "tasks":
        return ("task", "checkpoint", "metric", "description"), _task_rows()
    if what == "agents":
        return ("agent", "action spaces", "description"), _agent_rows()
    if what == "environments":
        from prune_gym.envs import environment_class, list_environments

        return (("environment", "action types", "description"),
                [(env_id, ", ".join(environment_class(env_id).action_types), _doc(environment_class(env_id)))
                 for env_id in list_environments()])
    if what == "models":
        from prune_gym.tasks.models import get_model, list_models

        return ("model", "input (C, H, W)", "description"), [(name, str(spec.input_shape), _doc(spec.factory))
                                                             for name in list_models() for spec in [get_model(name)]]
    if what == "datasets":
        from prune_gym.tasks.data import get_dataset_loader, list_datasets

        return ("dataset", "description"), [(name, _doc(get_dataset_loader(name))) for name in list_datasets()]
    if what == "rewards":
        from prune_gym.rewards import get_reward, list_rewards

        return ("reward", "kind", "description"), [(name, "sparse" if spec.sparse else "", spec.description)
                                                   for name in list_rewards() for spec in [get_reward(name)]]
    if what == "observations":
        from prune_gym.observations import get_observation, list_observations

        return ("observation", "description"), [(name, _doc(get_observation(name))) for name in list_observations()]
    if what == "suites":
        from prune_gym.benchmark import get_suite, list_suites

        suites = [get_suite(name) for name in list_suites()]
        return ("suite", "entries", "seeds", "description"), [(suite.name, str(len(suite.entries)), str(len(suite.seeds)),
                                                                suite.description) for suite in suites]
    from prune_gym.pruning.importance import get_importance, list_importance_criteria

    return ("criterion", "description"), [(name, get_importance(name).description) for name in list_importance_criteria()]


LISTINGS = ("tasks", "environments", "models", "datasets", "rewards", "observations", "criteria", "agents", "suites")
CACHED_LISTINGS = {"environments": "prune_gym.envs", "models": "prune_gym.tasks.models", "datasets": "prune_gym.tasks.data",
                   "observations": "prune_gym.observations", "criteria": "prune_gym.pruning.importance", "agents": "torch"}
"""Listings that import torch or the RL libraries, and the module whose import they wait for: kept in the cache until the
installed code changes, and served from it only while that module is not imported yet (once it is, listing afresh is
cheap and shows what this process registered)."""


def _installed_code_fingerprint() -> str:
    """A digest of what those listings depend on: every installed distribution's version, and the modification times of
    the source files of prune_gym and of the packages behind ``prune_gym.*`` entry points (editable installs change
    without a new version)."""
    import hashlib
    from importlib import metadata, util
    from pathlib import Path

    distributions = list(metadata.distributions())
    parts = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in distributions)
    packages = {"prune_gym"} | {ep.value.split(":")[0].split(".")[0] for dist in distributions for ep in dist.entry_points
                                if ep.group.startswith("prune_gym.")}
    for package in sorted(packages):
        spec = util.find_spec(package)
        if spec is None:
            continue
        for location in spec.submodule_search_locations or ([spec.origin] if spec.origin else []):
            parts += sorted(f"{path}:{path.stat().st_mtime_ns}" for path in Path(location).rglob("*.py"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _listing(what: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """``_catalogue(what)``, from the cache (``$PRUNE_GYM_CACHE/listings``) while the installed code is unchanged."""
    if what not in CACHED_LISTINGS or CACHED_LISTINGS[what] in sys.modules:
        return _catalogue(what)
    from prune_gym.paths import cache_dir
    from prune_gym.storage import write_atomic

    path = cache_dir() / "listings" / f"{what}-{_installed_code_fingerprint()}.json"
    try:
        cached = json.loads(path.read_text())
        return tuple(cached["headers"]), [tuple(row) for row in cached["rows"]]
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: list afresh
        pass
    headers, rows = _catalogue(what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"headers": headers, "rows": rows}))
    except OSError:  # a read-only cache only costs the next listing its speed
        pass
    return headers, rows


def _list(args: argparse.Namespace) -> int:
    headers, rows = _listing(args.what)
    rows = [headers, *[tuple(cell.replace("``", "") for cell in row) for row in rows]]
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    for row in rows:  # plain aligned columns, one line per entry: nothing wraps when piped to grep or a file
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _add_executor_options(parser: argparse.ArgumentParser, ray_only: bool = False) -> None:
    """--workers, --ray [ADDRESS], --cpus-per-run, --gpus-per-run: where the runs of a command go."""
    parser.add_argument("--workers", type=int, default=None,
                        help="trials at once (default: as many as Ray's resources allow)" if ray_only else
                        "runs at once: processes on this machine (default 1), or with --ray at most this many Ray tasks")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="the Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto; default: a local instance)" if ray_only else
                        "run on Ray: alone, a local instance on this machine; with ADDRESS (HOST:PORT, ray://HOST:PORT, auto), a cluster")
    parser.add_argument("--cpus-per-run", type=float, default=None, help="CPUs (torch threads) each run asks Ray for (default 1)")
    parser.add_argument("--gpus-per-run", type=float, default=None,
                        help="GPUs each run asks Ray for, placed on the cuda device Ray assigns (default 0; 0.5 shares one)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``prune-gym`` (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="prune-gym", description="A reinforcement-learning gym for CNN filter pruning.")
    commands = parser.add_subparsers(dest="command", required=True)

    pretrain = commands.add_parser("pretrain", help="train a task's model and cache its checkpoint")
    pretrain.add_argument("task", help="task name (see `prune-gym list tasks`)")
    pretrain.add_argument("--epochs", type=int, default=None, help="override the task's number of epochs")
    pretrain.add_argument("--retrain", action="store_true", help="train again even if a checkpoint exists")
    pretrain.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    pretrain.add_argument("--quiet", action="store_true", help="no progress bar")
    pretrain.set_defaults(handler=_pretrain)

    checkpoint = commands.add_parser("checkpoint", help="export, import or fingerprint a task's pretrained checkpoint")
    checkpoint.add_argument("action", choices=["export", "import", "sha256"])
    checkpoint.add_argument("task", help="task name")
    checkpoint.add_argument("file", nargs="?", help="the file to write (export) or read (import)")
    checkpoint.set_defaults(handler=_checkpoint)

    benchmark = commands.add_parser("benchmark", help="score an agent on a versioned suite over seeds (resumable)")
    benchmark.add_argument("--agent", required=True, help="agent name (`prune-gym list agents`), or sb3:ALGO / tianshou:ALGO")
    benchmark.add_argument("--suite", required=True, help="suite name (`prune-gym list suites`)")
    benchmark.add_argument("--out", required=True, help="results folder (one per suite, agent and hyper-parameters)")
    benchmark.add_argument("--seeds", nargs="*", default=None, metavar="SEEDS",
                           help="seeds or ranges, e.g. 0-4 or 0 3 7 (default: the suite's)")
    benchmark.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE", help="agent hyper-parameter")
    benchmark.add_argument("--agent-config", default=None, metavar="FILE", help="JSON file of agent hyper-parameters")
    benchmark.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                           help="replace a suite's environment keyword (e.g. criterion=std for a uniform baseline)")
    _add_executor_options(benchmark)
    benchmark.add_argument("--storage", default=None, metavar="PATH",
                           help="where the run folders are written, a path every Ray worker sees (default: --out)")
    benchmark.add_argument("--cache", default=None, metavar="DIR",
                           help="recovered networks and entry references, shareable by benchmarks of one suite "
                                "(default: STORAGE/cache)")
    benchmark.add_argument("--device", default="cpu")
    benchmark.add_argument("--quiet", action="store_true")
    benchmark.set_defaults(handler=_benchmark)

    tune = commands.add_parser("tune", help="tune an agent's hyper-parameters on a suite's entries with Ray Tune (TPE + ASHA), "
                                            "on tuning seeds disjoint from the benchmark's")
    tune.add_argument("--agent", required=True)
    tune.add_argument("--suite", required=True)
    tune.add_argument("--trials", type=int, required=True, help="configurations to try (the same for every agent compared)")
    tune.add_argument("--space", required=True, metavar="YAML",
                      help="search space: NAME: {uniform|loguniform|randint: [LOW, HIGH]} or NAME: {choice: [V1, V2, ...]}")
    tune.add_argument("--tuning-seeds", nargs="*", default=None, metavar="SEEDS",
                      help="seeds or ranges of the tuning searches, disjoint from the suite's (default: 100-101)")
    tune.add_argument("--metric", choices=["normalised", "proxy"], default="normalised",
                      help="best-so-far reward-split score, normalised per entry (default) or raw")
    tune.add_argument("--grace-period", type=int, default=None, metavar="EPISODES",
                      help="episodes before ASHA may stop a trial (default: a quarter of a search)")
    tune.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    tune.add_argument("--out", required=True, help="folder for best_config.json and tuning.json")
    tune.add_argument("--storage", default=None, metavar="PATH",
                      help="where the trials' run folders and Tune's records go, a path every Ray worker sees (default: --out)")
    _add_executor_options(tune, ray_only=True)
    tune.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE", help="replace a suite's environment keyword")
    tune.add_argument("--device", default="cpu")
    tune.add_argument("--quiet", action="store_true")
    tune.set_defaults(handler=_tune)

    fidelity = commands.add_parser("fidelity", help="measure how well the search reward predicts the score after fine-tuning")
    fidelity.add_argument("--suite", required=True)
    fidelity.add_argument("--entry", action="append", default=None, help="entry name (default: every entry of the suite)")
    fidelity.add_argument("--out", required=True, help="folder for fidelity-<entry>.json and the recovery cache")
    fidelity.add_argument("--option", action="append", default=[], metavar="KEY=V1,V2",
                          help="reward-protocol values to compare, e.g. bn_recalibration=0,100 (all combinations are measured)")
    fidelity.add_argument("--random", type=int, default=24, help="budget-feasible random candidates (default 24)")
    fidelity.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="run folders whose best episodes join the candidates")
    fidelity.add_argument("--device", default="cpu")
    fidelity.set_defaults(handler=_fidelity)

    leaderboard = commands.add_parser("leaderboard", help="render benchmark results folders of one suite as a markdown table")
    leaderboard.add_argument("folders", nargs="+", metavar="DIR", help="benchmark results folders, or their results.json files")
    leaderboard.add_argument("--output", default=None, help="write the markdown here (default: print it)")
    leaderboard.add_argument("--plots", default=None, metavar="FOLDER", help="write rliable's figures (PNG and PDF) here")
    leaderboard.add_argument("--fidelity", nargs="*", default=[], metavar="FILE", help="fidelity-*.json files to add as a table")
    leaderboard.set_defaults(handler=_leaderboard)

    search = commands.add_parser("search", help="search a pruned network with an agent; writes a run folder")
    search.add_argument("--task", help=f"task name (`prune-gym list tasks`; default {DEFAULTS['task']})")
    search.add_argument("--env", help=f"environment id (`prune-gym list environments`; default {DEFAULTS['env']})")
    search.add_argument("--agent", help=f"agent name (`prune-gym list agents`), or sb3:ALGO / tianshou:ALGO (default {DEFAULTS['agent']})")
    search.add_argument("--reward", help="reward name (`prune-gym list rewards`) or package.module:function (default: the environment's); "
                                         "its keyword arguments: --env-arg 'reward_kwargs={\"name\": value}'")
    search.add_argument("--macs-budget", type=float, help="fraction of the original MACs to keep (default: the environment's, 0.5)")
    search.add_argument("--episodes", type=int, help=f"episodes to run (default {DEFAULTS['episodes']}); with --resume, "
                                                     "more extends a finished run")
    search.add_argument("--max-evaluations", type=int, metavar="N",
                        help="also stop once N reward evaluations are spent, within an episode too (as the benchmark does)")
    search.add_argument("--seed", type=int, help=f"seed of the agent and the environment (default {DEFAULTS['seed']})")
    search.add_argument("--reward-samples", type=int, help="reward-split images to score on (default: the environment's)")
    search.add_argument("--device", help="torch device (default: the environment's, cpu)")
    search.add_argument("--wandb", choices=WANDB_MODES,
                        help="wandb mode (default: disabled; offline writes a run to sync later with `wandb sync`)")
    search.add_argument("--wandb-project", help=f"wandb project (default: {DEFAULTS['wandb_project']})")
    search.add_argument("--wandb-entity", help="wandb entity (team or user)")
    search.add_argument("--wandb-group", help="wandb group (default: task, env, budget, reward)")
    search.add_argument("--wandb-tags", nargs="*", default=[], metavar="TAG", help="extra wandb tags (agent and seed are added)")
    search.add_argument("--checkpoint-every", type=int, metavar="EPISODES",
                        help=f"save the agent every this many episodes (default: {DEFAULTS['checkpoint_every']})")
    search.add_argument("--run-dir", default=None, help="run folder (default: runs/<task>-<env>-<agent>-s<seed>-<time>)")
    search.add_argument("--resume", metavar="RUN", default=None,
                        help="continue a run folder as it was specified (with --episodes N: extend it to N episodes)")
    search.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE", help="extra environment keyword")
    search.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE", help="extra agent keyword")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    search.add_argument("--seeds", nargs="*", default=None, metavar="SEEDS",
                        help="search once per seed (e.g. 0-4, or 0 3 7), one run folder per seed: --run-dir RUN gives RUN/seed-N")
    _add_executor_options(search)
    search.set_defaults(handler=_search)

    fine_tune = commands.add_parser("fine-tune", aliases=["finetune"],
                                    help="one-step recovery: fine-tune a run's best pruned network, report test score and latency")
    fine_tune.add_argument("run")
    fine_tune.add_argument("--epochs", type=int, default=5)
    fine_tune.add_argument("--device", default="cpu")
    fine_tune.add_argument("--quiet", action="store_true")
    fine_tune.set_defaults(handler=_fine_tune)

    export = commands.add_parser("export", help="write a run's best pruned network (state dict + mask)")
    export.add_argument("run")
    export.add_argument("--output", default=None)
    export.set_defaults(handler=_export)

    plot = commands.add_parser("plot", help="draw runs' learning curves and score-vs-MACs Pareto fronts (PNG and PDF)",
                               description="Runs that differ only in their seed are one group: mean and 95%% CI across seeds.")
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run folders (of one task, environment, MACs budget and reward)")
    plot.add_argument("--output", default=None, metavar="DIR", help="where to write the figures (default: the run folder for one run, "
                                                                     "else ./plots)")
    plot.set_defaults(handler=_plot)

    listing = commands.add_parser("list", help="list registered tasks, environments, models, datasets, rewards, observations, "
                                               "criteria, agents or suites, with one-line descriptions")
    listing.add_argument("what", choices=LISTINGS)
    listing.set_defaults(handler=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prune-gym``: every expected failure prints one line on stderr and returns 2 (130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (PruneGymError, ValueError, TypeError) as error:
        print(f"prune-gym {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a read-only folder, a missing file
        where = f" ({error.filename})" if error.filename else ""
        print(f"prune-gym {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"prune-gym {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
