"""The episode loop shared by prune_gym's environments: one step per prunable group.

A subclass declares its ``action_space`` and turns an action into a keep-mask
for the current group (:meth:`PruningEnv._decide`); this class validates
actions, enforces the MACs budget, counts MACs/params analytically, scores the
reward split lazily, builds the info dicts and renders the episode.
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prune_gym.observations import get_observation
from prune_gym.pruning import PrunableNetwork, list_importance_criteria, recalibrate_batchnorm
from prune_gym.pruning.batchnorm import batchnorm_layers
from prune_gym.pruning.network import KeepMask
from prune_gym.pruning.evaluation import MaskEvaluator
from prune_gym.rewards import RewardContext, get_reward
from prune_gym.tasks import Task, fit, get_task, recovery_config


def _invalid(argument: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"invalid {argument}={value!r}: expected {expected}")


class PruningEnv(gym.Env):
    """Prune a trained CNN group by group; the episode ends after the last group.

    Args:
        task: a registered task name or a :class:`~prune_gym.tasks.Task`.
        reward: a registered reward name (see ``prune_gym.list_rewards()``) or a callable of a RewardContext.
        reward_kwargs: keyword parameters of the reward function (e.g. ``{"drop_allowance": 0.02}``).
        macs_budget: fraction of the original MACs the pruned network may keep, in (0, 1].
        enforce_budget: clip decisions as AMC does so the budget stays reachable.
        max_rate: largest fraction of a group's channels the budget enforcement assumes later groups can lose.
        observation: a registered observation name (``prune_gym.list_observations()``).
        criterion: filter importance ranking used to turn rates into masks and to fill dropped budget.
        reward_samples: how many images of the task's reward split to score on (None = all).
        bn_recalibration: re-estimate each candidate's BatchNorm statistics on this many training
            images before scoring it (adaptive BN, EagleEye 2020; 0 = off, AMC's protocol). Makes
            the accuracy of heavily pruned BatchNorm networks (ResNets) informative.
        batch_size: evaluation batch size.
        device: torch device for the network and the reward split.
        render_mode: ``None`` or ``"ansi"`` (a text table of the episode's decisions).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    default_observation = "layer"

    def __init__(
        self,
        task: str | Task = "lenet5-digits",
        reward: str | Callable[..., float] = "accuracy",
        reward_kwargs: dict[str, Any] | None = None,
        macs_budget: float = 0.5,
        enforce_budget: bool = True,
        max_rate: float = 0.8,
        observation: str | None = None,
        criterion: str = "l1",
        reward_samples: int | None = 1000,
        bn_recalibration: int = 0,
        batch_size: int = 100,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise _invalid("render_mode", render_mode, f"None or one of {self.metadata['render_modes']}")
        if not isinstance(macs_budget, (int, float)) or not 0.0 < macs_budget <= 1.0:
            raise _invalid("macs_budget", macs_budget, "a fraction of the original MACs in (0, 1], e.g. 0.5")
        if not isinstance(max_rate, (int, float)) or not 0.0 < max_rate < 1.0:
            raise _invalid("max_rate", max_rate, "a pruned fraction in (0, 1), e.g. 0.8")
        if criterion not in list_importance_criteria():
            raise _invalid("criterion", criterion, f"one of {list_importance_criteria()}")
        if reward_samples is not None and (not isinstance(reward_samples, int) or reward_samples < 1):
            raise _invalid("reward_samples", reward_samples, "a positive number of images, or None for the whole reward split")
        if not isinstance(bn_recalibration, int) or bn_recalibration < 0:
            raise _invalid("bn_recalibration", bn_recalibration, "a number of training images >= 0 (0 = off), e.g. 100")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise _invalid("batch_size", batch_size, "a positive integer")
        self.reward_spec = get_reward(reward)
        self.reward_kwargs = dict(reward_kwargs or {})
        self.task = get_task(task)
        self.device = torch.device(device)
        self.macs_budget = float(macs_budget)
        self.enforce_budget = bool(enforce_budget)
        self.max_rate = float(max_rate)
        self.criterion = criterion
        self.render_mode = render_mode

        model: nn.Module = self.task.load_model(device=self.device, progress=False)
        splits = self.task.splits(device=self.device)
        count = len(splits.reward_x) if reward_samples is None else min(reward_samples, len(splits.reward_x))
        self.network = PrunableNetwork(model, splits.reward_x[:1])
        recalibration_x = splits.train_x[:bn_recalibration] if bn_recalibration else None
        if bn_recalibration and not batchnorm_layers(model):
            raise _invalid("bn_recalibration", bn_recalibration, f"0: the model of task {self.task.name!r} has no BatchNorm layer")
        self.evaluator = MaskEvaluator(self.network, splits.reward_x[:count], splits.reward_y[:count], batch_size=batch_size,
                                       recalibration_x=recalibration_x)
        self.accuracy_before = self.evaluator.accuracy(self.network.full_mask())
        self.max_filters = max(group.num_channels for group in self.network.groups)
        self._min_keep = [max(1, int(np.ceil(g.num_channels * (1.0 - self.max_rate)))) for g in self.network.groups]
        self._observation_cls = get_observation(observation or self.default_observation)
        self.weights_changed = False
        self._derive_from_weights()
        self.action_space = self._action_space()
        self.observation_space = self.observer.space
        self._last_keep: list[np.ndarray] | None = None
        self._start_episode()

    def _derive_from_weights(self) -> None:
        """(Re)build what depends on the weights: importance rankings, budget fallbacks, observations."""
        self.network.clear_importance()
        self._most_pruned = [self.network.keep_most_important(g, n, self.criterion) for g, n in enumerate(self._min_keep)]
        self.observer = self._observation_cls(self)

    def fine_tune(self, keep: KeepMask, steps: int = 100, lr: float | None = None, seed: int = 0) -> float:
        """Short recovery training of the network pruned by ``keep``; the tuned weights become the env's.

        The fine-tuning between layers of try-and-learn (arXiv 1801.07365). The
        full-width model trains on the task's *train* split with the dropped
        channels zeroed by mask hooks, for ``steps`` batches of the task's
        optimiser at ``lr`` (default: a tenth of the task's pretraining rate).
        Afterwards rewards, importance rankings, observations and :meth:`export`
        use the tuned weights, and :meth:`reset` no longer restores the
        pretrained ones (make a new environment for those). ``accuracy_before``
        stays the unpruned pretrained network's, so rewards keep measuring the
        drop from the original. The evaluation cache is cleared.

        Returns:
            The reward-split accuracy of ``keep`` after tuning.
        """
        if not isinstance(steps, int) or steps < 1:
            raise _invalid("steps", steps, "a positive number of training batches")
        config = recovery_config(self.task.training) if lr is None else recovery_config(self.task.training, lr=lr)
        self.network.apply_masks(keep)  # validates the mask before anything changes
        try:
            fit(self.network.model, self.task.splits(device=self.device), config, seed=seed, max_steps=steps,
                progress=False, description="fine-tune")
        finally:
            self.network.remove_masks()
        self._weights_replaced()
        return self.evaluator.accuracy(keep)

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Replace the network's weights (e.g. a run's fine-tuned ``weights.pt``); same effects as :meth:`fine_tune`."""
        self.network.model.load_state_dict(state_dict, strict=True)
        self._weights_replaced()

    def _weights_replaced(self) -> None:
        self.weights_changed = True
        self.evaluator.reload()
        self._derive_from_weights()

    # ------------------------------------------------------------ subclasses
    def _action_space(self) -> gym.spaces.Space:
        """The action space, built once the network (and so ``max_filters``) is known."""
        raise NotImplementedError

    def _decide(self, action: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Turn a validated action into a keep-mask for the group at ``step_index`` plus info entries."""
        raise NotImplementedError

    def _validate(self, action: Any) -> tuple[np.ndarray, int]:
        """Check shape and finiteness; clip into the Box. Returns the array and how many values were clipped."""
        array = np.asarray(action)
        space = self.action_space
        if array.shape != space.shape:
            raise ValueError(f"action of shape {array.shape} does not fit the action space {space}")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"action must be numeric for the action space {space}, got dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"action contains NaN or inf; expected values in the action space {space}")
        if isinstance(space, gym.spaces.Box):
            clipped = np.clip(array, space.low, space.high)
            return clipped, int(np.count_nonzero(clipped != array))
        if not np.all((array == 0) | (array == 1)):
            raise ValueError(f"action must contain only 0 and 1 for the action space {space}")
        return array, 0

    # ----------------------------------------------------------- episode loop
    def _start_episode(self) -> None:
        self.step_index = 0
        self.keep = self.network.full_mask()
        self.current_macs, self.current_params = self.network.original_macs, self.network.original_params
        self.previous_rate = 0.0
        self.decisions: list[dict[str, Any]] = []
        self._done = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode: every channel kept, the first group to decide."""
        super().reset(seed=seed)
        self._start_episode()
        return self.observer.observe(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Decide the current group, then move to the next; the last group ends the episode."""
        if self._done:
            raise RuntimeError("the episode has ended: call reset() before step()")
        t = self.step_index
        group = self.network.groups[t]
        keep, extra = self._decide(action)
        proposed_kept = int(keep.sum())
        if not keep.any():
            keep = self.network.keep_most_important(t, 1, self.criterion)
        if self.enforce_budget:
            keep = self._enforce_budget(t, keep)
        macs_previous = self.current_macs
        self.keep[t] = keep
        self.current_macs, self.current_params = self.network.macs_params(self.keep)
        rate = 1.0 - keep.sum() / group.num_channels
        self.previous_rate = rate
        self.decisions.append({"group": group.name, "channels": group.num_channels, "kept": int(keep.sum()),
                               "proposed_kept": proposed_kept, "rate": rate})
        self.step_index += 1
        self._done = self.step_index == self.network.num_groups
        snapshot = [mask.copy() for mask in self.keep]
        context = RewardContext(
            accuracy_before=self.accuracy_before,
            macs_before=self.network.original_macs,
            params_before=self.network.original_params,
            macs=self.current_macs,
            params=self.current_params,
            macs_previous=macs_previous,
            macs_budget=self.macs_budget,
            step=t,
            num_groups=self.network.num_groups,
            done=self._done,
            kept_fractions=np.array([m.mean() for m in self.keep]),
            evaluate=lambda: self.evaluator.accuracy(snapshot),
        )
        reward = float(self.reward_spec.function(context, **self.reward_kwargs))
        info = self._info()
        info.update(extra, rate_pruned=rate, kept=int(keep.sum()), budget_clipped=int(keep.sum()) < proposed_kept)
        if self._done:
            self._last_keep = snapshot
            info.update(
                accuracy=context.accuracy,
                accuracy_before=self.accuracy_before,
                kept_channels=[int(m.sum()) for m in snapshot],
                keep_mask=snapshot,
                budget_met=self.current_macs <= self.macs_budget * self.network.original_macs,
            )
        if not np.isfinite(reward):
            raise RuntimeError(f"reward {self.reward_spec.name!r} returned {reward} at step {t}")
        return self.observer.observe(), reward, self._done, False, info

    def _enforce_budget(self, t: int, keep: np.ndarray) -> np.ndarray:
        """Drop the least important kept channels of group ``t`` until the budget is reachable.

        Reachable means: if every later group lost ``max_rate`` of its channels,
        the network would keep at most ``macs_budget`` of its MACs (AMC's
        budget-constrained action). Never drops below the group's ``max_rate`` floor.
        """
        target = self.macs_budget * self.network.original_macs
        trial = self.keep[:t + 1] + self._most_pruned[t + 1:]

        def macs_with(n_keep: int) -> int:
            trial[t] = self._top_of(t, keep, n_keep)
            return self.network.macs_params(trial)[0]

        n_kept = int(keep.sum())
        floor = min(self._min_keep[t], n_kept)
        if macs_with(n_kept) <= target:
            return keep
        low, high = floor, n_kept  # invariant: macs_with(high) > target
        while high - low > 1:
            middle = (low + high) // 2
            if macs_with(middle) <= target:
                low = middle
            else:
                high = middle
        return self._top_of(t, keep, low)

    def _top_of(self, t: int, keep: np.ndarray, n_keep: int) -> np.ndarray:
        """The ``n_keep`` most important channels among those ``keep`` selects in group ``t``."""
        scores = np.where(keep, self.network.importance(self.criterion)[t], -np.inf)
        result = np.zeros_like(keep)
        result[np.argsort(-scores, kind="stable")[:n_keep]] = True
        return result

    def _info(self) -> dict[str, Any]:
        original_macs, original_params = self.network.original_macs, self.network.original_params
        return {
            "group_index": self.step_index,
            "macs": self.current_macs,
            "params": self.current_params,
            "macs_ratio": self.current_macs / original_macs,
            "params_ratio": self.current_params / original_params,
            "cache_hits": self.evaluator.hits,
        }

    # --------------------------------------------------------------- results
    def export(self) -> nn.Module:
        """The physically pruned network of the last finished episode (a new module; the original is untouched).

        With ``bn_recalibration``, its BatchNorm statistics are the recalibrated ones the reward was scored with.
        """
        if self._last_keep is None:
            raise RuntimeError("no episode has finished yet: run one to the end before export()")
        pruned = self.network.export(self._last_keep)
        if self.evaluator.recalibration_x is not None:
            recalibrate_batchnorm(pruned, self.evaluator.recalibration_x)
        return pruned

    @property
    def last_keep_mask(self) -> list[np.ndarray] | None:
        """The keep-mask of the last finished episode (one boolean array per group)."""
        return None if self._last_keep is None else [m.copy() for m in self._last_keep]

    def render(self) -> str | None:
        """A text table of the episode's decisions so far (``render_mode="ansi"``)."""
        if self.render_mode != "ansi":
            return None
        lines = [f"{'#':>3}  {'group':<28} {'channels':>8} {'kept':>6} {'pruned':>7}"]
        for index, row in enumerate(self.decisions):
            lines.append(f"{index:>3}  {row['group']:<28} {row['channels']:>8} {row['kept']:>6} {row['rate']:>7.1%}")
        lines.append(f"MACs {self.current_macs:,} ({self.current_macs / self.network.original_macs:.1%} of original), "
                     f"params {self.current_params:,} ({self.current_params / self.network.original_params:.1%}), "
                     f"budget {self.macs_budget:.0%}")
        return "\n".join(lines) + "\n"
