"""The handlers of the ``prune-gym`` sub-commands: each takes the parsed options and returns the exit code.

Heavy modules (torch, the RL libraries, Ray) are imported inside the handler that needs them, so the command starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys

from prune_gym.cli.options import (
    RESUME_OPTIONS,
    agent_config,
    executor,
    given_options,
    optional_seeds,
    parse_key_values,
    parse_seeds,
    search_spec,
)
from prune_gym.cli.tables import print_summary
from prune_gym.validation import check_int


def pretrain(args: argparse.Namespace) -> int:
    from prune_gym.tasks import get_task
    from prune_gym.tasks.training import load_checkpoint

    if args.epochs is not None:
        check_int("epochs", args.epochs, 1, "a positive number of training epochs")
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


def search(args: argparse.Namespace) -> int:
    from prune_gym.search import INTERRUPTED_EXIT_CODE, resume_search, run_search

    if args.seeds is not None:
        return search_seeds(args)
    if args.ray is not None or args.workers is not None:
        raise ValueError("--ray and --workers run several seeds: add --seeds (e.g. --seeds 0-4)")
    if args.resume:
        given = given_options(args)
        refused = sorted(set(given) - {*RESUME_OPTIONS, "resume", "quiet", "trust_code"})
        if refused:
            flags = ", ".join("--" + name.replace("_", "-") for name in refused)
            raise ValueError(f"--resume continues {args.resume} as it was specified: {flags} "
                             "cannot change (only --episodes, --max-evaluations, --device and --tensorboard can); "
                             "start a new --run-dir instead")
        summary = resume_search(args.resume, progress=not args.quiet, trust_code=args.trust_code,
                                **{name: given[name] for name in RESUME_OPTIONS if name in given})
    else:
        summary = run_search(search_spec(args), run_dir=args.run_dir, progress=not args.quiet)
    print_summary(summary)
    return INTERRUPTED_EXIT_CODE if summary["interrupted"] else 0


def search_seeds(args: argparse.Namespace) -> int:
    """``search --seeds``: one run folder per seed under --run-dir, on the local pool or Ray; finished seeds are skipped."""
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from prune_gym.benchmark.executors import SearchJob, run_search_job
    from prune_gym.progress import progress_bar
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
    bar = progress_bar(len(jobs), f"{spec.agent} on {spec.env} (seeds)", "run", enabled=not args.quiet)
    for job, result in executor(args).run(run_search_job, jobs):
        bar.set_postfix(last=f"seed {job.spec.seed}: {result['status']}")
        bar.update()
        best = result.get("best")
        if result["status"] != "ok":
            failed.append(f"seed {job.spec.seed}: {result['error']}")
        elif best is not None:
            table.add_row(str(job.spec.seed), f"{best['score']:.4f}", f"{best['macs_ratio']:.3f}",
                          "met" if best["budget_met"] else "NOT met", str(result["episodes_done"]), result["run_dir"])
    bar.close()
    Console().print(table)
    for failure in failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 2 if failed else 0


def benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from prune_gym.benchmark.runner import RESULTS, run_benchmark

    storage = Path(args.storage or args.out).resolve()
    results = run_benchmark(args.agent, args.suite, storage, seeds=optional_seeds(args.seeds),
                            agent_kwargs={**agent_config(args.agent_config), **parse_key_values(args.agent_arg)},
                            env_overrides=parse_key_values(args.env_arg), executor=executor(args),
                            device=args.device, progress=not args.quiet, cache=args.cache, entries=args.entries,
                            zero_shot=args.zero_shot, trained=args.trained)
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


def tune(args: argparse.Namespace) -> int:
    from prune_gym.benchmark.tuning import BEST_CONFIG, METRIC, load_space, tune_agent

    report = tune_agent(args.agent, args.suite, load_space(args.space), args.trials, args.out,
                        tuning_seeds=optional_seeds(args.tuning_seeds),
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


def leaderboard(args: argparse.Namespace) -> int:
    from prune_gym.benchmark.leaderboard import (
        benchmark_results_paths,
        improvements,
        load_results,
        plot_leaderboard,
        render,
        render_entries,
    )

    folders, skipped = benchmark_results_paths(args.folders)
    for note in skipped:  # `prune-gym leaderboard results/*` also matches the benchmarks' --cache folder
        print(f"prune-gym leaderboard: skipping {note}", file=sys.stderr)
    results = load_results(folders)
    fidelity = []
    for path in args.fidelity:
        try:
            fidelity.append(json.loads(open(path).read()))
        except (OSError, ValueError) as error:
            raise ValueError(f"--fidelity {path}: not a readable fidelity file ({error})") from None
    compared = improvements(results, progress=True)
    text = render(results, compared) + "\nPer entry: test score after recovery\n\n" + render_entries(results)
    if fidelity:
        from prune_gym.benchmark.fidelity import render_fidelity  # imports torch: only when asked

        text += "\nProxy fidelity: how well each reward protocol ranks candidates as the recovered test score does\n\n"
        text += render_fidelity(fidelity)
    if args.plots:
        for path in plot_leaderboard(results, args.plots, compared):
            print(path)
    if args.output:
        from prune_gym.storage import write_atomic

        write_atomic(args.output, text)
        print(f"leaderboard written to {args.output}")
    else:
        print(text)
    return 0


def fidelity(args: argparse.Namespace) -> int:
    from prune_gym.benchmark import get_suite
    from prune_gym.benchmark.fidelity import measure_fidelity, render_fidelity

    options = {}
    for pair in args.option:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values:
            raise ValueError(f"--option {pair!r}: expected KEY=V1,V2 (e.g. bn_recalibration=0,100)")
        options[key] = [parse_key_values([f"v={value}"])["v"] for value in values.split(",")]
    entries = args.entry or [entry.name for entry in get_suite(args.suite).entries]
    results = [measure_fidelity(args.suite, entry, args.out, options, args.random, tuple(args.runs), args.device, progress=True)
               for entry in entries]
    print(render_fidelity(results))
    return 0


def checkpoint(args: argparse.Namespace) -> int:
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


def recover(args: argparse.Namespace) -> int:
    from prune_gym.recovery import recover_run

    report = recover_run(args.run, epochs=args.epochs, device=args.device, progress=not args.quiet, trust_code=args.trust_code)
    for key, value in report.items():
        print(f"{key:>28}: {value}")
    return 0


def export(args: argparse.Namespace) -> int:
    from prune_gym.recovery import export_run

    written = export_run(args.run, args.output, trust_code=args.trust_code)
    print(f"pruned network written to {written} (load it with prune_gym.recovery.load_pruned)")
    return 0


def plot(args: argparse.Namespace) -> int:
    from prune_gym.plots import plot_runs

    output = args.output or (args.runs[0] if len(args.runs) == 1 else "plots")
    for path in plot_runs(args.runs, output):
        print(path)
    return 0
