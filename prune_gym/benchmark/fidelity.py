"""``prune-gym fidelity``: does the search reward predict the score after fine-tuning? Measured, per suite entry.

Candidates at the entry's budget: budget-feasible random per-group rates
(projected by :class:`~prune_gym.pruning.RateBudget`), uniform pruning with
every registered criterion, and the best episodes of given benchmark runs.
Each candidate is scored by the environment's reward evaluation under every
reward-protocol option (e.g. ``bn_recalibration=0,100``,
``reward_samples=1000,5000``, ``recovery_steps=0,20``), timed, and once by the
suite's recovery fine-tune on the test split. Reported per option: Kendall tau
and Spearman rho between proxy and recovered test score, with 95% bootstrap
CIs (paired resampling), over all candidates and among the top quarter by proxy
score (where agents are actually compared), and the seconds per evaluation.
"""

from __future__ import annotations

import itertools
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from prune_gym.benchmark.scoring import RecoveryCache, RecoveryScorer, mask_digest, protocol_spec, standard_error
from prune_gym.benchmark.suites import Entry, Suite, get_suite
from prune_gym.progress import progress_bar
from prune_gym.pruning import RateBudget, UndefinedImportanceError, list_importance_criteria
from prune_gym.runs import RunFolder
from prune_gym.storage import write_atomic
from prune_gym.tasks.checkpoints import task_checkpoint_sha256

BOOTSTRAP_RESAMPLES = 2000


def candidates(entry: Entry, random_count: int, run_folders: list[Path], per_run: int = 3,
               seed: int = 0) -> list[tuple[str, list[np.ndarray]]]:
    """(origin, keep-mask) pairs at the entry's budget, without duplicates: uniform pruning under every criterion
    (``uniform <criterion>``: one common rate; ``uniform-filled <criterion>``: the budget used up, see
    :meth:`RateBudget.uniform_counts`), ``random_count`` random rate vectors, the ``per_run`` best of each run."""
    env: Any = protocol_spec(entry, reward_samples=1).make_env().unwrapped
    found: dict[str, tuple[str, list[np.ndarray]]] = {}
    for criterion in list_importance_criteria():
        budget = RateBudget(env.network, env.ranking, criterion, env.macs_budget, env.max_rate, env.params_budget)
        for filled, label in ((False, "uniform"), (True, "uniform-filled")):
            try:
                keep = budget.keep_masks(budget.uniform_counts(filled))
            except UndefinedImportanceError:
                break
            found.setdefault(mask_digest(keep), (f"{label} {criterion}", keep))
    budget = env.rate_budget()
    rng = np.random.default_rng(seed)
    for index in range(random_count):
        rates = budget.project(rng.uniform(0.0, env.max_rate, env.network.num_groups))
        keep = budget.keep_masks(budget.kept_counts(rates))
        found.setdefault(mask_digest(keep), (f"random {index}", keep))
    widths = [group.num_channels for group in env.network.groups]
    for folder in run_folders:
        records, _ = RunFolder(folder).episodes(widths)
        met = sorted((r for r in records if r.budget_met), key=lambda r: -r.score)[:per_run]
        for record in met:
            found.setdefault(mask_digest(record.keep_mask), (f"{folder} episode {record.episode}", list(record.keep_mask)))
    return list(found.values())


def _correlation(proxy: np.ndarray, truth: np.ndarray, statistic: Any) -> dict[str, Any]:
    """The statistic and its 95% percentile interval over paired bootstrap resamples (resamples where it is
    undefined, all-tied ones, are left out; ``scipy.stats.bootstrap`` cannot skip them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        value = float(statistic(proxy, truth).statistic)
        rng = np.random.default_rng(0)
        resamples = rng.integers(0, len(proxy), (BOOTSTRAP_RESAMPLES, len(proxy)))
        draws = np.array([statistic(proxy[i], truth[i]).statistic for i in resamples], dtype=float)
    draws = draws[np.isfinite(draws)]
    low, high = np.percentile(draws, [2.5, 97.5]) if len(draws) else (float("nan"), float("nan"))
    return {"value": value, "ci": [float(low), float(high)], "n": len(proxy)}


def rank_agreement(proxy: list[float], truth: list[float]) -> dict[str, Any]:
    """Kendall tau and Spearman rho of proxy vs truth, over all candidates and the top quarter by proxy, with CIs."""
    proxy_array, truth_array = np.asarray(proxy), np.asarray(truth)
    top = np.argsort(-proxy_array, kind="stable")[: max(3, int(np.ceil(len(proxy_array) / 4)))]
    return {"kendall_tau": _correlation(proxy_array, truth_array, stats.kendalltau),
            "spearman_rho": _correlation(proxy_array, truth_array, stats.spearmanr),
            "top_quarter_kendall_tau": _correlation(proxy_array[top], truth_array[top], stats.kendalltau),
            "top_quarter_spearman_rho": _correlation(proxy_array[top], truth_array[top], stats.spearmanr)}


def option_grid(options: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the option values (``{"bn_recalibration": [0, 100]}`` -> two protocols)."""
    names = sorted(options)
    return [dict(zip(names, values)) for values in itertools.product(*(options[name] for name in names))] or [{}]


def protocol_agreement(entry: Entry, masks: list[list[np.ndarray]], truth: list[float], options: dict[str, list[Any]],
                       device: str = "cpu") -> list[dict[str, Any]]:
    """Per reward protocol of the option grid (on top of the entry's): every mask's proxy score, the seconds an
    evaluation takes, and the proxy's rank agreement with ``truth`` (the masks' recovered test scores)."""
    rows = []
    for option in option_grid(options):
        env: Any = protocol_spec(entry, device, **option).make_env().unwrapped
        started = time.perf_counter()
        proxy = [env.evaluator.score(keep) for keep in masks]
        seconds = (time.perf_counter() - started) / len(masks)
        rows.append({"option": option, "protocol": {**entry.env_kwargs, **option}, "seconds_per_evaluation": seconds,
                     **rank_agreement(proxy, truth), "proxy": proxy})
    return rows


def measure_fidelity(suite_name: str, entry_name: str, out: str | Path, options: dict[str, list[Any]] | None = None,
                     random_count: int = 24, run_folders: tuple[str | Path, ...] = (), device: str = "cpu",
                     cache: str | Path | None = None, progress: bool = False) -> dict[str, Any]:
    """Measure and write ``fidelity-<entry>.json`` in ``out``; returns it.

    ``cache`` holds the recovered candidates (default ``out/cache``); a benchmark's cache may be given, so that
    candidates its agents found (the uniform ones, say) are not recovered again. ``progress``: a progress bar over the
    candidates' recoveries.
    """
    suite: Suite = get_suite(suite_name)
    entry = suite.entry(entry_name)
    out = Path(out)
    pool = candidates(entry, random_count, [Path(folder) for folder in run_folders])
    scorer = RecoveryScorer(entry.task, suite.recovery, RecoveryCache(Path(cache) if cache else out / "cache"), device)
    bn = int(entry.env_kwargs.get("bn_recalibration", 0))
    bar = progress_bar(len(pool), f"{entry.name}: recovering candidates", "candidate", enabled=progress)
    recovered = []
    for _, keep in pool:
        recovered.append(scorer.score(keep, bn_recalibration=bn))
        bar.update()
    bar.close()
    truth = [r.test_score for r in recovered]
    rows = protocol_agreement(entry, [keep for _, keep in pool], truth, options or {}, device)
    result = {"suite": suite.name, "entry": entry.name, "checkpoint": task_checkpoint_sha256(entry.task),
              "recovery": {"steps": suite.recovery.steps, "seeds": list(suite.recovery.seeds)},
              "candidates": [origin for origin, _ in pool], "recovered_test_scores": truth,
              "test_samples": recovered[0].test_samples, "options": rows}
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / f"fidelity-{entry.slug}.json", json.dumps(result, indent=2))
    return result


def _estimate(value: dict[str, Any]) -> str:
    return f"{value['value']:.2f} [{value['ci'][0]:.2f}, {value['ci'][1]:.2f}]"


def render_fidelity(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per entry and reward-protocol option, with the first 16 hex digits of the checkpoint's SHA-256."""
    lines = ["| entry | checkpoint | reward protocol | candidates | Kendall tau [95% CI] | Spearman rho | top-quarter tau "
             "| top-quarter rho | s / evaluation |", "|---|---|---|---:|---|---|---|---|---:|"]
    for result in results:
        for row in result["options"]:
            protocol = ", ".join(f"{k}={v}" for k, v in sorted(row["protocol"].items())) or "default"
            lines.append(f"| {result['entry']} | {result.get('checkpoint', '-')[:16]} | {protocol} | {len(result['candidates'])} "
                         f"| {_estimate(row['kendall_tau'])} "
                         f"| {_estimate(row['spearman_rho'])} | {_estimate(row['top_quarter_kendall_tau'])} "
                         f"| {_estimate(row['top_quarter_spearman_rho'])} | {row['seconds_per_evaluation']:.3f} |")
    return "\n".join(lines) + "\n"


def render_headroom(results: list[dict[str, Any]], baseline_criterion: str = "l1") -> str:
    """Markdown: per entry, uniform pruning (``baseline_criterion``) and the best candidate after recovery, their
    difference and the test split's standard error; an entry whose best candidate is within about two standard errors of
    uniform pruning has no room to separate agents (selection on the same test scores flatters the best candidate)."""
    lines = ["| entry | uniform " + baseline_criterion + " after recovery | best candidate after recovery | difference | test SE |",
             "|---|---:|---|---:|---:|"]
    for result in results:
        scores = dict(zip(result["candidates"], result["recovered_test_scores"]))
        uniform = scores.get(f"uniform {baseline_criterion}")
        origin, best = max(scores.items(), key=lambda item: item[1])
        error = standard_error(best, result["test_samples"]) if "test_samples" in result else float("nan")
        parts = origin.split("/")  # a run's episode: <out>/<agent>/<entry>/seed-<n> episode <k>
        where = f"{parts[-3]} {parts[-1]}" if len(parts) >= 3 else origin
        uniform_text, difference = ("-", "-") if uniform is None else (f"{uniform:.4f}", f"{best - uniform:+.4f}")
        lines.append(f"| {result['entry']} | {uniform_text} | {best:.4f} ({where}) | {difference} | {error:.4f} |")
    return "\n".join(lines) + "\n"
