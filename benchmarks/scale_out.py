"""Scale-out on this machine: the quick suite for one agent and some seeds on 1 and 2 local workers and on local Ray.

Usage (from the repository root)::

    .venv/bin/python benchmarks/scale_out.py [--agent ddpg] [--seeds 0 1] [--out /tmp/scale_out]
        [--json benchmarks/results/scale_out-cpu.json]

Each back-end runs ``run_benchmark(agent, "quick-v0", seeds=[0, 1])`` into a
fresh folder (so each measures its own references and recoveries), and the
script checks that every back-end wrote the same ``episodes.csv`` rows (wall
time aside) and the same scores as the first. Prints a Markdown table (wall
seconds, speed-up over one worker, identical or not) and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prune_gym.benchmark.executors import Executor, LocalExecutor  # noqa: E402
from prune_gym.benchmark.runner import machine, run_benchmark  # noqa: E402
from prune_gym.runs import RunFolder  # noqa: E402
from prune_gym.storage import write_atomic  # noqa: E402


def episode_rows(out: Path) -> dict[str, list[dict[str, str]]]:
    """Every run folder's episodes.csv rows, without the wall time."""
    return {str(run.relative_to(out)): [{k: v for k, v in record.to_row().items() if k != "seconds"}
                                        for record in RunFolder(run).episodes()[0]]
            for run in sorted(out.glob("*/seed-*"))}


def scores(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in run.items() if not k.endswith("seconds")} for run in results["runs"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="ddpg")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="/tmp/prune_gym-scale_out")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "scale_out-cpu.json"))
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    def ray_executor() -> Executor:
        from prune_gym.benchmark.ray_executor import RayExecutor

        return RayExecutor("local", cpus_per_run=1)

    back_ends = [("local pool, --workers 1", lambda: LocalExecutor(1)), ("local pool, --workers 2", lambda: LocalExecutor(2)),
                 ("local Ray (2 CPUs), --ray --cpus-per-run 1", ray_executor)]
    rows: list[dict[str, Any]] = []
    first: tuple[Any, Any] | None = None
    for name, make in back_ends:
        folder = out / str(len(rows))
        started = time.perf_counter()
        results = run_benchmark(args.agent, "quick-v0", folder, seeds=args.seeds, executor=make(), progress=False)
        seconds = time.perf_counter() - started  # Ray's start-up included
        outcome = (episode_rows(folder), scores(results))
        first = first or outcome
        rows.append({"back_end": name, "seconds": seconds, "identical": outcome == first, "failed": len(results["failed"])})
    host = machine()
    table = ["| back-end | wall s | speed-up | episodes.csv and scores identical to 1 worker |", "|---|---:|---:|---|",
             *(f"| {r['back_end']} | {r['seconds']:.1f} | {rows[0]['seconds'] / r['seconds']:.2f}x | "
               f"{'yes' if r['identical'] and not r['failed'] else 'NO'} |" for r in rows)]
    print(f"{host['cpu']}, {host['cores']} cores, torch {host['torch']}, {host['date']}; agent {args.agent}, quick-v0, seeds {args.seeds}")
    print("\n".join(table))
    write_atomic(args.json, json.dumps({"machine": host, "agent": args.agent, "seeds": args.seeds, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
