"""What a leaderboard costs: one agent x a suite x its seeds, timed, against the targets (issue: cpu-v1's cost).

Targets on 2 idle CPU cores: one agent x cpu-v1 x 5 seeds in at most 15 minutes; the whole cpu-v1 leaderboard (every
built-in agent of benchmarks/leaderboard.py) in at most 2 hours.

1. ``--agent`` (default ``ddpg``, the slowest built-in agent of cpu-v0 but for the SB3 ones) is benchmarked on
   ``--suite`` with all its seeds in a fresh folder and a fresh recovery cache (nothing reused), timed end to end;
   the runs' own records split the time into search and recovery + scoring;
2. per published row of the leaderboard and in all, the run time its results record (``benchmark_seconds`` of every
   run in ``leaderboard/<suite>/results/*.json``: search, recovery and scoring, what a one-worker regeneration pays),
   and the wall time of ``--workers`` workers of one thread each on as many cores (run time / workers, an estimate).

Prints each measurement beside its target and their ratio (<= 1 meets it).

    .venv/bin/python benchmarks/cost.py                      # ddpg x cpu-v1 x 5 seeds, then the published leaderboard
    .venv/bin/python benchmarks/cost.py --agent random-search --seeds 0 1
    .venv/bin/python benchmarks/cost.py --leaderboard-only   # only the published leaderboard's total
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prune_gym.benchmark import get_suite  # noqa: E402
from prune_gym.benchmark.runner import machine, run_benchmark  # noqa: E402

AGENT_TARGET_MINUTES = 15.0
LEADERBOARD_TARGET_HOURS = 2.0


def time_agent(agent: str, suite: str, seeds: list[int] | None) -> dict[str, float]:
    """Benchmark ``agent`` in a fresh folder and cache; wall minutes, and the runs' search and total minutes."""
    with tempfile.TemporaryDirectory(prefix="prune-gym-cost-") as folder:
        started = time.perf_counter()
        results = run_benchmark(agent, suite, Path(folder) / agent, seeds=seeds, progress=True)
        wall = time.perf_counter() - started
    runs = results["runs"]
    if results["failed"]:
        sys.exit(f"error: {len(results['failed'])} run(s) failed, so the timing is not the benchmark's: "
                 f"{results['failed'][0].get('error')}")
    return {"runs": len(runs), "wall_minutes": wall / 60,
            "search_minutes": sum(run["search_seconds"] for run in runs) / 60,
            "run_minutes": sum(run.get("benchmark_seconds", 0.0) for run in runs) / 60}


def leaderboard_minutes(suite: str, published: Path) -> dict[str, tuple[int, float]]:
    """Per published row of ``suite``'s leaderboard: its runs and the minutes of run time they record."""
    rows = {}
    for path in sorted((published / suite / "results").glob("*.json")):
        runs = json.loads(path.read_text())["runs"]
        rows[path.stem] = (len(runs), sum(run.get("benchmark_seconds", 0.0) for run in runs) / 60)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="cpu-v1")
    parser.add_argument("--agent", default="ddpg")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="default: the suite's seeds")
    parser.add_argument("--publish", type=Path, default=ROOT / "leaderboard", help="where the leaderboard's results are published")
    parser.add_argument("--workers", type=int, default=2, help="workers of the leaderboard's wall-time estimate (run time / workers)")
    parser.add_argument("--leaderboard-only", action="store_true", help="time no agent, only sum the published leaderboard")
    args = parser.parse_args()
    suite = get_suite(args.suite)
    host = machine()
    print(f"{host['cpu']}, {host['cores']} cores, torch {host['torch']}, {host['torch_threads']} threads, {host['date']}")
    if not args.leaderboard_only:
        timing = time_agent(args.agent, suite.name, args.seeds)
        seeds = len(args.seeds) if args.seeds is not None else len(suite.seeds)
        print(f"{args.agent} x {suite.name} x {seeds} seeds: {timing['wall_minutes']:.1f} min wall ({timing['runs']} runs: "
              f"search {timing['search_minutes']:.1f} min, search + recovery + scoring {timing['run_minutes']:.1f} min); "
              f"target {AGENT_TARGET_MINUTES:g} min, ratio {timing['wall_minutes'] / AGENT_TARGET_MINUTES:.2f}")
    rows = leaderboard_minutes(suite.name, args.publish)
    if not rows:
        print(f"{suite.name} leaderboard: nothing published in {args.publish / suite.name / 'results'} yet")
        return
    for name, (runs, minutes) in rows.items():
        print(f"  {name}: {runs} runs, {minutes:.1f} min of run time; target {AGENT_TARGET_MINUTES:g} min, "
              f"ratio {minutes / AGENT_TARGET_MINUTES:.2f}")
    hours = sum(minutes for _, minutes in rows.values()) / 60
    print(f"{suite.name} leaderboard ({len(rows)} rows published, {sum(runs for runs, _ in rows.values())} runs): "
          f"{hours:.2f} h of run time (one worker); with {args.workers} workers of one thread each, as the leaderboard "
          f"script runs them: about {hours / args.workers:.2f} h of wall time; target {LEADERBOARD_TARGET_HOURS:g} h, "
          f"ratio {hours / args.workers / LEADERBOARD_TARGET_HOURS:.2f}")


if __name__ == "__main__":
    main()
