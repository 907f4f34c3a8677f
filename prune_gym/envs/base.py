"""The episode loop shared by prune_gym's environments: one step per prunable group.

A subclass declares its action types (``action_types``: name -> space class),
builds its ``action_space`` and turns an action into a keep-mask for the group
``state.group_index`` (:meth:`PruningEnv._decide`); this class validates
actions, enforces the MACs budget, keeps the :class:`~prune_gym.state.EpisodeState`
that observations and rewards read, scores the reward split lazily, builds the
info dicts and renders the episode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prune_gym.observations import get_observation
from prune_gym.pruning import ImportanceRanking, PrunableNetwork, RateBudget, get_importance, recalibrate_batchnorm
from prune_gym.pruning.batchnorm import batchnorm_layers
from prune_gym.pruning.evaluation import MaskEvaluator
from prune_gym.pruning.network import KeepMask
from prune_gym.pruning.recovered import RecoveringEvaluator
from prune_gym.rewards import get_reward, raised_by_scoring
from prune_gym.state import EpisodeState
from prune_gym.tasks import Task, get_task, recover
from prune_gym.validation import check_bool, check_choice, check_device, check_int, check_real, invalid

if TYPE_CHECKING:
    from prune_gym.envs.rendering import EpisodeFigure

# A process forked from one whose torch thread pool has run (gymnasium's AsyncVectorEnv forks by default, after
# building one environment in the parent) deadlocks in its first parallel torch operation. Forked children run
# torch on one thread: they never touch the inherited pool, and vectorised environments are parallel already.
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


class PruningEnv(gym.Env):
    """Prune a trained CNN group by group; the episode ends after the last group.

    Args:
        task: a registered task name or a :class:`~prune_gym.tasks.Task`.
        reward: a registered reward name (see ``prune_gym.list_rewards()``), ``module:function``
            or a callable of an :class:`~prune_gym.state.EpisodeState`.
        reward_kwargs: keyword parameters of the reward function (e.g. ``{"drop_allowance": 0.02}``),
            checked against its signature here.
        macs_budget: fraction of the original MACs the pruned network may keep, in (0, 1].
        params_budget: fraction of the original parameters it may keep, in (0, 1] (1.0: none). Enforced
            like the MACs budget; with ``macs_budget=1.0`` it is AMC's model-size mode.
        enforce_budget: clip decisions as AMC does so the budget stays reachable.
        max_rate: largest fraction of a group's channels the budget enforcement assumes later groups can lose.
        observation: a registered observation name (``prune_gym.list_observations()``).
        criterion: filter importance ranking used to turn rates into masks and to fill dropped budget.
        reward_samples: how many images of the task's reward split to score on (None = all).
        bn_recalibration: re-estimate each candidate's BatchNorm statistics on this many training
            images before scoring it (adaptive BN, EagleEye 2020; 0 = off, AMC's protocol). Makes
            the score of heavily pruned BatchNorm networks (ResNets) informative.
        recovery_steps: fine-tune each candidate (a copy) for this many training batches before
            scoring it (0 = off): a slower proxy that tracks the score after fine-tuning more closely.
        batch_size: evaluation batch size.
        device: torch device for the network and the reward split.
        render_mode: ``None``, ``"ansi"`` (a text table of the episode's decisions) or ``"rgb_array"`` (a
            640x360 image of the kept fraction of every group and of the MACs against the budget,
            :class:`~prune_gym.envs.rendering.EpisodeFigure`); ``gym.make(..., render_mode="human")``
            shows the ``"rgb_array"`` frames in a window (gymnasium's ``HumanRendering``, needs pygame).
        action_type: one of the environment's ``action_types`` (default: its first).
    """

    # one frame per decision; RecordVideo plays 4 decisions a second
    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012 (gymnasium's spelling)
    default_observation: ClassVar[str] = "layer"
    action_types: ClassVar[dict[str, type[gym.spaces.Space]]] = {}

    def __init__(
        self,
        task: str | Task = "lenet5-digits",
        reward: str | Callable[..., float] = "error",
        reward_kwargs: dict[str, Any] | None = None,
        macs_budget: float = 0.5,
        params_budget: float = 1.0,
        enforce_budget: bool = True,
        max_rate: float = 0.8,
        observation: str | None = None,
        criterion: str = "l1",
        reward_samples: int | None = 1000,
        bn_recalibration: int = 0,
        recovery_steps: int = 0,
        batch_size: int = 100,
        device: str | torch.device = "cpu",
        render_mode: Literal["ansi", "rgb_array"] | None = None,
        action_type: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise invalid("render_mode", render_mode, f"None or one of {self.metadata['render_modes']} (for a window, "
                                                      "gym.make(..., render_mode='human'), which needs pygame)")
        self.action_type = check_choice("action_type", self.default_action_type() if action_type is None else action_type,
                                        self.action_types)
        self.macs_budget = check_real("macs_budget", macs_budget, 0.0, 1.0, low_open=True,
                                      expected="a fraction of the original MACs in (0, 1], e.g. 0.5")
        self.params_budget = check_real("params_budget", params_budget, 0.0, 1.0, low_open=True,
                                        expected="a fraction of the original parameters in (0, 1], e.g. 0.3 (1.0: none)")
        self.enforce_budget = check_bool("enforce_budget", enforce_budget)
        self.max_rate = check_real("max_rate", max_rate, 0.0, 1.0, low_open=True, high_open=True,
                                   expected="a pruned fraction in (0, 1), e.g. 0.8")
        get_importance(criterion if isinstance(criterion, str) else repr(criterion))
        if reward_samples is not None:
            reward_samples = check_int("reward_samples", reward_samples, 1,
                                       "a positive number of images, or None for the whole reward split")
        bn_recalibration = check_int("bn_recalibration", bn_recalibration, 0, "a number of training images >= 0 (0 = off), e.g. 100")
        recovery_steps = check_int("recovery_steps", recovery_steps, 0, "a number of fine-tuning batches >= 0 (0 = off), e.g. 20")
        batch_size = check_int("batch_size", batch_size, 1, "a positive integer")
        if reward_kwargs is not None and not isinstance(reward_kwargs, dict):
            raise invalid("reward_kwargs", reward_kwargs, "a dict of the reward's keyword parameters")
        self.reward_spec = get_reward(reward)
        self.reward_kwargs = dict(reward_kwargs or {})
        self.reward_spec.check_kwargs(self.reward_kwargs)
        self.device = check_device("device", device)
        self.task = get_task(task)
        self.criterion = criterion
        self.render_mode = render_mode
        self._figure: EpisodeFigure | None = None  # built by the first "rgb_array" render
        self.observation_name = observation or self.default_observation
        observation_cls = get_observation(self.observation_name)

        model: nn.Module = self.task.load_model(device=self.device, progress=False)
        splits = self.task.splits(device=self.device)
        if bn_recalibration and not batchnorm_layers(model):
            raise invalid("bn_recalibration", bn_recalibration, f"0: the model of task {self.task.name!r} has no BatchNorm layer")
        count = len(splits.reward_x) if reward_samples is None else min(reward_samples, len(splits.reward_x))
        self.network = PrunableNetwork(model, splits.reward_x[:1])
        recalibration_x = splits.train_x[:bn_recalibration] if bn_recalibration else None
        reward_split = (self.network, splits.reward_x[:count], splits.reward_y[:count])
        evaluation: dict[str, Any] = dict(batch_size=batch_size, recalibration_x=recalibration_x, metric=self.task.metric)
        self.evaluator = (RecoveringEvaluator(*reward_split, splits=splits, training=self.task.training, recovery_steps=recovery_steps,
                                              **evaluation) if recovery_steps else MaskEvaluator(*reward_split, **evaluation))
        self.score_before = self.evaluator.score(self.network.full_mask())
        self._reference_evaluations = self.evaluator.misses  # the environment's own, charged to no agent
        self.max_filters = max(group.num_channels for group in self.network.groups)
        self._min_keep = [max(1, int(np.ceil(g.num_channels * (1.0 - self.max_rate)))) for g in self.network.groups]
        self.weights_changed = False
        self._new_ranking()
        self.observer = observation_cls(self.network)
        self.action_space = self._action_space()
        self.observation_space = self.observer.space
        self.last_state: EpisodeState | None = None
        self.state = self._initial_state()

    @classmethod
    def default_action_type(cls) -> str:
        """The action type used when ``action_type`` is not given (the first of ``action_types``)."""
        return next(iter(cls.action_types))

    def _new_ranking(self) -> None:
        """Rank the filters of the current weights; fix the most-pruned fallback of the budget enforcement."""
        self.ranking = ImportanceRanking(self.network)
        self._most_pruned = [self.ranking.keep_most_important(g, n, self.criterion) for g, n in enumerate(self._min_keep)]

    def rate_budget(self) -> RateBudget:
        """Budget-feasible per-group rates for this environment's network, ranking, budget and ``max_rate``."""
        return RateBudget(self.network, self.ranking, self.criterion, self.macs_budget, self.max_rate, self.params_budget)

    def _initial_state(self) -> EpisodeState:
        return EpisodeState.initial(self.network, self.ranking, self.macs_budget, self.score_before,
                                    evaluate=lambda: self.evaluator.score(self.network.full_mask()),
                                    params_budget=self.params_budget)

    def recover(self, keep: KeepMask, steps: int = 100, lr: float | None = None, seed: int = 0) -> float:
        """Short recovery training of the network pruned by ``keep``; the tuned weights become the env's.

        The fine-tuning between layers of try-and-learn (arXiv 1801.07365). The
        full-width model trains on the task's *train* split with the dropped
        channels zeroed by mask hooks, for ``steps`` batches of the task's
        optimiser at ``lr`` (default: a tenth of the task's pretraining rate).
        Afterwards rewards, importance rankings, observations and :meth:`export`
        use the tuned weights, and :meth:`reset` no longer restores the
        pretrained ones (make a new environment for those). ``score_before``
        stays the unpruned pretrained network's, so rewards keep measuring the
        drop from the original. The evaluation cache is cleared.

        Returns:
            The reward-split score of ``keep`` after tuning.
        """
        steps = check_int("steps", steps, 1, "a positive number of training batches")
        overrides: dict[str, Any] = {} if lr is None else {"lr": lr}
        self.network.apply_masks(keep)  # validates the mask before anything changes
        try:
            recover(self.network.model, self.task.splits(device=self.device), self.task.training, steps=steps, seed=seed,
                      progress=False, metric=self.task.metric, **overrides)
        finally:
            self.network.remove_masks()
        self._weights_replaced()
        return self.evaluator.score(keep)

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Replace the network's weights (e.g. a run's fine-tuned ``weights.pt``); same effects as :meth:`recover`."""
        self.network.model.load_state_dict(state_dict, strict=True)
        self._weights_replaced()

    def _weights_replaced(self) -> None:
        self.weights_changed = True
        self.evaluator.reload()
        self._new_ranking()
        self.state = replace(self.state, importance=self.ranking)

    # ------------------------------------------------------------ subclasses
    def _action_space(self) -> gym.spaces.Space:
        """The action space of ``self.action_type``, built once the network (and so ``max_filters``) is known."""
        raise NotImplementedError

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Turn a validated action into a keep-mask for the group ``state.group_index`` plus info entries."""
        raise NotImplementedError

    def _validate(self, action: Any) -> tuple[np.ndarray, int]:
        """Check shape and finiteness; clip into a Box. Returns the array and how many values were clipped."""
        array = np.asarray(action)
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete) and array.shape == (1,):
            array = array.reshape(())
        if array.shape != space.shape:
            raise ValueError(f"action of shape {array.shape} does not fit the action space {space}")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"action must be numeric for the action space {space}, got dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"action contains NaN or inf; expected values in the action space {space}")
        if isinstance(space, gym.spaces.Box):
            clipped = np.clip(array, space.low, space.high)
            return clipped, int(np.count_nonzero(clipped != array))
        if isinstance(space, gym.spaces.Discrete):
            if array != np.round(array) or not space.contains(int(array)):
                raise ValueError(f"action {array!r} is not in the action space {space}")
            return array.astype(np.int64), 0
        if not np.all((array == 0) | (array == 1)):
            raise ValueError(f"action must contain only 0 and 1 for the action space {space}")
        return array, 0

    # ----------------------------------------------------------- episode loop
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode: every channel kept, the first group to decide."""
        super().reset(seed=seed)
        self.state = self._initial_state()
        return self._observe(self.state), self._info()

    def _observe(self, state: EpisodeState) -> np.ndarray:
        """The observer's array for ``state``, checked: an observation that raises, or returns the wrong shape or
        NaN/inf, fails in one line naming it (an error of the score's evaluation propagates unchanged)."""
        try:
            observation = self.observer.observe(state)
        except Exception as error:
            if raised_by_scoring(error):
                raise
            detail = " ".join(str(error).split()) or "(no message)"
            raise ValueError(f"observation {self.observation_name!r} raised {type(error).__name__}: {detail} (before group "
                             f"{state.group_index}): fix the observation") from error
        array = np.asarray(observation)
        space = self.observation_space
        if array.shape != space.shape or array.dtype.kind not in "biuf" or not np.all(np.isfinite(array)):
            problem = (f"an array of shape {array.shape}" if array.shape != space.shape else
                       f"dtype {array.dtype}" if array.dtype.kind not in "biuf" else "NaN or inf")
            raise ValueError(f"observation {self.observation_name!r} returned {problem} before group {state.group_index}: "
                             f"it must return finite numbers in its space {space}")
        return observation

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Decide the group ``state.group_index``, then move to the next; the last group ends the episode.

        Nothing changes when the action or the reward fails: the step can be retried.
        """
        if self.state.done:
            raise RuntimeError("the episode has ended: call reset() before step()")
        t = self.state.group_index
        keep, extra = self._decide(action)
        proposed_kept = int(keep.sum())
        if not keep.any():
            keep = self.ranking.keep_most_important(t, 1, self.criterion)
        if self.enforce_budget:
            keep = self._enforce_budget(t, keep)
        state = self.state.decide(keep, self.evaluator.score)
        reward = self.reward_spec(state, self.reward_kwargs)
        observation = self._observe(state)
        self.state = state
        info = self._info()
        info.update(extra, rate_pruned=state.previous_rate, kept=int(keep.sum()), budget_clipped=int(keep.sum()) < proposed_kept)
        if state.done:
            self.last_state = state
            info.update(
                score=state.score,
                score_before=self.score_before,
                kept_channels=[int(m.sum()) for m in state.keep],
                keep_mask=[m.copy() for m in state.keep],
                budget_met=state.budget_met,
            )
        return observation, reward, state.done, False, info

    def _enforce_budget(self, t: int, keep: np.ndarray) -> np.ndarray:
        """Drop the least important kept channels of group ``t`` until the budget is reachable.

        Reachable means: if every later group lost ``max_rate`` of its channels,
        the network would keep at most ``macs_budget`` of its MACs and ``params_budget`` of its parameters (AMC's
        budget-constrained action). Never drops below the group's ``max_rate`` floor.
        """
        macs_target = self.macs_budget * self.network.original_macs
        params_target = self.params_budget * self.network.original_params
        trial = list(self.state.keep[:t + 1]) + self._most_pruned[t + 1:]
        channels = np.arange(self.network.groups[t].num_channels)

        def fits(n_keep: int) -> bool:  # a group's MACs and params depend on how many channels it keeps, not which
            trial[t] = channels < n_keep
            macs, params = self.network.macs_params(trial)
            return macs <= macs_target and params <= params_target

        n_kept = int(keep.sum())
        floor = min(self._min_keep[t], n_kept)
        if fits(n_kept):
            return keep
        low, high = floor, n_kept  # invariant: fits(high) is False
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return self.ranking.keep_most_important(t, low, self.criterion, among=keep)

    def _info(self) -> dict[str, Any]:
        state = self.state
        return {
            "group_index": state.group_index,
            "macs": state.macs,
            "params": state.params,
            "macs_ratio": state.macs_ratio,
            "params_ratio": state.params_ratio,
            "cache_hits": self.evaluator.hits,
            "evaluations": self.evaluator.misses - self._reference_evaluations,
        }

    # --------------------------------------------------------------- results
    def export(self) -> nn.Module:
        """The physically pruned network of the last finished episode (a new module; the original is untouched).

        With ``bn_recalibration``, its BatchNorm statistics are the recalibrated ones the reward was scored with.
        """
        if self.last_state is None:
            raise RuntimeError("no episode has finished yet: run one to the end before export()")
        pruned = self.network.export(self.last_state.keep)
        if self.evaluator.recalibration_x is not None:
            recalibrate_batchnorm(pruned, self.evaluator.recalibration_x)
        return pruned

    @property
    def last_keep_mask(self) -> list[np.ndarray] | None:
        """The keep-mask of the last finished episode (one boolean array per group)."""
        return None if self.last_state is None else [m.copy() for m in self.last_state.keep]

    def render(self) -> str | np.ndarray | None:
        """The episode so far: a text table (``"ansi"``), a (360, 640, 3) uint8 image (``"rgb_array"``), or None."""
        if self.render_mode == "rgb_array":
            if self._figure is None:
                from prune_gym.envs.rendering import EpisodeFigure  # matplotlib: imported by rendering environments only

                self._figure = EpisodeFigure(self.state)
            return self._figure.draw(self.state)
        if self.render_mode != "ansi":
            return None
        state, network = self.state, self.network
        lines = [f"{'#':>3}  {'group':<28} {'channels':>8} {'kept':>6} {'pruned':>7}"]
        for group in network.groups[:state.group_index]:
            kept = int(state.keep[group.index].sum())
            lines.append(f"{group.index:>3}  {group.name:<28} {group.num_channels:>8} {kept:>6} {1 - kept / group.num_channels:>7.1%}")
        lines.append(f"MACs {state.macs:,} ({state.macs_ratio:.1%} of original), "
                     f"params {state.params:,} ({state.params_ratio:.1%}), budget {self.macs_budget:.0%} of the MACs"
                     + (f", {self.params_budget:.0%} of the params" if self.params_budget < 1 else ""))
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        """Release the figure of ``"rgb_array"`` rendering (a later render builds a new one)."""
        self._figure = None
        super().close()
