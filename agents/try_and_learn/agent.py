"""Try-and-learn (Huang et al., "Learning to Prune Filters in Convolutional Neural Networks", arXiv 1801.07365).

Runs on FilterSelect-v0 with binary actions and a dense reward, meant for
``reward="try-and-learn"`` (psi x phi of the group decided last, with
``reward_kwargs={"drop_allowance": b}``). As in the paper:

* **One pruning agent per layer**, learned in network order. While layer ``l``
  learns, earlier layers play their learned decision and later layers keep
  every filter, so the reward of step ``l`` judges layer ``l``'s choice.
* **The agent reads the layer's filter weights**: a small network, shared by
  the layer's filters, maps each filter's weight statistics (the environment's
  feature criteria on the current weights: L1 and L2 norm, standard deviation,
  distance to the geometric median, BatchNorm scale, cluster redundancy; each
  standardised over the layer) to that filter's keep probability, so any width
  works. The paper's network reads the raw weight matrix; the statistics are
  this agent's stated simplification.
* **Trials start at keep probability 0.5**: the paper's agent is a freshly
  initialised network with a sigmoid output, so its first trials keep each
  filter with probability near 0.5 and drop about half the layer; the reward
  (phi = log 2 there) then separates what ``b`` tolerates from what it does
  not within a few updates. ``initial_keep`` sets that start (formerly 0.9:
  trials dropped about 10% of the filters, phi ~ 0.1, and with the
  experiments' 4 updates of 4 trials per layer the keep probabilities fell
  only to 0.75-0.83 on resnet20-slim-fashion-mnist at b = 0.2, never below
  the 0.5 decision threshold, so every ``b`` kept 93-100% of the MACs).
* **REINFORCE with a baseline**: every update samples ``trials_per_update``
  keep/drop vectors (one episode each) and follows the policy gradient with
  the trials' mean reward as baseline, the advantages divided by the
  trials' reward standard deviation (this agent's choice: it makes a step's
  size independent of the reward's scale, which psi's unbounded negative
  side would otherwise let one ruinous trial set).
* **An update budget per layer with a convergence test**: a layer is done
  after ``max_updates_per_layer`` updates, or earlier once the policy is
  nearly deterministic (every filter's keep probability within
  ``convergence`` of 0 or 1). Its decision (probability >= 0.5) is then fixed.
  The paper trains each layer's agent until it converges; a budget that
  stops it earlier (as the CPU-scale experiments do) is this agent's
  deviation, and its decision is then the greedy reading of a policy still
  moving from its 0.5 start.
* **Fine-tuning between layers**, on by default: after each layer's decision
  is fixed, ``env.unwrapped.recover`` trains the network pruned so far for
  ``recovery_steps`` batches; the environment then scores, ranks and exports
  with the tuned weights (``recovery_steps=0`` switches it off).

The trade-off is set by the drop allowance ``b``: a larger ``b`` tolerates a
larger accuracy drop, so the decisions prune more. ``b`` is in the score's
units, a fraction (0.02 = 2 accuracy points; the paper quotes it in points). To reach a MACs budget
instead, search ``b`` with :func:`prune_gym_agents.try_and_learn.fit_drop_allowance`.

Once every layer is learned, further episodes play the decision;
:attr:`TryAndLearnAgent.decision` is that keep-mask (what a caller should
report rather than the best sampled trial). The environment's budget
clipping (``enforce_budget=True``) is applied to the decisions as to any
action; run with ``enforce_budget=False`` to let ``b`` alone decide.

Episodes needed: each layer takes at most ``trials_per_update x
max_updates_per_layer`` trial episodes and one episode that fixes its
decision (and fine-tunes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from prune_gym.observations import feature_criteria
from prune_gym.pruning import UndefinedImportanceError
from prune_gym.validation import check_int, check_real

from ..common import BaseAgent


class FilterPolicy(nn.Module):
    """Keep logits of one layer's filters: the same two-layer network applied to each filter's features.

    The output weights start at zero and the output bias at ``logit(initial_keep)``,
    so every filter starts with keep probability ``initial_keep``.
    """

    def __init__(self, features: int, hidden: int, initial_keep: float) -> None:
        super().__init__()
        output = nn.Linear(hidden, 1)
        nn.init.zeros_(output.weight)
        nn.init.constant_(output.bias, float(np.log(initial_keep / (1.0 - initial_keep))))
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), output)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(filters, features)`` -> ``(filters,)`` keep logits."""
        return self.net(features).squeeze(-1)


class TryAndLearnAgent(BaseAgent):
    """Per-layer filter-pruning agents trained by REINFORCE, layer after layer, with fine-tuning between layers.

    Args:
        env: FilterSelect-v0 with ``action_type="binary"`` and a dense reward (``reward="try-and-learn"``).
        seed: seeds the policies' initialisation, the sampled trials and the fine-tuning batches.
        trials_per_update: sampled keep/drop vectors (episodes) per policy update (the paper's M).
        max_updates_per_layer: update budget of each layer.
        convergence: a layer stops early once every keep probability is within this of 0 or 1.
        lr: Adam learning rate of the policies.
        hidden: hidden units of the per-filter network.
        initial_keep: initial keep probability of every filter (0.5, the paper's freshly initialised sigmoid agent).
        recovery_steps: training batches of fine-tuning after each layer's decision (0: none).
    """

    supported_action_spaces = (gym.spaces.MultiBinary,)
    supported_environments = ("FilterSelect-v0",)

    def __init__(self, env: gym.Env, seed: int | None = None, trials_per_update: int = 8, max_updates_per_layer: int = 40,
                 convergence: float = 0.05, lr: float = 0.05, hidden: int = 16, initial_keep: float = 0.5,
                 recovery_steps: int = 100) -> None:
        super().__init__(env, seed)
        if self.pruning_env.reward_spec.sparse:
            raise ValueError(f"try-and-learn learns each layer from its own step's reward, and reward "
                             f"{self.pruning_env.reward_spec.name!r} is sparse: use reward='try-and-learn'")
        self.trials_per_update = check_int("trials_per_update", trials_per_update, 2)
        self.max_updates_per_layer = check_int("max_updates_per_layer", max_updates_per_layer, 1)
        self.recovery_steps = check_int("recovery_steps", recovery_steps, 0)
        self.convergence = check_real("convergence", convergence, 0.0, 0.5, low_open=True, high_open=True)
        self.initial_keep = check_real("initial_keep", initial_keep, 0.0, 1.0, low_open=True, high_open=True)
        lr = check_real("lr", lr, 0.0, math.inf, low_open=True, high_open=True, expected="a positive learning rate, e.g. 0.05")
        hidden = check_int("hidden", hidden, 1)
        self.criteria = feature_criteria()
        base_seed = 0 if seed is None else seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(base_seed)
            self.policies = nn.ModuleList(FilterPolicy(len(self.criteria), hidden, self.initial_keep)
                                          for _ in range(self.episode_length))
        self.optimizers = [torch.optim.Adam(policy.parameters(), lr=lr) for policy in self.policies]
        self.generator = torch.Generator().manual_seed(base_seed)
        self.widths = [group.num_channels for group in self.pruning_env.network.groups]
        self.decisions: list[np.ndarray] = []
        """The fixed keep-vectors of the learned layers (the first ``learned_layers`` groups)."""
        self.updates_done = 0
        self.decision_pending = False
        self._samples: torch.Tensor | None = None
        self._rewards: list[float] = []

    # ------------------------------------------------------------ the policy
    @property
    def learned_layers(self) -> int:
        """How many layers (groups, in network order) have their decision fixed."""
        return len(self.decisions)

    @property
    def finished(self) -> bool:
        """Whether every layer is learned (further episodes play :attr:`decision`)."""
        return self.learned_layers == self.episode_length

    def features(self, layer: int) -> torch.Tensor:
        """``(filters, criteria)`` weight statistics of a layer's filters on the current weights, standardised over the layer."""
        ranking = self.pruning_env.ranking
        columns = []
        for criterion in self.criteria:
            try:
                scores = np.asarray(ranking.scores(criterion)[layer], dtype=np.float64)
            except UndefinedImportanceError:  # e.g. bn-scale on a layer without BatchNorm
                scores = np.zeros(self.widths[layer])
            spread = scores.std()
            columns.append((scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores))
        return torch.tensor(np.stack(columns, axis=1), dtype=torch.float32)

    def keep_probabilities(self, layer: int) -> np.ndarray:
        """The policy's keep probability of every filter of ``layer`` (on the current weights)."""
        with torch.no_grad():
            return torch.sigmoid(self.policies[layer](self.features(layer))).numpy()

    def _greedy(self, layer: int) -> np.ndarray:
        """The policy's deterministic keep-vector of ``layer``: probability >= 0.5, at least the likeliest filter."""
        probabilities = self.keep_probabilities(layer)
        keep = probabilities >= 0.5
        if not keep.any():
            keep[int(probabilities.argmax())] = True
        return keep

    @property
    def decision(self) -> list[np.ndarray]:
        """The keep-mask the agent chooses (one boolean array per group): the learned layers' fixed decisions,
        every filter of the layers not learned yet."""
        return [mask.copy() for mask in self.decisions] + [np.ones(w, dtype=bool) for w in self.widths[self.learned_layers:]]

    def _pad(self, keep: np.ndarray) -> np.ndarray:
        action = np.zeros(self.pruning_env.max_filters, dtype=np.int8)
        action[: len(keep)] = keep
        return action

    def _play(self, layer_keep: dict[int, np.ndarray]) -> list[float]:
        """One episode: ``layer_keep`` where given, else the fixed decisions (every filter for unlearned layers)."""
        decision = self.decision
        return self.run_episode(lambda observation, group_index: self._pad(layer_keep.get(group_index, decision[group_index])))

    # ------------------------------------------------------------- learning
    def learn(self, episodes: int) -> None:
        """Run ``episodes`` more episodes: trials of the layer being learned, one episode fixing each learned
        layer's decision (and fine-tuning), then the decision itself once every layer is learned."""
        for _ in range(episodes):
            if self.finished:
                self._play({})
            elif self.decision_pending:
                self._fix_decision()
            else:
                self._trial()

    def _trial(self) -> None:
        layer = self.learned_layers
        if self._samples is None:
            probabilities = torch.from_numpy(self.keep_probabilities(layer))
            self._samples = torch.bernoulli(probabilities.expand(self.trials_per_update, -1), generator=self.generator)
            self._rewards = []
        trial = self._samples[len(self._rewards)].numpy().astype(bool)
        self._rewards.append(self._play({layer: trial})[layer])
        if len(self._rewards) == self.trials_per_update:
            self._update(layer)

    def _update(self, layer: int) -> None:
        """One REINFORCE step on the sampled trials, baseline = their mean reward."""
        samples = self._samples
        assert samples is not None
        rewards = torch.tensor(self._rewards, dtype=torch.float32)
        logits = self.policies[layer](self.features(layer))
        log_probability = -nn.functional.binary_cross_entropy_with_logits(
            logits.expand_as(samples), samples, reduction="none").sum(dim=1)
        advantages = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        loss = -(advantages * log_probability).mean()
        self.optimizers[layer].zero_grad()
        loss.backward()
        self.optimizers[layer].step()
        self._samples, self._rewards = None, []
        self.updates_done += 1
        probabilities = self.keep_probabilities(layer)
        undecided = float(np.minimum(probabilities, 1.0 - probabilities).max())
        self.log_metrics({"layer": layer, "update": self.updates_done, "mean_reward": float(rewards.mean()),
                          "keep_probability": float(probabilities.mean()), "undecided": undecided})
        if undecided < self.convergence or self.updates_done == self.max_updates_per_layer:
            self.decision_pending = True

    def _fix_decision(self) -> None:
        """Play the layer's greedy decision, fix it as the environment applied it, fine-tune the network pruned so far."""
        layer = self.learned_layers
        self._play({layer: self._greedy(layer)})
        applied = self.pruning_env.last_keep_mask
        assert applied is not None
        self.decisions.append(applied[layer])
        self.updates_done, self.decision_pending = 0, False
        kept = self.decision
        self.log_metrics({"layer": layer, "kept_fraction": float(kept[layer].mean())})
        if self.recovery_steps:
            score = self.pruning_env.recover(kept, steps=self.recovery_steps, seed=(self.seed or 0) + layer)
            self.log_metrics({"layer": layer, "recovered_score": score})

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The decision for the group about to be decided (the greedy policy for the layer being learned)."""
        group_index = min(self.pruning_env.state.group_index, self.episode_length - 1)
        if group_index == self.learned_layers:
            return self._pad(self._greedy(group_index))
        return self._pad(self.decision[group_index])

    # ---------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Seed, progress, fixed decisions, pending trials and random state, as JSON-friendly values (networks: :meth:`save`)."""
        return {**super().state_dict(), "seed": self.seed, "decisions": [mask.astype(int).tolist() for mask in self.decisions],
                "updates_done": self.updates_done, "decision_pending": self.decision_pending,
                "generator": self.generator.get_state().tolist(),
                "samples": None if self._samples is None else self._samples.tolist(), "rewards": self._rewards}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seed = state["seed"]  # seeds the fine-tuning batches
        self.decisions = [np.asarray(mask, dtype=bool) for mask in state["decisions"]]
        self.updates_done, self.decision_pending = state["updates_done"], state["decision_pending"]
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self._samples = None if state["samples"] is None else torch.tensor(state["samples"])
        self._rewards = list(state["rewards"])

    def save(self, path: str | Path) -> None:
        """Counters and random state as JSON (``path``), policies and Adam moments as a torch state dict (``<path>.pt``)."""
        path = Path(path)
        torch.save({"policies": self.policies.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers]},
                   path.with_suffix(".pt"))
        path.write_text(json.dumps(self.state_dict()))

    def load(self, path: str | Path) -> None:
        """Restore what :meth:`save` wrote (tensors loaded with ``weights_only=True``)."""
        path = Path(path)
        tensors = torch.load(path.with_suffix(".pt"), weights_only=True)
        self.policies.load_state_dict(tensors["policies"])
        for optimizer, saved in zip(self.optimizers, tensors["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        self.load_state_dict(json.loads(path.read_text()))
