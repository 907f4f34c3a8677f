"""Regenerate LEADERBOARD.md: every built-in agent that fits the suite, the same protocol, rliable intervals, proxy fidelity.

Usage (from the repository root)::

    .venv/bin/python benchmarks/leaderboard.py [--suite cpu-v0] [--out runs/leaderboard] [--workers 2] [--seeds 0 1 2 3 4]

Runs ``prune-gym benchmark`` for each agent below (a re-run skips what is
already scored), measures the proxy fidelity of every entry's reward protocol
(``prune-gym fidelity``, with the best episodes of the DDPG runs among the
candidates), and writes LEADERBOARD.md with the table, the fidelity table, the
figures (``leaderboard/*.png|pdf``), the command, the machine, the date and the
wall time.

What LEADERBOARD.md is rendered from is published beside it, in the repository,
so that it re-renders on any machine and a submission runs on the same networks:
``leaderboard/checkpoints/<task>.pt`` (installed where the cache has none; a
different cached checkpoint is refused), ``leaderboard/<suite>/results/<agent>.json``
(each agent's ``results.json``) and ``leaderboard/<suite>/fidelity/*.json``.
All agents and the fidelity study share one recovery cache (``<out>/cache``): each
entry's references, and a network several agents or seeds found, are recovered once.
A regeneration measures the fidelity of an entry only where none is published on
the same checkpoint (``--update-fidelity`` always measures it).
``--render-only`` runs nothing and renders from the run folders in ``--out``
where they exist, else from the published files; ``--update-fidelity`` measures
the fidelity of ``--fidelity-entries`` (or reads the published files with
``--render-only``) and rewrites only the fidelity section of ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prune_gym.benchmark import get_suite  # noqa: E402
from prune_gym.benchmark.aggregate import MANIFEST, collect  # noqa: E402
from prune_gym.benchmark.executors import LocalExecutor  # noqa: E402
from prune_gym.benchmark.fidelity import measure_fidelity, render_fidelity, render_headroom  # noqa: E402
from prune_gym.benchmark.leaderboard import display_name, improvements, plot_leaderboard, render, render_entries  # noqa: E402
from prune_gym.benchmark.runner import RESULTS, machine, run_benchmark  # noqa: E402
from prune_gym.benchmark.suites import Suite  # noqa: E402
from prune_gym.storage import file_sha256, write_atomic  # noqa: E402
from prune_gym.tasks import get_task  # noqa: E402
from prune_gym.tasks.checkpoints import export_checkpoint, import_checkpoint  # noqa: E402

FIDELITY_HEADING = "## Proxy fidelity"

AGENTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [  # (agent, agent kwargs, env overrides)
    ("uniform", {}, {"criterion": "l1"}),
    ("uniform", {}, {"criterion": "std"}),
    ("uniform", {}, {"criterion": "fpgm"}),
    ("uniform", {}, {"criterion": "cluster"}),
    ("uniform", {}, {"criterion": "random"}),
    ("global", {}, {}),
    ("random-search", {}, {}),
    ("cma-es", {}, {}),
    ("tpe", {}, {}),
    ("ddpg", {"warmup_episodes": 30}, {}),  # AMC's 100 warm-up episodes would fill the whole budget of 100
    # it learns each layer from its own step's (dense) reward, which evaluates within episodes: within the 100 evaluations,
    # 3 x 2 trials per layer learn 4 of ResNet-20's 12 layers, 2 x 1 all 12 (83 evaluations; benchmarks/try_and_learn_budget.py);
    # no fine-tuning inside the search: the suite's recovery is every agent's
    ("try-and-learn", {"trials_per_update": 2, "max_updates_per_layer": 1, "recovery_steps": 0}, {"reward": "try-and-learn"}),
    ("sb3:PPO", {}, {}),
    ("sb3:SAC", {}, {}),
    ("tianshou:SAC", {}, {}),
]


BLACK_BOX = ("random-search", "cma-es", "tpe")
FIXED = ("uniform", "global")


def rl_versus_black_box(results: list[dict[str, Any]]) -> str:
    """One sentence: the best RL agent against the best black-box optimiser, by IQM and whether their intervals overlap."""
    def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        rows = [r for r in rows if "iqm" in r["aggregates"]]
        return max(rows, key=lambda r: r["aggregates"]["iqm"]) if rows else None

    rl = best([r for r in results if r["agent"] not in BLACK_BOX + FIXED])
    black_box = best([r for r in results if r["agent"] in BLACK_BOX])
    if rl is None or black_box is None:
        return ""
    (rl_low, rl_high), (bb_low, bb_high) = rl["aggregates"]["iqm_ci"], black_box["aggregates"]["iqm_ci"]
    verdict = ("beats" if rl_low > bb_high else "does not beat" if rl_high < bb_low else
               "is not distinguishable from (the 95% intervals overlap)")
    return (f"**RL against black-box optimisers:** the best RL agent, `{display_name(rl)}` (IQM {rl['aggregates']['iqm']:.3f} "
            f"[{rl_low:.3f}, {rl_high:.3f}]), {verdict} the best black-box optimiser, `{display_name(black_box)}` (IQM "
            f"{black_box['aggregates']['iqm']:.3f} [{bb_low:.3f}, {bb_high:.3f}]), at the same number of reward evaluations.")


def pending(results: list[dict[str, Any]]) -> str:
    """A line naming the rows of AGENTS that have no results yet (a partial regeneration), with the command that adds them."""
    done = {folder_name(result["agent"], result.get("env_overrides", {})) for result in results}
    missing = [name for name in (folder_name(agent, overrides) for agent, _, overrides in AGENTS) if name not in done]
    if not missing:
        return ""
    return (f"**Not yet measured on these checkpoints:** {', '.join(f'`{name}`' for name in missing)}. Add them with "
            f"`.venv/bin/python benchmarks/leaderboard.py --agents {' '.join(missing)} --out DIR` (then `--render-only`).")


def folder_name(agent: str, env_overrides: dict[str, Any]) -> str:
    return "-".join([agent.replace(":", "-"), *(f"{k}-{v}" for k, v in sorted(env_overrides.items()))])


def pin_checkpoints(suite: Suite, published_root: Path) -> None:
    """Every task of the suite on its published checkpoint (installed where the cache has none; the cached one published
    where none is yet). Exits with one line when the cache holds another checkpoint."""
    folder = published_root / "checkpoints"
    for task in sorted({entry.task for entry in suite.entries}):
        published, cached = folder / f"{task}.pt", get_task(task).checkpoint_path()
        if published.exists() and not cached.exists():
            import_checkpoint(task, published)
        elif published.exists() and file_sha256(cached) != file_sha256(published):
            sys.exit(f"error: the cached checkpoint of {task} ({cached}) is not the leaderboard's ({published}): run "
                     f"`prune-gym checkpoint import {task} {published}`, or delete {published} and the published results "
                     "to start a new leaderboard")
        elif not published.exists():
            if not cached.exists():
                get_task(task).pretrain()
            folder.mkdir(parents=True, exist_ok=True)
            export_checkpoint(task, published)


def publish(published_root: Path, result: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """Write ``result`` to ``<published_root>/<suite>/<kind>/<name>.json`` (committed beside LEADERBOARD.md); returns it."""
    folder = published_root / result["suite"] / kind
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / f"{name}.json", json.dumps(result, indent=2))
    return result


def published(published_root: Path, suite: Suite, kind: str, name: str) -> dict[str, Any] | None:
    path = published_root / suite.name / kind / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fidelity_section(fidelity: list[dict[str, Any]], suite: Suite) -> str:
    """The fidelity heading, its explanation, the table with each entry's checkpoint, and the commands that measured it."""
    measured = sorted({(f["command"], f["machine"]["cpu"], f["machine"]["cores"], f["machine"]["torch"], f["machine"]["date"])
                       for f in fidelity})
    return "\n".join([
        FIDELITY_HEADING, "",
        "How well each entry's reward protocol ranks candidate networks as their test score after the suite's recovery does "
        "(Kendall tau, Spearman rho, 95% bootstrap CIs; the top quarter by proxy is where agents are actually compared). "
        "Candidates: uniform pruning under every criterion, budget-feasible random rate vectors and the three best episodes "
        "of each DDPG run of the entry.", "",
        render_fidelity(fidelity), "",
        "Headroom: can the entry separate agents at all? The same candidates after recovery: uniform pruning against the "
        "best candidate of any origin (chosen on these test scores, so flattered by selection), beside the test split's "
        "standard error.", "",
        render_headroom(fidelity, suite.baseline_criterion), "",
        *(f"Measured by `{command}` ({cpu}, {cores} cores, torch {torch}, {date})." for command, cpu, cores, torch, date in measured),
        "The JSON of each entry is in `leaderboard/<suite>/fidelity/`.", "",
    ])


def agent_results(args: argparse.Namespace, suite: Suite, out: Path) -> list[dict[str, Any]]:
    """Each selected agent's results: benchmarked now (and published), or with ``--render-only`` collected from its run
    folder where there is one (and published), else the published file."""
    results = []
    for agent, agent_kwargs, env_overrides in AGENTS:
        name = folder_name(agent, env_overrides)
        folder = out / name
        if args.agents is not None and name not in args.agents:
            continue
        if args.render_only and not (folder / MANIFEST).exists():
            results += [found] if (found := published(Path(args.publish), suite, "results", name)) else []
            continue
        if args.render_only:
            result = collect(folder)
            if not result["runs"] and not result["failed"]:  # started, nothing scored yet: still to run
                results += [found] if (found := published(Path(args.publish), suite, "results", name)) else []
                continue
            result["machine"] = machine()
            tasks = sorted({e.task for e in suite.entries})
            result["checkpoints"] = {task: file_sha256(get_task(task).checkpoint_path()) for task in tasks}
            write_atomic(folder / RESULTS, json.dumps(result, indent=2))
        else:
            try:
                result = run_benchmark(agent, suite.name, folder, seeds=args.seeds, agent_kwargs=agent_kwargs,
                                       env_overrides=env_overrides, executor=LocalExecutor(args.workers), cache=out / "cache")
            except ValueError as error:  # the agent fits no entry of the suite
                print(f"{agent}: {error}", file=sys.stderr)
                continue
        results.append(publish(Path(args.publish), result, "results", name))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="cpu-v0")
    parser.add_argument("--out", default="runs/leaderboard")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--agents", nargs="*", default=None,
                        help="run only these rows of AGENTS (folder names, e.g. uniform-criterion-l1 ddpg); default all")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: render the runs scored so far in each agent's folder (incomplete agents show fewer runs)")
    parser.add_argument("--fidelity-random", type=int, default=16, help="random candidates per entry in the fidelity study")
    parser.add_argument("--fidelity-entries", nargs="*", default=None, help="entries whose proxy fidelity is measured; default all")
    parser.add_argument("--update-fidelity", action="store_true",
                        help="benchmark no agent: measure (with --render-only: read the published) fidelity and rewrite only "
                             "the fidelity section of --output")
    parser.add_argument("--output", default=str(ROOT / "LEADERBOARD.md"))
    parser.add_argument("--publish", default=str(ROOT / "leaderboard"),
                        help="where the checkpoints, results and fidelity files it is rendered from are published")
    args = parser.parse_args()
    suite = get_suite(args.suite)
    out = Path(args.out)
    started = time.perf_counter()
    unknown = set(args.agents or ()) - {folder_name(agent, overrides) for agent, _, overrides in AGENTS}
    if unknown:
        parser.error(f"unknown --agents {sorted(unknown)}: choose from {[folder_name(a, o) for a, _, o in AGENTS]}")
    host = machine()
    command = " ".join([".venv/bin/python", "benchmarks/leaderboard.py", *sys.argv[1:]])
    if not args.render_only:
        pin_checkpoints(suite, Path(args.publish))
    results = [] if args.update_fidelity else agent_results(args, suite, out)
    fidelity = []
    for entry in suite.entries:
        if args.fidelity_entries is not None and entry.name not in args.fidelity_entries:
            continue
        found = published(Path(args.publish), suite, "fidelity", entry.slug)
        if args.render_only:
            fidelity += [found] if found else []
            continue
        if found and not args.update_fidelity and found["checkpoint"] == file_sha256(get_task(entry.task).checkpoint_path()):
            print(f"{entry.name}: fidelity already published on this checkpoint (delete the file or use "
                  "--update-fidelity to measure it again)", file=sys.stderr)
            fidelity.append(found)
            continue
        runs = sorted((out / "ddpg").glob(f"{entry.slug}/seed-*"))
        measured = measure_fidelity(suite.name, entry.name, out / "fidelity", random_count=args.fidelity_random,
                                    run_folders=tuple(runs), cache=out / "cache", progress=True)
        fidelity.append(publish(Path(args.publish), {**measured, "command": command, "machine": host}, "fidelity", entry.slug))
    if args.update_fidelity:
        text = Path(args.output).read_text() if Path(args.output).exists() else ""
        if FIDELITY_HEADING not in text or "\n## " not in text[text.index(FIDELITY_HEADING) + 1:]:
            sys.exit(f"error: {args.output} has no '{FIDELITY_HEADING}' section followed by another: render the whole "
                     "leaderboard first (leave out --update-fidelity)")
        start = text.index(FIDELITY_HEADING)
        end = text.index("\n## ", start + len(FIDELITY_HEADING))
        others = sorted({f"`{f['entry']}` {f['checkpoint'][:16]}" for f in fidelity if f["checkpoint"][:16] not in text[:start]
                         + text[end:]})
        note = (f"\nThese fidelity rows were measured on other checkpoints than the agents' table above ({', '.join(others)}; "
                "the table's are listed under *How this was made*).\n" if others else "")
        text = text[:start] + fidelity_section(fidelity, suite) + note + text[end:]
        write_atomic(args.output, text)
        print(text)
        return
    figures = Path(args.output).parent / "leaderboard"
    compared = improvements(results, progress=True)
    plot_leaderboard(results, figures, compared)
    hours = (time.perf_counter() - started) / 3600
    run_hours = sum(result["aggregates"].get("benchmark_seconds", 0.0) for result in results) / 3600
    text = "\n".join([
        "# Leaderboard", "",
        f"Suite `{suite.name}`: {suite.description}. Every agent gets the same number of reward evaluations per entry "
        f"({', '.join(f'{e.name}: {e.episodes}' for e in suite.entries)}), seeds {list(args.seeds or suite.seeds)}; the best "
        f"budget-meeting network of each search is fine-tuned {suite.recovery.steps} batches (seeds {list(suite.recovery.seeds)}) "
        "and scored on the test split (10,000 images). Scores are normalised per entry: 0 = uniform L1 pruning at the same "
        "budget after the same fine-tune, 1 = the unpruned network. IQM, mean and optimality gap with stratified-bootstrap 95% "
        "confidence intervals (rliable), over the entries each agent fits (`entries`: agents that act only in LayerRate-v0 "
        "skip the FilterSelect-v0 entry; the per-entry table compares like with like).", "",
        render(results, compared), "",
        pending(results), "",
        rl_versus_black_box(results), "",
        "## Per entry", "",
        "Test score after recovery (the task's metric): mean +- standard deviation over seeds, with the test split's "
        "standard error. An entry *separates* agents when the best agent and uniform pruning differ by more than seed "
        "spread plus standard error, either way (\"uniform ahead\": no agent reaches the best uniform row).", "",
        render_entries(results), "",
        "![interval estimates](leaderboard/interval_estimates.png)", "",
        "![sample efficiency](leaderboard/sample_efficiency.png)", "",
        "![probability of improvement](leaderboard/probability_of_improvement.png)", "",
        fidelity_section(fidelity, suite),
        "## How this was made", "",
        f"`{command}` on {host['cpu']} ({host['cores']} cores, torch {host['torch']}, {args.workers} worker(s)), "
        f"{host['date']}: {hours:.2f} hours for this invocation (runs already scored in `{out}` are skipped). The "
        f"{sum(len(r['runs']) for r in results)} runs took {run_hours:.2f} hours of run time in all (search, recovery and "
        "scoring, one torch thread each; summed from their `benchmark_seconds`)."
        + (" Rendered with `--render-only` from the runs scored so far (the run folders where they exist, else the published "
           "results): an agent with fewer than "
           f"{len(list(args.seeds or suite.seeds))} runs per entry it fits is incomplete." if args.render_only else ""), "",
        f"Regenerate it all: `.venv/bin/python benchmarks/leaderboard.py --suite {suite.name} --out DIR` (a re-run skips "
        "the runs already scored in DIR).", "",
        "Checkpoints (SHA-256): " + ", ".join(f"`{task}` {digest[:16]}" for task, digest in
                                              sorted({t: d for r in results for t, d in r.get("checkpoints", {}).items()}.items())),
        "", "Submit an agent: install its package (a `prune_gym.agents` entry point), run "
        f"`prune-gym benchmark --agent NAME --suite {suite.name} --out DIR` on the same checkpoints "
        "(`prune-gym checkpoint import TASK leaderboard/checkpoints/TASK.pt` for each task), then "
        f"`prune-gym leaderboard DIR leaderboard/{suite.name}/results/*.json` and open a pull request with DIR/results.json.", "",
    ])
    write_atomic(args.output, text)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "leaderboard.json", json.dumps({"hours": hours, "command": command, "machine": host}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
