"""Reaching a MACs budget with try-and-learn: a search over the drop allowance b.

Try-and-learn has no MACs budget: the drop allowance ``b`` of its reward sets
the trade-off (a larger ``b`` tolerates a larger accuracy drop, so the learned
decisions prune more). :func:`fit_drop_allowance` bisects ``log b`` between
``low`` and ``high``: each probe learns a complete try-and-learn run on a fresh
environment with that ``b`` and measures the MACs its decision keeps; a probe
over the budget raises ``b``, one within it lowers ``b``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from prune_gym.validation import check_int, check_real

from .agent import TryAndLearnAgent


@dataclass(frozen=True)
class DropAllowanceProbe:
    """One complete try-and-learn run at drop allowance ``drop_allowance``: its decision, MACs kept / original, score."""

    drop_allowance: float
    macs_ratio: float
    score: float
    decision: list[np.ndarray]


def learn_decision(agent: TryAndLearnAgent) -> None:
    """Learn every layer, then play the decision once (the environment's last episode is the decision's)."""
    while not agent.finished:
        agent.learn(1)
    agent.learn(1)


def fit_drop_allowance(make_env: Callable[[float], gym.Env], macs_budget: float, probes: int = 4, low: float = 0.005, high: float = 0.2,
                       seed: int | None = 0, **hyperparameters: Any) -> tuple[DropAllowanceProbe | None, list[DropAllowanceProbe]]:
    """Search the drop allowance b whose learned decision keeps at most ``macs_budget`` of the MACs.

    Args:
        make_env: ``b -> env``, a fresh FilterSelect-v0 with ``reward="try-and-learn"``,
            ``reward_kwargs={"drop_allowance": b}`` and ``enforce_budget=False`` (so ``b`` alone decides).
        macs_budget: fraction of the original MACs the decision may keep, in (0, 1).
        probes: complete try-and-learn runs (geometric bisection steps between ``low`` and ``high``).
        low, high: the range of b searched (fractions of the score, 0 < low < high).
        seed, hyperparameters: passed to every :class:`TryAndLearnAgent`.

    Returns:
        The probe within the budget with the best score (None if none was), and every probe in order.
    """
    macs_budget = check_real("macs_budget", macs_budget, 0.0, 1.0, low_open=True, high_open=True,
                             expected="the fraction of MACs to keep, in (0, 1)")
    probes = check_int("probes", probes, 1, "a positive number of try-and-learn runs")
    low = check_real("low", low, 0.0, math.inf, low_open=True, high_open=True, expected="a positive drop allowance, e.g. 0.005")
    high = check_real("high", high, low, math.inf, low_open=True, high_open=True,
                      expected=f"a drop allowance above low={low:g}, e.g. 0.2")
    results = []
    for _ in range(probes):
        drop_allowance = math.sqrt(low * high)
        env = make_env(drop_allowance)
        agent = TryAndLearnAgent(env, seed=seed, **hyperparameters)
        learn_decision(agent)
        last = agent.pruning_env.last_state
        assert last is not None
        results.append(DropAllowanceProbe(drop_allowance, last.macs_ratio, last.score, agent.decision))
        env.close()
        if last.macs_ratio > macs_budget:
            low = drop_allowance
        else:
            high = drop_allowance
    within = [probe for probe in results if probe.macs_ratio <= macs_budget]
    return (max(within, key=lambda probe: probe.score) if within else None), results
