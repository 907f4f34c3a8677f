"""Headroom study: where can a search beat uniform pruning by more than the noise? (issue: cpu-v1's entries)

For each candidate entry (task x environment x budget kind and level x recovery protocol):

1. a strong search on the entry's proxy reward (CMA-ES by default, ``--evaluations`` reward evaluations, several
   seeds), in resumable run folders;
2. candidates: uniform pruning under every registered criterion, ``--random`` budget-feasible random rate vectors,
   and the ``--top`` best budget-meeting episodes of each search run (by proxy score, the agent's own selection);
3. every candidate recovered by the candidate's :class:`~prune_gym.benchmark.Recovery` (each recovery seed) and
   scored on the test split (cached on disk: a killed study resumes where it stopped);
4. headroom: the search's pick (its best episode by proxy, as an agent would report it) minus the best uniform
   criterion, in units of the noise: the standard error of a difference of two test scores (unpaired, conservative)
   combined with the recovery-seed spread of both; plus the proxy's rank agreement (top-quarter Kendall tau with
   its bootstrap interval, ``prune_gym.benchmark.fidelity.rank_agreement``).

One JSON file per candidate entry in ``--out`` (with the date it was measured and the machine), and
``--render`` prints the markdown table of every measured file (benchmarks/README.md holds it).

    python benchmarks/headroom.py --out benchmarks/results/headroom                       # every candidate, resumable
    python benchmarks/headroom.py --out benchmarks/results/headroom --only cnn5-digits-0.5
    python benchmarks/headroom.py --out benchmarks/results/headroom --render      # the table of what is measured
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from prune_gym.benchmark import Entry, Recovery
from prune_gym.benchmark.fidelity import candidates, protocol_agreement, rank_agreement, render_fidelity
from prune_gym.benchmark.runner import machine
from prune_gym.benchmark.scoring import RecoveryCache, RecoveryScorer, protocol_spec, standard_error
from prune_gym.progress import progress_bar
from prune_gym.runs import RunFolder
from prune_gym.search import run_search
from prune_gym.storage import write_atomic
from prune_gym.tasks.checkpoints import task_checkpoint_sha256

PROXY = {"reward_samples": 500, "bn_recalibration": 100}
PROTOCOLS = {"reward_samples": [500, 1000, 2000]}
"""Reward protocols whose rank agreement is measured on every candidate entry's candidates (the search used PROXY)."""
FASHION = "resnet20-slim-fashion-mnist"


@dataclass(frozen=True)
class Candidate:
    """One candidate entry of the study: an entry and the recovery its candidates get before the test split."""

    name: str
    entry: Entry
    recovery: Recovery
    notes: str = ""
    search_agent: str = "cma-es"
    search_kwargs: dict[str, Any] = field(default_factory=dict)


def _entry(task: str, macs: float, params: float = 1.0, **env_kwargs: Any) -> Entry:
    return Entry(task, "LayerRate-v0", macs, episodes=100, env_kwargs={**PROXY, **env_kwargs}, params_budget=params)


PLAIN = "plain20-slim-fashion-mnist"
ONE_SHOT = Recovery(steps=0, seeds=(0,))  # BatchNorm recalibration only: deterministic, one seed is all there is

CANDIDATES = [
    Candidate("cnn5-digits-0.5", Entry("cnn5-digits", "LayerRate-v0", 0.5, 40, {"reward_samples": 300, "bn_recalibration": 100}),
              Recovery(steps=20, seeds=(0, 1)), "quick-v1's entry: 360 test images"),
    *[Candidate(f"{FASHION}-{macs:g}-r0", _entry(FASHION, macs), ONE_SHOT, "one-shot track") for macs in (0.2, 0.3, 0.5)],
    Candidate(f"{FASHION}-params0.3-r0", _entry(FASHION, 1.0, params=0.3), ONE_SHOT, "one-shot, parameter budget"),
    *[Candidate(f"{PLAIN}-{macs:g}-r0", _entry(PLAIN, macs), ONE_SHOT, "one-shot, plain (VGG-style) network")
      for macs in (0.3, 0.5)],
    *[Candidate(f"{FASHION}-{macs:g}-r100", _entry(FASHION, macs), Recovery(steps=100, seeds=(0, 1)), "residual, cpu-v0 recovery")
      for macs in (0.1, 0.2, 0.3)],
    Candidate(f"{FASHION}-0.2-r500", _entry(FASHION, 0.2), Recovery(steps=500, seeds=(0, 1)), "long recovery"),
    Candidate(f"{FASHION}-params0.3-r100", _entry(FASHION, 1.0, params=0.3), Recovery(steps=100, seeds=(0, 1)),
              "parameter budget (AMC's model-size mode)"),
    Candidate(f"{PLAIN}-0.2-r100", _entry(PLAIN, 0.2), Recovery(steps=100, seeds=(0, 1)), "plain (VGG-style) network"),
]
"""The candidate entries, cheapest first."""


def _search_runs(candidate: Candidate, out: Path, evaluations: int, seeds: list[int]) -> list[Path]:
    folders = []
    for seed in seeds:
        spec = candidate.entry.run_spec(candidate.search_agent, candidate.search_kwargs, seed=seed)
        spec = spec.replace(episodes=evaluations, max_evaluations=evaluations)
        folder = out / "search" / candidate.entry.slug / f"{candidate.search_agent}-s{seed}"  # shared by recovery protocols
        run_search(spec, run_dir=folder, progress=False)  # resumes a killed run, returns a finished one untouched
        folders.append(folder)
    return folders


def _pick(folder: Path, widths: list[int]) -> str:
    """The origin label fidelity.candidates gives a run's best budget-meeting episode by proxy score."""
    records, _ = RunFolder(folder).episodes(widths)
    best = max((r for r in records if r.budget_met), key=lambda r: r.score)
    return f"{folder} episode {best.episode}"


def noise_unit(a: list[float], b: list[float], test_samples: int) -> float:
    """Standard deviation of the difference of two recovered scores (means over recovery seeds): the test split's
    sampling error of each (unpaired, so conservative) and the spread over recovery seeds of each."""
    variance = 0.0
    for scores in (a, b):
        mean = float(np.mean(scores))
        variance += standard_error(mean, test_samples) ** 2
        if len(scores) > 1:
            variance += float(np.var(scores, ddof=1)) / len(scores)
    return math.sqrt(variance)


def measure(candidate: Candidate, out: Path, evaluations: int, seeds: list[int], random_count: int, top: int) -> dict[str, Any]:
    """Search, recover and summarise one candidate entry; writes ``<out>/<name>.json``."""
    started = time.time()
    folders = _search_runs(candidate, out, evaluations, seeds)
    pool = candidates(candidate.entry, random_count, folders, per_run=top)
    scorer = RecoveryScorer(candidate.entry.task, candidate.recovery, RecoveryCache(out / "cache"))
    env: Any = protocol_spec(candidate.entry).make_env().unwrapped
    bn = int(candidate.entry.env_kwargs.get("bn_recalibration", 0))
    bar = progress_bar(len(pool), f"{candidate.name}: recovering candidates", "candidate")
    rows = []
    for origin, keep in pool:
        recovered = scorer.score(keep, bn_recalibration=bn)
        macs, params = env.network.macs_params(keep)
        rows.append({"origin": origin, "proxy": env.evaluator.score(keep), "test_scores": list(recovered.test_scores),
                     "test_score": recovered.test_score, "macs_ratio": macs / env.network.original_macs,
                     "params_ratio": params / env.network.original_params})
        bar.update()
    bar.close()
    test_samples = len(scorer.splits.test_y)
    by_origin = {row["origin"]: row for row in rows}
    uniform = max((row for row in rows if row["origin"].startswith("uniform")), key=lambda row: row["test_score"])
    widths = [group.num_channels for group in env.network.groups]
    picks = [by_origin[_pick(folder, widths)] for folder in folders]
    pick_score = float(np.mean([row["test_score"] for row in picks]))
    pick_scores = [row["test_score"] for row in picks]
    unit = noise_unit(pick_scores if len(picks) > 1 else picks[0]["test_scores"], uniform["test_scores"], test_samples)
    best_any = max(rows, key=lambda row: row["test_score"])
    return {
        "name": candidate.name, "entry": candidate.entry.name, "notes": candidate.notes,
        "env_kwargs": dict(candidate.entry.run_spec("uniform").env_kwargs), "recovery": asdict(candidate.recovery),
        "search": {"agent": candidate.search_agent, "evaluations": evaluations, "seeds": seeds, "random": random_count,
                   "top": top},
        "checkpoint": task_checkpoint_sha256(candidate.entry.task), "test_samples": test_samples,
        "unpruned_test_score": scorer.unpruned_test_score(), "best_uniform": uniform, "search_picks": picks,
        "search_pick_score": pick_score, "best_candidate": best_any,
        "headroom": pick_score - uniform["test_score"], "noise_unit": unit,
        "headroom_in_noise_units": (pick_score - uniform["test_score"]) / unit if unit > 0 else float("nan"),
        "rank_agreement": rank_agreement([row["proxy"] for row in rows], [row["test_score"] for row in rows]),
        "protocols": [{key: value for key, value in row.items() if key != "proxy"} for row in protocol_agreement(
            candidate.entry, [keep for _, keep in pool], [row["test_score"] for row in rows], PROTOCOLS)],
        "candidates": rows, "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": time.time() - started, "machine": machine(),
    }


def _criterion(origin: str) -> str:
    """``uniform-filled fpgm`` -> ``fpgm, filled``; ``uniform l1`` -> ``l1``."""
    kind, criterion = origin.split()
    return f"{criterion}, filled" if kind.endswith("filled") else criterion


def render(out: Path) -> str:
    """The markdown table of every measured candidate in ``out``."""
    lines = ["| candidate | notes | unpruned | best uniform (criterion) | search's pick (mean of seeds) | headroom "
             "| noise unit | headroom / noise | top-quarter tau [95% CI] | measured |",
             "|---|---|---:|---|---:|---:|---:|---:|---|---|"]
    results = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    for r in results:
        tau = r["rank_agreement"]["top_quarter_kendall_tau"]
        lines.append(f"| {r['name']} | {r['notes']} | {r['unpruned_test_score']:.4f} "
                     f"| {r['best_uniform']['test_score']:.4f} ({_criterion(r['best_uniform']['origin'])}) "
                     f"| {r['search_pick_score']:.4f} | {r['headroom']:+.4f} | {r['noise_unit']:.4f} "
                     f"| {r['headroom_in_noise_units']:+.1f} | {tau['value']:.2f} [{tau['ci'][0]:.2f}, {tau['ci'][1]:.2f}] "
                     f"| {r['measured']} |")
    protocols = [{"entry": r["name"], "checkpoint": r["checkpoint"], "candidates": r["candidates"], "options": r["protocols"]}
                 for r in results if "protocols" in r]
    if protocols:
        lines += ["", "Rank agreement of other reward protocols on the same candidates (the searches used "
                  f"{', '.join(f'{k}={v}' for k, v in PROXY.items())}):", "", render_fidelity(protocols).rstrip("\n")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/headroom"))
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="candidate names (default: all)")
    parser.add_argument("--evaluations", type=int, default=500, help="reward evaluations per search run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="search seeds")
    parser.add_argument("--random", type=int, default=24, help="random budget-feasible rate vectors per candidate")
    parser.add_argument("--top", type=int, default=3, help="best episodes (by proxy) of each search run to recover")
    parser.add_argument("--render", action="store_true", help="print the table of what is measured, run nothing")
    args = parser.parse_args()
    if args.render:
        print(render(args.out / "results"), end="")
        return
    known = {candidate.name: candidate for candidate in CANDIDATES}
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        parser.error(f"unknown candidate(s) {unknown}; the candidates: {sorted(known)}")
    for candidate in [known[name] for name in args.only] if args.only else CANDIDATES:
        path = args.out / "results" / f"{candidate.name}.json"
        if path.exists():
            print(f"{candidate.name}: measured already ({path})")
            continue
        result = measure(candidate, args.out / "work", args.evaluations, args.seeds, args.random, args.top)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(result, indent=2))
        print(f"{candidate.name}: headroom {result['headroom']:+.4f} = {result['headroom_in_noise_units']:+.1f} noise units "
              f"({result['seconds'] / 60:.1f} min)", flush=True)
    print(render(args.out / "results"), end="")


if __name__ == "__main__":
    main()
