"""Aggregate scores with rliable (Agarwal et al. 2021): interval estimates, not point estimates.

Normalised scores of an agent form a (seeds x entries) matrix. We report the
interquartile mean (IQM), the mean and the optimality gap (rliable's
``metrics``) with 95% confidence intervals, the probability that one agent
improves on another (over the entries both ran), and sample-efficiency curves:
the IQM of the normalised best-so-far reward-split score after each reward
evaluation.

The intervals count every noise source the results hold. Where each run keeps
which test images its recovered networks got right (accuracy tasks, results
from cpu-v1 on), :func:`noise_aware_interval` resamples, in each bootstrap
replicate, the test images (the same images for the run, the entry's uniform
reference and the unpruned network: paired), the recovery seeds of each
recovered network, and the seeds within each entry; a deterministic agent's
interval is then as wide as its test-set and recovery noise, not zero. rliable's
stratified bootstrap (``library.get_interval_estimates``) resamples the seeds
only: it is what results without per-image records (cpu-v0) get, and what the
sample-efficiency curves and the probability of improvement use.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from prune_gym.errors import RunError

MANIFEST = "benchmark.json"
"""The file naming a benchmark folder's suite, agent and hyper-parameters."""

RESULTS = "results.json"
"""The file of a finished benchmark: every run, scored or failed, and the aggregates (what the leaderboard reads)."""

BOOTSTRAP_REPS = 2000


def _interval(scores: dict[str, Any], function: Any, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """rliable's stratified-bootstrap point estimates and 95% intervals, seeded (reproducible to the digit).

    rliable's ``StratifiedBootstrap.update_indices`` draws from numpy's global generator and ignores ``random_state``
    (rliable 1.2), so the global generator is seeded here too, and restored after.
    """
    from rliable import library

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch, under rliable, deprecates the RandomState that rliable hands it
            warnings.simplefilter("ignore", FutureWarning)
            return library.get_interval_estimates(scores, function, reps=BOOTSTRAP_REPS,
                                                  random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(state)


def score_matrix(runs: list[dict[str, Any]], key: str = "normalised") -> tuple[np.ndarray, list[str], list[int]]:
    """(seeds x entries) matrix of ``key`` over the seeds every entry completed, with the entry names and seeds."""
    entries = sorted({run["entry"] for run in runs})
    by_seed: dict[int, dict[str, float]] = {}
    for run in runs:
        by_seed.setdefault(run["seed"], {})[run["entry"]] = run[key]
    seeds = sorted(seed for seed, values in by_seed.items() if set(values) == set(entries))
    return np.array([[by_seed[seed][entry] for entry in entries] for seed in seeds]), entries, seeds


def iqm_per_evaluation(curves: np.ndarray) -> np.ndarray:
    """rliable's IQM (``metrics.aggregate_iqm``: scipy's 25% trimmed mean of every score) at each evaluation of
    (seeds x entries x evaluations) curves, in one vectorised call instead of one per evaluation."""
    from scipy import stats

    return stats.trim_mean(curves.reshape(-1, curves.shape[-1]), proportiontocut=0.25, axis=0)


def _estimators(scores: np.ndarray) -> np.ndarray:
    """IQM, mean and optimality gap of one (seeds x entries) matrix (rliable's metrics)."""
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores)])


def _per_image(runs_by_entry: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """Per entry, the test-image correctness of every run (seeds x recovery seeds x images) and of its references; None
    when any run or reference lacks it."""
    from prune_gym.benchmark.scoring import unpack_correctness

    found = {}
    for entry, runs in runs_by_entry.items():
        references = runs[0].get("references") or {}
        texts: list[list[str]] = [run.get("test_correct") or [] for run in runs]
        if not all(texts) or not references.get("unpruned_test_correct") or not references.get("uniform_test_correct"):
            return None
        samples = references["test_samples"]
        found[entry] = (np.array([[unpack_correctness(t, samples) for t in run_texts] for run_texts in texts], dtype=np.float32),
                        np.array([unpack_correctness(t, samples) for t in references["uniform_test_correct"]], dtype=np.float32),
                        unpack_correctness(references["unpruned_test_correct"], samples).astype(np.float32))
    return found


def noise_aware_interval(runs: list[dict[str, Any]], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> np.ndarray | None:
    """95% percentile intervals (2 x 3: IQM, mean, optimality gap) of a bootstrap that resamples, per replicate and
    entry, the test images (one draw shared by the runs and the entry's references, so scores stay paired), the
    recovery seeds of every recovered network and the seeds (stratified by entry, as rliable's bootstrap), then
    normalises; None when the runs lack per-image correctness (then only the seeds are resampled).

    rliable resamples runs only; a deterministic agent's five seeds are one network, so the test set's sampling error
    and the recovery's seed spread, which its score carries like any other, would give it a zero-width interval.
    """
    matrix, entries, seeds = score_matrix(runs)
    runs_by_entry = {entry: sorted((r for r in runs if r["entry"] == entry and r["seed"] in seeds), key=lambda r: r["seed"])
                     for entry in entries}
    per_image = _per_image(runs_by_entry)
    if per_image is None:
        return None
    rng = np.random.default_rng(seed)
    normalised = np.empty((reps, len(seeds), len(entries)))
    for column, entry in enumerate(entries):
        run_correct, uniform_correct, unpruned_correct = per_image[entry]
        samples = unpruned_correct.shape[0]
        for start in range(0, reps, 250):  # image weights in chunks: 250 x 10,000 counts at a time
            block = min(250, reps - start)
            drawn = rng.integers(0, samples, (block, samples))
            weights = np.stack([np.bincount(row, minlength=samples) for row in drawn]).T.astype(np.float32) / samples
            run_scores = run_correct @ weights  # seeds x recovery seeds x replicates
            uniform_scores = uniform_correct @ weights  # recovery seeds x replicates
            unpruned = unpruned_correct @ weights
            picks = rng.integers(0, run_scores.shape[1], (run_scores.shape[0], run_scores.shape[1], block))
            run_mean = np.take_along_axis(run_scores, picks, axis=1).mean(axis=1)  # seeds x replicates
            uniform = np.take_along_axis(uniform_scores, rng.integers(0, len(uniform_scores), uniform_scores.shape), 0).mean(0)
            gap = unpruned - uniform
            scores = np.where(gap > 0, (run_mean - uniform) / np.where(gap > 0, gap, 1.0), 0.0)
            scores = np.where([run["budget_met"] for run in runs_by_entry[entry]], scores.T, 0.0)  # missed budget: 0
            chosen = rng.integers(0, len(seeds), (block, len(seeds)))
            normalised[start:start + block, :, column] = np.take_along_axis(scores, chosen, axis=1)
    estimates = np.array([_estimators(replicate) for replicate in normalised])
    return np.percentile(estimates, [2.5, 97.5], axis=0)


def aggregates(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """IQM, mean and optimality gap of the normalised scores with 95% CIs (every noise source the runs record:
    :func:`noise_aware_interval`, else rliable's stratified bootstrap over seeds), and plain summaries."""
    matrix, entries, seeds = score_matrix(runs)
    if matrix.size == 0:
        return {"entries": entries, "seeds": seeds}
    noise_aware = noise_aware_interval(runs)
    if noise_aware is not None:
        points, intervals = {"agent": _estimators(matrix)}, {"agent": noise_aware}
    else:
        points, intervals = _interval({"agent": matrix}, _estimators)
    length = min(len(run["normalised_proxy_curve"]) for run in runs)  # entries may differ in episodes: the common part
    curves = np.array([[run["normalised_proxy_curve"][:length] for run in sorted(runs, key=lambda r: (r["seed"], r["entry"]))
                        if run["seed"] == seed] for seed in seeds])  # seeds x entries x evaluations
    curve_points, curve_intervals = _interval({"agent": curves}, iqm_per_evaluation)
    return {
        "entries": entries, "seeds": seeds, "interval_noise": "test images, recovery seeds, seeds" if noise_aware is not None else "seeds",
        "iqm": float(points["agent"][0]), "iqm_ci": intervals["agent"][:, 0].tolist(),
        "mean": float(points["agent"][1]), "mean_ci": intervals["agent"][:, 1].tolist(),
        "optimality_gap": float(points["agent"][2]), "optimality_gap_ci": intervals["agent"][:, 2].tolist(),
        "mean_test_score": float(np.mean([run["test_score"] for run in runs])),
        "mean_evaluations": float(np.mean([run["evaluations"] for run in runs])),
        "search_seconds": float(np.sum([run["search_seconds"] for run in runs])),
        "benchmark_seconds": float(np.sum([run.get("benchmark_seconds", 0.0) for run in runs])),
        "sample_efficiency_iqm": curve_points["agent"].tolist(),
        "sample_efficiency_ci": curve_intervals["agent"].tolist(),
    }


def probability_of_improvement(runs_x: list[dict[str, Any]], runs_y: list[dict[str, Any]]) -> dict[str, Any]:
    """P(X > Y) over the entries both agents ran (Mann-Whitney per entry, averaged), with a 95% CI."""
    from rliable import metrics

    common = sorted({r["entry"] for r in runs_x} & {r["entry"] for r in runs_y})
    x, _, _ = score_matrix([r for r in runs_x if r["entry"] in common])
    y, _, _ = score_matrix([r for r in runs_y if r["entry"] in common])
    if x.size == 0 or y.size == 0:
        return {"entries": common}
    points, intervals = _interval({"pair": [x, y]}, metrics.probability_of_improvement)
    return {"entries": common, "probability": float(points["pair"]), "ci": np.ravel(intervals["pair"]).tolist()}


def collect(out: Path) -> dict[str, Any]:
    """Every run of a results folder (scored and failed) and the agent's aggregates."""
    manifest_path = Path(out) / MANIFEST
    if not manifest_path.exists():
        raise RunError(f"{out} is not a prune-gym benchmark folder (no {MANIFEST}): run `prune-gym benchmark --out {out}` first")
    manifest = _read_object(manifest_path, f"use another --out folder, or delete {manifest_path} to start this one afresh")
    runs, failed = [], []
    for path in sorted(Path(out).glob("*/seed-*/score.json")):
        runs.append(_read_object(path, f"delete it to score that run again ({path.parent})"))
    for path in sorted(Path(out).glob("*/seed-*/failed.json")):
        if not path.with_name("score.json").exists():  # a run scored after an earlier failure is scored, not failed
            record = _read_object(path, f"delete it to run that seed again ({path.parent})")
            failed.append({key: value for key, value in record.items() if key != "traceback"})
    return {**manifest, "runs": runs, "failed": failed, "aggregates": aggregates(runs)}


def _read_object(path: Path, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; a damaged file (torn, edited, not an object) is one line naming it and ``fix``."""
    try:
        value = json.loads(path.read_text())
    except ValueError as error:
        raise RunError(f"{path} is damaged ({error}): {fix}") from None
    if not isinstance(value, dict):
        raise RunError(f"{path} holds a JSON {type(value).__name__}, not an object: {fix}")
    return value
