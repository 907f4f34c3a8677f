"""The episode state: one immutable record handed to observations and rewards alike.

Like CompilerGym's ``CompilerEnvState``, an :class:`EpisodeState` says
everything about an episode after some of its decisions: which group comes
next, the keep-masks so far, the MACs and params they leave, the budget, and
the network's static description (its groups and layers). The environment
builds a new one after every step; observations (``observe(state)``) and
rewards (``reward(state)``) read it, and both can be tested without an
environment by building a state by hand (:meth:`EpisodeState.initial`).

Units: MACs are multiply-accumulates of conv and linear layers; ratios are
pruned / original; rates are fractions **pruned**, ``kept_fractions`` are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prune_gym.pruning import ImportanceRanking, KeepMask, PrunableNetwork


def _frozen(keep: KeepMask) -> tuple[np.ndarray, ...]:
    masks = []
    for mask in keep:
        array = np.array(mask, dtype=bool)
        array.flags.writeable = False
        masks.append(array)
    return tuple(masks)


def _not_scored() -> float:
    raise RuntimeError("this EpisodeState has no evaluator: build it with evaluate=... to read its score")


@dataclass(frozen=True)
class EpisodeState:
    """The episode after ``group_index`` decisions (read-only).

    Attributes:
        network: the network's static description: groups (``network.groups``), layers,
            original MACs/params and the analytic counter ``network.macs_params(keep)``.
        importance: per-channel importance of the groups for the current weights.
        macs_budget: fraction of the original MACs the pruned network may keep.
        params_budget: fraction of the original parameters it may keep (1.0: no parameter budget; AMC's
            model-size mode with ``macs_budget=1.0``).
        score_before: reward-split score (the task's metric, e.g. accuracy) of the unpruned network, in [0, 1].
        group_index: the group decided next (``network.num_groups`` once the episode is done).
        keep: one read-only boolean keep-mask per group (undecided groups keep everything).
        macs, params: of the network as decided so far.
        previous_macs: MACs before the last decision (equal to ``macs`` before any decision).
        previous_rate: pruned fraction of the group decided last (0 before any decision).
        evaluate: scores ``keep`` on the reward split; read through :attr:`score`.
    """

    network: PrunableNetwork = field(repr=False)
    importance: ImportanceRanking = field(repr=False, compare=False)
    macs_budget: float
    score_before: float
    group_index: int
    keep: tuple[np.ndarray, ...] = field(repr=False)
    macs: int
    params: int
    previous_macs: int
    previous_rate: float
    evaluate: Callable[[], float] = field(default=_not_scored, repr=False, compare=False)
    params_budget: float = 1.0

    @classmethod
    def initial(cls, network: PrunableNetwork, importance: ImportanceRanking, macs_budget: float,
                score_before: float = 1.0, evaluate: Callable[[], float] = _not_scored,
                params_budget: float = 1.0) -> EpisodeState:
        """The state before the first decision: every channel kept."""
        return cls(network, importance, macs_budget, score_before, 0, _frozen(network.full_mask()),
                   network.original_macs, network.original_params, network.original_macs, 0.0, evaluate, params_budget)

    def decide(self, keep: np.ndarray, evaluate: Callable[[KeepMask], float] | None = None) -> EpisodeState:
        """The state after deciding group ``group_index`` with the boolean ``keep`` (no budget logic here)."""
        if self.done:
            raise RuntimeError("the episode has ended: no group is left to decide")
        masks = list(self.keep)
        masks[self.group_index] = keep
        masks_tuple = _frozen(masks)
        macs, params = self.network.macs_params(masks_tuple)
        rate = 1.0 - float(np.count_nonzero(keep)) / len(keep)
        score = _not_scored if evaluate is None else (lambda: evaluate(masks_tuple))
        return replace(self, group_index=self.group_index + 1, keep=masks_tuple, macs=macs, params=params,
                       previous_macs=self.macs, previous_rate=rate, evaluate=score)

    # ----------------------------------------------------------- derived facts
    @property
    def num_groups(self) -> int:
        """Number of decisions in an episode."""
        return self.network.num_groups

    @property
    def done(self) -> bool:
        """Whether every group has been decided."""
        return self.group_index >= self.network.num_groups

    @property
    def last_group_index(self) -> int:
        """The group decided last (-1 before any decision)."""
        return self.group_index - 1

    @property
    def macs_before(self) -> int:
        """MACs of the unpruned network."""
        return self.network.original_macs

    @property
    def params_before(self) -> int:
        """Params of the unpruned network."""
        return self.network.original_params

    @property
    def macs_ratio(self) -> float:
        """MACs kept / original MACs."""
        return self.macs / self.network.original_macs

    @property
    def params_ratio(self) -> float:
        """Params kept / original params."""
        return self.params / self.network.original_params

    @property
    def budget_met(self) -> bool:
        """Whether the network as decided so far keeps at most ``macs_budget`` of the MACs and ``params_budget`` of
        the parameters."""
        return (self.macs <= self.macs_budget * self.network.original_macs
                and self.params <= self.params_budget * self.network.original_params)

    @property
    def kept_fractions(self) -> np.ndarray:
        """Fraction of channels kept per group (1.0 for groups not decided yet)."""
        return np.array([mask.mean() for mask in self.keep])

    @cached_property
    def score(self) -> float:
        """Reward-split score (the task's metric) of the network as decided so far (evaluated on first access, then cached)."""
        return float(self.evaluate())

    @property
    def error(self) -> float:
        """1 - score (for classification: the error rate)."""
        return 1.0 - self.score

    @property
    def score_drop(self) -> float:
        """score_before - score (positive when pruning hurts)."""
        return self.score_before - self.score
