"""Reward shapings, registered by name and chosen at ``gymnasium.make(..., reward=NAME)``.

A reward is a function of the :class:`~prune_gym.state.EpisodeState` after a
step (plus optional keyword parameters passed as ``reward_kwargs``, checked
against its signature at ``make``) returning a finite float. Register your own::

    import prune_gym

    @prune_gym.register_reward("score-per-mac")
    def score_per_mac(state: prune_gym.EpisodeState) -> float:
        return state.score / state.macs_ratio if state.done else 0.0

    env = gymnasium.make("prune_gym:LayerRate-v0", reward="score-per-mac")

or name it without registering: ``reward="my_package.rewards:score_per_mac"``,
or publish it under the ``prune_gym.rewards`` entry-point group.
``state.score`` (the task's metric: accuracy, mean IoU, ...) is evaluated lazily on the reward split: a sparse reward that
reads it only when ``state.done`` costs one evaluation per episode, a dense one
that reads it at every step costs one per step (repeated masks hit the cache).

Presets (sparse = non-zero only at the last step of an episode):

=================  ======  ====================================================
name               kind    formula
=================  ======  ====================================================
``error``          sparse  AMC's R_err = -error = -(1 - score)
``amc-flops``      sparse  AMC's R_FLOPs = -error x log(MACs)
``amc-params``     sparse  AMC's R_Param = -error x log(params)
``try-and-learn``  dense   psi x phi, psi = (b - (A_base - A)) / b, phi = log(1/C),
                           C = kept fraction of the group decided last (arXiv 1801.07365)
``shaped``         dense   -error at the end plus potential-based shaping
                           Phi(s') - Phi(s), Phi = weight x MACs saved / MACs to save
                           (Ng et al. 1999): returns equal ``error``'s, so the
                           optimal policy is unchanged, but every step gets signal
``budget-penalty`` sparse  -error - penalty x max(0, MACs ratio - budget) / budget
=================  ======  ====================================================
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prune_gym.registry import Registry, first_line
from prune_gym.state import EpisodeState
from prune_gym.validation import check_real

RewardFunction = Callable[..., float]
ENTRY_POINT_GROUP = "prune_gym.rewards"


@dataclass(frozen=True)
class RewardSpec:
    """A registered reward: the function, whether it is sparse, and its one-line description."""

    name: str
    function: RewardFunction
    sparse: bool
    description: str

    def check_kwargs(self, reward_kwargs: dict[str, Any]) -> None:
        """Fail now if ``reward_kwargs`` do not fit the function's signature (unknown or missing parameters), or (the
        built-in rewards) hold a value out of its range."""
        try:
            bound = inspect.signature(self.function).bind(None, **reward_kwargs)
        except TypeError as error:
            parameters = [p for p in list(inspect.signature(self.function).parameters)[1:]]
            raise ValueError(f"invalid reward_kwargs={reward_kwargs!r} for reward {self.name!r} ({error}); "
                             f"its parameters: {parameters}") from None
        except ValueError:  # no signature (a builtin): nothing to check
            return
        bound.apply_defaults()
        for parameter, check in _PARAMETER_CHECKS.get(self.function, {}).items():
            check(bound.arguments[parameter])

    def __call__(self, state: EpisodeState, reward_kwargs: dict[str, Any]) -> float:
        """The reward of ``state``, checked to be a finite real number.

        Raises:
            ValueError: the function raised (one line naming the reward and the error; the original is chained), or
                returned something other than a finite real number. An error of the score's evaluation (read through
                ``state.score``) is not the reward's and propagates unchanged.
        """
        try:
            value = self.function(state, **reward_kwargs)
        except Exception as error:
            if raised_by_scoring(error):
                raise
            detail = " ".join(str(error).split()) or "(no message)"
            raise ValueError(f"reward {self.name!r} raised {type(error).__name__}: {detail} (after group "
                             f"{state.last_group_index}): fix the reward function; it must return a finite float "
                             "for every EpisodeState") from error
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"reward {self.name!r} returned {value!r} after group {state.last_group_index}: "
                             "a reward must return a finite float")
        return float(value)


def raised_by_scoring(error: BaseException) -> bool:
    """Whether ``error`` came out of evaluating ``state.score`` (the task's model or data failed, not the reward)."""
    score = EpisodeState.__dict__.get("score")
    getter = getattr(score, "func", None) or getattr(score, "fget", None)  # a cached_property, or a property
    score_code = getattr(getter, "__code__", None)
    frame = error.__traceback__ if score_code is not None else None
    while frame is not None:
        if frame.tb_frame.f_code is score_code:
            return True
        frame = frame.tb_next
    return False


def _adapt(name: str, function: Any) -> RewardSpec:
    if isinstance(function, RewardSpec):
        return function
    if not callable(function):
        raise ValueError(f"reward {name!r} is a {type(function).__name__}, not a function of an EpisodeState")
    return RewardSpec(name, function, False, first_line(function))


_REWARDS: Registry[RewardSpec] = Registry("reward", ENTRY_POINT_GROUP, _adapt,
                                          hint="(or pass 'package.module:function', or a callable)")


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
        function: ``f(state: EpisodeState, **reward_kwargs) -> float``.
        sparse: documentation flag: the reward is non-zero only when ``state.done``.
        overwrite: allow replacing an existing registration.

    Raises:
        ValueError: the name is taken and ``overwrite`` is False.
    """

    return _REWARDS.decorator(name, function, lambda fn: RewardSpec(name, fn, sparse, first_line(fn)), overwrite)


def list_rewards() -> list[str]:
    """Names of all registered rewards (entry points included)."""
    return _REWARDS.names()


def get_reward(reward: str | RewardFunction) -> RewardSpec:
    """Resolve a reward name, ``module:function`` or callable to its :class:`RewardSpec`.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    if callable(reward):
        return RewardSpec(getattr(reward, "__name__", "custom"), reward, False, "user-supplied callable")
    return _REWARDS.get(reward)


@register_reward("error", sparse=True)
def error_reward(state: EpisodeState) -> float:
    """AMC's R_err: -error of the pruned network at the end of the episode."""
    return -state.error if state.done else 0.0


@register_reward("amc-flops", sparse=True)
def amc_flops_reward(state: EpisodeState) -> float:
    """AMC's R_FLOPs: -error x log(MACs) at the end of the episode."""
    return -state.error * math.log(state.macs) if state.done else 0.0


@register_reward("amc-params", sparse=True)
def amc_params_reward(state: EpisodeState) -> float:
    """AMC's R_Param: -error x log(params) at the end of the episode."""
    return -state.error * math.log(state.params) if state.done else 0.0


def _check_drop_allowance(value: Any) -> float:
    return check_real("drop_allowance", value, 0.0, math.inf, low_open=True, high_open=True,
                      expected="a positive drop allowance b (a fraction of the score, e.g. 0.02)")


def _check_weight(value: Any) -> float:
    return check_real("weight", value, 0.0, math.inf, high_open=True,
                      expected="a shaping weight >= 0 (0 = no shaping, the plain error reward), e.g. 1.0")


def _check_penalty(value: Any) -> float:
    return check_real("penalty", value, 0.0, math.inf, high_open=True,
                      expected="a penalty >= 0 per relative MACs excess over the budget, e.g. 1.0")


@register_reward("try-and-learn")
def try_and_learn_reward(state: EpisodeState, drop_allowance: float = 0.02) -> float:
    """Try-and-learn psi x phi for the group decided last; ``drop_allowance`` is the paper's b."""
    drop_allowance = _check_drop_allowance(drop_allowance)
    psi = (drop_allowance - state.score_drop) / drop_allowance
    phi = math.log(1.0 / state.kept_fractions[state.last_group_index])
    return psi * phi


def _saving_potential(macs: int, state: EpisodeState, weight: float) -> float:
    """Phi = weight x (MACs saved so far) / (MACs the budget asks to save)."""
    to_save = max(state.macs_before * (1.0 - state.macs_budget), 1.0)
    return weight * (state.macs_before - macs) / to_save


@register_reward("shaped")
def shaped_reward(state: EpisodeState, weight: float = 1.0) -> float:
    """-error at the end plus potential-based MACs shaping (Phi(terminal) = 0), dense."""
    weight = _check_weight(weight)
    before = _saving_potential(state.previous_macs, state, weight)
    after = 0.0 if state.done else _saving_potential(state.macs, state, weight)
    return after - before + (-state.error if state.done else 0.0)


@register_reward("budget-penalty", sparse=True)
def budget_penalty_reward(state: EpisodeState, penalty: float = 1.0) -> float:
    """-error minus ``penalty`` x relative MACs excess over the budget, at the end of the episode."""
    penalty = _check_penalty(penalty)
    if not state.done:
        return 0.0
    return -state.error - penalty * max(0.0, state.macs_ratio - state.macs_budget) / state.macs_budget


_PARAMETER_CHECKS: dict[Callable[..., Any], dict[str, Callable[[Any], Any]]] = {
    try_and_learn_reward: {"drop_allowance": _check_drop_allowance},
    shaped_reward: {"weight": _check_weight},
    budget_penalty_reward: {"penalty": _check_penalty},
}
"""The built-in rewards' parameter checks, run at ``make`` (``RewardSpec.check_kwargs``) as well as at every call."""
