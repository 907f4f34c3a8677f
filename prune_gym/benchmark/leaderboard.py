"""``prune-gym leaderboard``: results folders of one suite rendered as a markdown table, with comparisons."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prune_gym.benchmark.aggregate import MANIFEST, RESULTS, probability_of_improvement
from prune_gym.errors import RunError
from prune_gym.progress import progress_bar

BASELINE = "uniform"


def _show(value: Any) -> str:
    """``repr(value)``, cut short: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_interval(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_is_number(bound) for bound in value)


def _is_curve(value: Any) -> bool:
    return isinstance(value, list) and all(_is_number(point) for point in value)


_FIELDS: dict[str, tuple[type, str]] = {"suite": (str, "a suite name"), "agent": (str, "an agent name"),
                                        "runs": (list, "a list of scored runs"), "failed": (list, "a list of failed runs"),
                                        "aggregates": (dict, "an object of aggregate scores")}
_RUN_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "entry": (lambda value: isinstance(value, str), "an entry name"),
    "seed": (lambda value: isinstance(value, int) and not isinstance(value, bool), "an integer seed"),
    "normalised": (_is_number, "a finite normalised score"),
    "test_score": (_is_number, "a finite test score"),
    "test_standard_error": (_is_number, "a finite standard error"),
}
_AGGREGATE_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{key: (_is_number, "a finite number") for key in ("iqm", "mean", "optimality_gap", "mean_test_score", "mean_evaluations",
                                                         "search_seconds")},
    **{f"{key}_ci": (_is_interval, "a [low, high] pair of numbers") for key in ("iqm", "mean", "optimality_gap")},
    "entries": (lambda value: isinstance(value, list), "a list of entry names"),
    "sample_efficiency_iqm": (_is_curve, "a list of numbers"),
    "sample_efficiency_ci": (lambda value: isinstance(value, list) and len(value) == 2 and all(_is_curve(c) for c in value),
                             "two lists of numbers"),
}
_ESTIMATES = ("iqm", "iqm_ci", "mean", "mean_ci", "optimality_gap", "optimality_gap_ci", "sample_efficiency_iqm",
              "sample_efficiency_ci")
"""Written together by ``aggregates`` whenever any seed completed every entry."""


def results_problem(results: Any) -> str | None:
    """What keeps ``results`` from being a benchmark's ``results.json`` the leaderboard can render, or None."""
    if not isinstance(results, dict):
        return f"it holds a JSON {type(results).__name__}, not an object"
    for key, (kind, what) in _FIELDS.items():
        if key not in results:
            return f"it has no {key!r} ({what})"
        if not isinstance(results[key], kind):
            return f"its {key!r} is {_show(results[key])}, not {what}"
    for key in ("env_overrides", "agent_kwargs_given"):
        if not isinstance(results.get(key, {}), dict):
            return f"its {key!r} is {_show(results[key])}, not an object"
    if "machine" in results and not (isinstance(results["machine"], dict) and {"cpu", "cores", "torch", "date"} <= set(results["machine"])):
        return "its 'machine' is not an object with cpu, cores, torch and date"
    for index, run in enumerate(results["runs"]):
        if not isinstance(run, dict):
            return f"runs[{index}] is {_show(run)}, not an object"
        for key, (check, what) in _RUN_FIELDS.items():
            if key not in run:
                return f"runs[{index}] has no {key!r} ({what})"
            if not check(run[key]):
                return f"runs[{index}][{key!r}] is {_show(run[key])}, not {what}"
    aggregates = results["aggregates"]
    if any(key in aggregates for key in _ESTIMATES):
        missing = [key for key in _ESTIMATES if key not in aggregates]
        if missing:
            return f"its aggregates have some interval estimates but not {missing}"
    for key, (check, what) in _AGGREGATE_FIELDS.items():
        if key in aggregates and not check(aggregates[key]):
            return f"its aggregates[{key!r}] is {_show(aggregates[key])}, not {what}"
    return None


def benchmark_results_paths(paths: list[str | Path]) -> tuple[list[str | Path], list[str]]:
    """Of several paths (a shell glob such as ``results/*``), those that may hold benchmark results, and a one-line note
    on each of the others: a folder without ``results.json`` (a ``--cache`` folder, a benchmark not run to the end) or a
    file that is not ``.json``. One path is returned as it is, for :func:`load_results` to refuse if it holds no results.

    Raises:
        RunError: none of several paths holds results.
    """
    if len(paths) < 2:
        return list(paths), []
    kept: list[str | Path] = []
    notes = []
    for path in paths:
        if Path(path).is_dir() and not (Path(path) / RESULTS).exists():
            unfinished = (Path(path) / MANIFEST).exists()
            notes.append(f"{path}: no {RESULTS}, " + ("its benchmark has not run to the end" if unfinished else
                                                      "not a `prune-gym benchmark --out` folder"))
        elif Path(path).is_file() and Path(path).suffix != ".json":
            notes.append(f"{path}: not a results file (.json)")
        else:
            kept.append(path)
    if not kept:
        raise RunError(f"none of the {len(paths)} paths holds benchmark results ({RESULTS}): give the --out folders of "
                       "`prune-gym benchmark` run to the end, or their results.json files")
    return kept, notes


def load_results(folders: list[str | Path]) -> list[dict[str, Any]]:
    """The ``results.json`` of each folder (or each results file itself, e.g. a published one), all of one suite.

    Raises:
        RunError: a folder without results, a results file that is unreadable or not a benchmark's (a field missing or
            of the wrong kind), or folders of different suites.
    """
    results = []
    for folder in folders:
        path = Path(folder) if Path(folder).is_file() else Path(folder) / RESULTS
        if not path.exists():
            raise RunError(f"{folder} has no {RESULTS}: run `prune-gym benchmark ... --out {folder}` (to the end) first")
        try:
            loaded = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            raise RunError(f"{path} is unreadable: run the benchmark again to rewrite it") from None
        problem = results_problem(loaded)
        if problem is not None:
            raise RunError(f"{path} is not a prune-gym benchmark results file ({problem}): give the --out folder of "
                           "`prune-gym benchmark`, or run the benchmark again to rewrite it")
        results.append(loaded)
    suites = sorted({result["suite"] for result in results})
    if len(suites) > 1:
        raise RunError(f"the folders hold different suites {suites}: make one leaderboard per suite")
    return results


def display_name(result: dict[str, Any]) -> str:
    """The agent's name with the settings given on its command line (``uniform criterion=std``), and on a transfer
    suite how it met the held-out entries (``ddpg zero-shot``, ``cma-es from scratch``)."""
    given = {**result.get("env_overrides", {}), **result.get("agent_kwargs_given", {})}
    transfer = [result["transfer"]] if result.get("transfer") else []
    return " ".join([result["agent"], *(f"{key}={value}" for key, value in sorted(given.items())), *transfer])


def _estimate(aggregate: dict[str, Any], key: str) -> str:
    if key not in aggregate:
        return "-"
    low, high = aggregate[f"{key}_ci"]
    return f"{aggregate[key]:.3f} [{low:.3f}, {high:.3f}]"


def ranked(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results by IQM, best first (those without aggregate scores last)."""
    return sorted(results, key=lambda r: -r["aggregates"].get("iqm", -np.inf))


def best_uniform(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The uniform row with the best IQM, the reference of P(better than best uniform); None without a uniform row."""
    return next((r for r in ranked(results) if r["agent"] == BASELINE), None)


def improvements(results: list[dict[str, Any]], progress: bool = False) -> list[dict[str, Any]]:
    """P(better than the best uniform row) with its 95% CI, for each of ``results`` in order (``{}`` for that row itself,
    and for every row without one): a stratified bootstrap per row, the slow part of a leaderboard (seconds to a minute
    each), so computed once for both :func:`render` and :func:`plot_leaderboard`; with ``progress``, a progress bar."""
    baseline = best_uniform(results)
    if baseline is None:
        return [{} for _ in results]
    bar = progress_bar(len(results) - 1, "P(better than best uniform)", "row", enabled=progress and len(results) > 1)
    compared = []
    for result in results:
        compared.append({} if result is baseline else probability_of_improvement(result["runs"], baseline["runs"]))
        bar.update(result is not baseline)
    bar.close()
    return compared


def suite_seed_count(results: list[dict[str, Any]]) -> int:
    """How many seeds a full row has: the suite's, when it is registered here, else the most any row has."""
    from prune_gym.benchmark.suites import get_suite, list_suites

    suite = results[0]["suite"]
    if suite in list_suites():
        return len(get_suite(suite).seeds)
    return max(len({run["seed"] for run in result["runs"]}) for result in results)


def render(results: list[dict[str, Any]], compared: list[dict[str, Any]] | None = None) -> str:
    """The leaderboard as markdown: one row per results folder ranked by IQM, compared with the best uniform row
    (``compared``: :func:`improvements` of ``results``, computed here when not given)."""
    if not results:
        raise RunError("no results to render")
    improvement_of = {id(result): value for result, value in zip(results, compared or improvements(results))}
    rows = ranked(results)
    baseline = best_uniform(results)
    full = suite_seed_count(results)
    short = []
    lines = ["| rank | agent | IQM [95% CI] | mean [95% CI] | optimality gap | P(better than best uniform) [95% CI] "
             "| test score after recovery | entries | runs (failed) | evaluations / run | search time |",
             "|---:|---|---|---|---|---|---|---|---|---|---|"]
    for rank, result in enumerate(rows, start=1):
        aggregate = result["aggregates"]
        improvement = improvement_of[id(result)]
        probability = (f"{improvement['probability']:.2f} [{improvement['ci'][0]:.2f}, {improvement['ci'][1]:.2f}]"
                       if "probability" in improvement else "-")
        seeds = len({run["seed"] for run in result["runs"]})
        if seeds < full:
            short.append(f"{display_name(result)} ({seeds})")
        name = display_name(result) + (" †" if seeds < full else "")
        cells = [str(rank), name, _estimate(aggregate, "iqm"), _estimate(aggregate, "mean"),
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
    if short:
        lines.append(f"† fewer seeds than the suite's {full}, so a wider interval: {', '.join(short)}.")
    lines.append(f"Measured on {'; '.join(machines)} ({', '.join(dates)}).")
    return "\n".join(lines) + "\n"


def render_entries(results: list[dict[str, Any]]) -> str:
    """Markdown: per entry, each agent's test score after recovery (mean +- std over seeds, test standard error), and
    whether the entry separates agents: the best agent and the best uniform row differ by more than the larger seed
    standard deviation plus the larger test standard error ("yes, uniform ahead" where uniform pruning is the better).
    An entry no uniform row fits (FilterSelect-v0) is compared with its reference, the suite's uniform pruning at the
    same budget after the same recovery, which every run records."""
    entries = sorted({run["entry"] for result in results for run in result["runs"]})
    names = [display_name(result) for result in results]
    lines = ["| entry | " + " | ".join(names) + " | best minus uniform | seed std + test SE | separates |",
             "|---|" + "---|" * len(names) + "---:|---:|---|"]
    for entry in entries:
        cells, stats = [], {}
        for name, result in zip(names, results):
            scores = np.array([run["test_score"] for run in result["runs"] if run["entry"] == entry])
            errors = [run["test_standard_error"] for run in result["runs"] if run["entry"] == entry]
            if not len(scores):
                cells.append("-")
                continue
            stats[name] = (scores.mean(), scores.std(), float(np.mean(errors)), result["agent"] == BASELINE)
            cells.append(f"{scores.mean():.4f} +- {scores.std():.4f} (SE {np.mean(errors):.4f}, n={len(scores)})")
        uniform = [value for value in stats.values() if value[3]]
        references = [run["references"]["uniform_test_score"] for result in results for run in result["runs"]
                      if run["entry"] == entry and isinstance(run.get("references"), dict)]
        if not uniform and references:  # no uniform row fits the entry: its reference, the suite's uniform pruning
            uniform = [(float(np.mean(references)), 0.0, 0.0, True)]
            stats["reference"] = uniform[0]
        if uniform and len(stats) > len(uniform):
            best_uniform = max(uniform, key=lambda value: value[0])
            best = max((value for value in stats.values() if not value[3]), key=lambda value: value[0])
            noise = max(best[1], best_uniform[1]) + max(best[2], best_uniform[2])
            gap = best[0] - best_uniform[0]
            verdict = "no" if abs(gap) <= noise else "yes" if gap > 0 else "yes, uniform ahead"
            verdict += " (vs reference)" if "reference" in stats else ""
            cells += [f"{gap:+.4f}", f"{noise:.4f}", verdict]
        else:
            cells += ["-", "-", "-"]
        lines.append(f"| {entry} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_leaderboard(results: list[dict[str, Any]], folder: str | Path, compared: list[dict[str, Any]] | None = None) -> list[Path]:
    """rliable's figures of a leaderboard, as PNG and PDF in ``folder``: interval estimates (IQM, mean, optimality
    gap), sample-efficiency curves (IQM of the normalised best-so-far reward-split score against reward
    evaluations), and the probability of improving on the best uniform row (``compared``: :func:`improvements` of
    ``results``, computed here when not given)."""
    plotted = [r for r in ranked(results) if "iqm" in r["aggregates"]]
    if not plotted:
        raise RunError("no results folder has aggregate scores to plot (no seed finished every entry): "
                       "run the benchmarks to the end, or leave out --plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from rliable import plot_utils

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [display_name(r) for r in plotted]
    estimates = {name: np.array([r["aggregates"][k] for k in ("iqm", "mean", "optimality_gap")]) for name, r in zip(names, plotted)}
    intervals = {name: np.array([r["aggregates"][f"{k}_ci"] for k in ("iqm", "mean", "optimality_gap")]).T
                 for name, r in zip(names, plotted)}
    written = []

    def save(figure: Any, stem: str) -> None:
        for suffix in (".png", ".pdf"):
            figure.savefig(folder / f"{stem}{suffix}", bbox_inches="tight", dpi=150)
            written.append(folder / f"{stem}{suffix}")
        plt.close(figure)

    figure, _ = plot_utils.plot_interval_estimates(estimates, intervals, metric_names=["IQM", "Mean", "Optimality gap"],
                                                   algorithms=names, xlabel="normalised score (0 = uniform, 1 = unpruned)",
                                                   row_height=0.45, xlabel_y_coordinate=-0.15 - 0.6 / len(names))
    save(figure, "interval_estimates")
    figure, axis = plt.subplots(figsize=(7, 5))
    length = min(len(r["aggregates"]["sample_efficiency_iqm"]) for r in plotted)
    curves = {name: np.array(r["aggregates"]["sample_efficiency_iqm"][:length]) for name, r in zip(names, plotted)}
    curve_intervals = {name: np.array(r["aggregates"]["sample_efficiency_ci"])[:, :length] for name, r in zip(names, plotted)}
    colours = dict(zip(names, sns.color_palette("colorblind", len(names))))
    plot_utils.plot_sample_efficiency_curve(np.arange(1, length + 1), curves, curve_intervals, algorithms=names, colors=colours, ax=axis,
                                            xlabel="reward evaluations (episodes)", ylabel="IQM normalised best-so-far (reward split)",
                                            labelsize="large", ticklabelsize="large", marker="")
    axis.legend(handles=[plt.Line2D([], [], color=colours[name], label=name) for name in names], loc="center left",
                bbox_to_anchor=(1.02, 0.5), frameon=False)
    save(figure, "sample_efficiency")
    baseline = best_uniform(results)
    if baseline is not None and "iqm" in baseline["aggregates"]:
        improvement_of = {id(result): value for result, value in zip(results, compared or improvements(results))}
        pairs = {f"{display_name(r)},{display_name(baseline)}": improvement_of[id(r)] for r in plotted if r is not baseline}
        pairs = {pair: value for pair, value in pairs.items() if "probability" in value}
        if pairs:
            figure = plot_utils.plot_probability_of_improvement(
                {pair: np.array(value["probability"]) for pair, value in pairs.items()},
                {pair: np.array(value["ci"]) for pair, value in pairs.items()}, figsize=(5, 0.4 * len(pairs) + 1))
            save(figure.figure if hasattr(figure, "figure") else plt.gcf(), "probability_of_improvement")
    return written
