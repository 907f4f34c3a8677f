"""``prune-gym leaderboard``: results folders of one suite rendered as a markdown table, with comparisons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from prune_gym.benchmark.aggregate import probability_of_improvement
from prune_gym.benchmark.runner import RESULTS
from prune_gym.errors import RunError

BASELINE = "uniform"


def load_results(folders: list[str | Path]) -> list[dict[str, Any]]:
    """The ``results.json`` of each folder, all of one suite.

    Raises:
        RunError: a folder without results, or folders of different suites.
    """
    results = []
    for folder in folders:
        path = Path(folder) / RESULTS
        if not path.exists():
            raise RunError(f"{folder} has no {RESULTS}: run `prune-gym benchmark ... --out {folder}` (to the end) first")
        try:
            results.append(json.loads(path.read_text()))
        except ValueError:
            raise RunError(f"{path} is unreadable: run the benchmark again to rewrite it") from None
    suites = sorted({result["suite"] for result in results})
    if len(suites) > 1:
        raise RunError(f"the folders hold different suites {suites}: make one leaderboard per suite")
    return results


def display_name(result: dict[str, Any]) -> str:
    """The agent's name with the settings given on its command line (``uniform criterion=std``)."""
    given = {**result.get("env_overrides", {}), **result.get("agent_kwargs_given", {})}
    return " ".join([result["agent"], *(f"{key}={value}" for key, value in sorted(given.items()))])


def _estimate(aggregate: dict[str, Any], key: str) -> str:
    if key not in aggregate:
        return "-"
    low, high = aggregate[f"{key}_ci"]
    return f"{aggregate[key]:.3f} [{low:.3f}, {high:.3f}]"


def render(results: list[dict[str, Any]]) -> str:
    """The leaderboard as markdown: one row per results folder ranked by IQM, compared with the best uniform row."""
    if not results:
        raise RunError("no results to render")
    rows = sorted(results, key=lambda r: -r["aggregates"].get("iqm", -np.inf))
    uniform = [r for r in rows if r["agent"] == BASELINE]
    baseline = uniform[0] if uniform else None
    lines = ["| rank | agent | IQM [95% CI] | mean [95% CI] | optimality gap | P(better than best uniform) [95% CI] "
             "| test score after recovery | entries | runs (failed) | evaluations / run | search time |",
             "|---:|---|---|---|---|---|---|---|---|---|---|"]
    for rank, result in enumerate(rows, start=1):
        aggregate = result["aggregates"]
        improvement: dict[str, Any] = {}
        if baseline is not None and result is not baseline:
            improvement = probability_of_improvement(result["runs"], baseline["runs"])
        probability = (f"{improvement['probability']:.2f} [{improvement['ci'][0]:.2f}, {improvement['ci'][1]:.2f}]"
                       if "probability" in improvement else "-")
        cells = [str(rank), display_name(result), _estimate(aggregate, "iqm"), _estimate(aggregate, "mean"),
                 f"{aggregate['optimality_gap']:.3f}" if "optimality_gap" in aggregate else "-", probability,
                 f"{aggregate['mean_test_score']:.4f}" if "mean_test_score" in aggregate else "-",
                 str(len(aggregate.get("entries", []))), f"{len(result['runs'])} ({len(result['failed'])})",
                 f"{aggregate['mean_evaluations']:.0f}" if "mean_evaluations" in aggregate else "-",
                 f"{aggregate.get('search_seconds', 0.0) / 60:.1f} min"]
        lines.append("| " + " | ".join(cells) + " |")
    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores, torch {r['machine']['torch']}"
                       for r in results if "machine" in r})
    dates = sorted({r["machine"]["date"] for r in results if "machine" in r})
    lines += ["", f"Suite `{rows[0]['suite']}`; normalised score 0 = uniform pruning with the suite's baseline criterion, "
              "1 = the unpruned network, both after the suite's recovery fine-tune, on the test split."]
    if baseline is not None:
        lines.append(f"The best uniform row, `{display_name(baseline)}`, is the reference of P(better than best uniform).")
    lines.append(f"Measured on {'; '.join(machines)} ({', '.join(dates)}).")
    return "\n".join(lines) + "\n"
