"""Reward shapings, registered by name and chosen at ``gymnasium.make(..., reward=NAME)``.

A reward is a function of one :class:`RewardContext` (plus optional keyword
parameters passed as ``reward_kwargs``) returning a float. Register your own::

    import prune_gym

    @prune_gym.register_reward("accuracy-per-mac")
    def accuracy_per_mac(ctx: prune_gym.RewardContext) -> float:
        return ctx.accuracy / ctx.macs_ratio if ctx.done else 0.0

    env = gymnasium.make("prune_gym:LayerRate-v0", reward="accuracy-per-mac")

``ctx.accuracy`` is evaluated lazily on the reward split: a sparse reward that
reads it only when ``ctx.done`` costs one evaluation per episode, a dense one
that reads it at every step costs one per step (repeated masks hit the cache).

Presets (sparse = non-zero only at the last step of an episode):

=================  ======  ====================================================
name               kind    formula
=================  ======  ====================================================
``accuracy``       sparse  AMC's R_err = -error = -(1 - accuracy)
``amc-flops``      sparse  AMC's R_FLOPs = -error x log(MACs)
``amc-params``     sparse  AMC's R_Param = -error x log(params)
``try-and-learn``  dense   psi x phi, psi = (b - (A_base - A)) / b, phi = log(1/C),
                           C = kept fraction of the group just decided (arXiv 1801.07365)
``shaped``         dense   -error at the end plus potential-based shaping
                           Phi(s') - Phi(s), Phi = weight x MACs saved / MACs to save
                           (Ng et al. 1999): returns equal ``accuracy``'s, so the
                           optimal policy is unchanged, but every step gets signal
``budget-penalty`` sparse  -error - penalty x max(0, MACs ratio - budget) / budget
=================  ======  ====================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np

RewardFunction = Callable[..., float]


@dataclass(frozen=True)
class RewardContext:
    """Everything a reward may look at after one step. Ratios are pruned / original.

    Attributes:
        accuracy_before: reward-split accuracy of the unpruned network, in [0, 1].
        macs_before, params_before: MACs (multiply-accumulates) and params of the unpruned network.
        macs, params: of the network as decided so far (undecided groups fully kept).
        macs_previous: MACs before this step's decision.
        macs_budget: fraction of the original MACs the pruned network may keep.
        step: index of this step in the episode (= index of the group just decided).
        num_groups: number of steps in an episode.
        done: whether this was the last step.
        kept_fractions: fraction of channels kept per group (1.0 for groups not decided yet).
    """

    accuracy_before: float
    macs_before: int
    params_before: int
    macs: int
    params: int
    macs_previous: int
    macs_budget: float
    step: int
    num_groups: int
    done: bool
    kept_fractions: np.ndarray
    evaluate: Callable[[], float] = field(repr=False, compare=False)

    @cached_property
    def accuracy(self) -> float:
        """Reward-split accuracy of the network as decided so far (evaluated on first access)."""
        return float(self.evaluate())

    @property
    def group(self) -> int:
        """Index of the group decided at this step."""
        return self.step

    @property
    def error(self) -> float:
        """1 - accuracy."""
        return 1.0 - self.accuracy

    @property
    def accuracy_drop(self) -> float:
        """accuracy_before - accuracy (positive when pruning hurts)."""
        return self.accuracy_before - self.accuracy

    @property
    def macs_ratio(self) -> float:
        """MACs kept / original MACs."""
        return self.macs / self.macs_before

    @property
    def params_ratio(self) -> float:
        """Params kept / original params."""
        return self.params / self.params_before


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward: the function, whether it is sparse, and its one-line description."""

    name: str
    function: RewardFunction
    sparse: bool
    description: str


_REGISTRY: dict[str, RewardSpec] = {}


def register_reward(
    name: str,
    function: RewardFunction | None = None,
    *,
    sparse: bool = False,
    overwrite: bool = False,
) -> Any:
    """Register a reward under ``name``; usable as ``@register_reward("name")`` or directly.

    Args:
        name: the name passed as ``reward=`` at ``gymnasium.make``.
        function: ``f(ctx: RewardContext, **reward_kwargs) -> float``.
        sparse: documentation flag: the reward is non-zero only when ``ctx.done``.
        overwrite: allow replacing an existing registration.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False.
    """

    def decorate(fn: RewardFunction) -> RewardFunction:
        if not callable(fn):
            raise TypeError(f"reward {name!r} must be callable, got {type(fn).__name__}")
        if name in _REGISTRY and not overwrite:
            raise ValueError(f"a reward named {name!r} is already registered; pass overwrite=True to replace it")
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = RewardSpec(name, fn, sparse, description)
        return fn

    return decorate if function is None else decorate(function)


def list_rewards() -> list[str]:
    """Names of all registered rewards."""
    return sorted(_REGISTRY)


def get_reward(reward: str | RewardFunction) -> RewardSpec:
    """Resolve a reward name or callable to its :class:`RewardSpec`.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    if callable(reward):
        return RewardSpec(getattr(reward, "__name__", "custom"), reward, False, "user-supplied callable")
    try:
        return _REGISTRY[reward]
    except (KeyError, TypeError):
        raise ValueError(f"unknown reward {reward!r}; registered rewards: {list_rewards()} (or pass a callable)") from None


@register_reward("accuracy", sparse=True)
def accuracy_reward(ctx: RewardContext) -> float:
    """AMC's R_err: -error of the pruned network at the end of the episode."""
    return -ctx.error if ctx.done else 0.0


@register_reward("amc-flops", sparse=True)
def amc_flops_reward(ctx: RewardContext) -> float:
    """AMC's R_FLOPs: -error x log(MACs) at the end of the episode."""
    return -ctx.error * math.log(ctx.macs) if ctx.done else 0.0


@register_reward("amc-params", sparse=True)
def amc_params_reward(ctx: RewardContext) -> float:
    """AMC's R_Param: -error x log(params) at the end of the episode."""
    return -ctx.error * math.log(ctx.params) if ctx.done else 0.0


@register_reward("try-and-learn")
def try_and_learn_reward(ctx: RewardContext, drop_allowance: float = 0.02) -> float:
    """Try-and-learn psi x phi for the group just decided; ``drop_allowance`` is the paper's b."""
    if drop_allowance <= 0:
        raise ValueError(f"try-and-learn drop_allowance (b) must be > 0, got {drop_allowance}")
    psi = (drop_allowance - ctx.accuracy_drop) / drop_allowance
    phi = math.log(1.0 / ctx.kept_fractions[ctx.step])
    return psi * phi


def _saving_potential(macs: int, ctx: RewardContext, weight: float) -> float:
    """Phi = weight x (MACs saved so far) / (MACs the budget asks to save)."""
    to_save = max(ctx.macs_before * (1.0 - ctx.macs_budget), 1.0)
    return weight * (ctx.macs_before - macs) / to_save


@register_reward("shaped")
def shaped_reward(ctx: RewardContext, weight: float = 1.0) -> float:
    """-error at the end plus potential-based MACs shaping (Phi(terminal) = 0), dense."""
    before = _saving_potential(ctx.macs_previous, ctx, weight)
    after = 0.0 if ctx.done else _saving_potential(ctx.macs, ctx, weight)
    return after - before + (-ctx.error if ctx.done else 0.0)


@register_reward("budget-penalty", sparse=True)
def budget_penalty_reward(ctx: RewardContext, penalty: float = 1.0) -> float:
    """-error minus ``penalty`` x relative MACs excess over the budget, at the end of the episode."""
    if not ctx.done:
        return 0.0
    return -ctx.error - penalty * max(0.0, ctx.macs_ratio - ctx.macs_budget) / ctx.macs_budget
