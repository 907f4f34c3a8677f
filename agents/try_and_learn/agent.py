"""Try-and-learn: one Bernoulli keep/drop policy per layer, trained by REINFORCE, layer after layer.

Runs on FilterSelect-v0 with binary actions, meant for ``reward="try-and-learn"``
(psi x phi of the group decided last). Layers are learned in network order:
while layer ``l`` learns, earlier layers replay their learned decisions and
later layers keep every filter, so the reward of step ``l`` measures layer
``l``'s choice. Each update samples ``trials_per_update`` keep/drop vectors
(one episode each) and follows REINFORCE with the trials' mean reward as
baseline; a layer gets ``updates_per_layer`` updates. Once every layer is
learned, further episodes play the learned policy.

With ``fine_tune_steps > 0``, the network is fine-tuned after each layer is
learned, as in the paper: ``fine_tune_steps`` training batches of the network
pruned by the decisions so far (``PruningEnv.fine_tune``, one episode to apply
them); later layers are learned, and rewards scored, on the tuned weights.

Simplification, stated: each layer's policy is a vector of learnable
per-filter logits (initialised to keep every filter with probability
``initial_keep``) rather than the paper's network over the filter weights.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.common import BaseAgent


class TryAndLearnAgent(BaseAgent):
    """Per-layer Bernoulli policies trained by REINFORCE with a mean-reward baseline.

    Args:
        env: FilterSelect-v0 with ``action_type="binary"``.
        seed: seeds the sampled trials.
        trials_per_update: sampled keep/drop vectors (episodes) per policy update.
        updates_per_layer: policy updates of each layer.
        lr: Adam learning rate of the logits.
        initial_keep: initial keep probability of every filter.
        fine_tune_steps: training batches of fine-tuning after each learned layer (0: none).
    """

    supported_action_spaces = (gym.spaces.MultiBinary,)

    def __init__(self, env: gym.Env, seed: int | None = None, trials_per_update: int = 8, updates_per_layer: int = 10,
                 lr: float = 0.3, initial_keep: float = 0.8, fine_tune_steps: int = 0) -> None:
        super().__init__(env, seed)
        for name, value, minimum in (("trials_per_update", trials_per_update, 2), ("updates_per_layer", updates_per_layer, 1),
                                     ("fine_tune_steps", fine_tune_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"invalid {name}={value!r}: expected an integer >= {minimum}")
        self.trials_per_update = trials_per_update
        self.updates_per_layer = updates_per_layer
        self.fine_tune_steps = fine_tune_steps
        self.generator = torch.Generator().manual_seed(0 if seed is None else seed)
        start = float(np.log(initial_keep / (1 - initial_keep)))
        self.logits = [torch.full((g.num_channels,), start, requires_grad=True) for g in self.pruning_env.network.groups]
        self.optimizers = [torch.optim.Adam([logits], lr=lr) for logits in self.logits]
        self.learned_layers = 0
        self.updates_done = 0
        self.fine_tune_pending = False
        self._samples: torch.Tensor | None = None
        self._rewards: list[float] = []

    def decision(self, layer: int) -> np.ndarray:
        """The deterministic keep-vector of a layer (all kept before it is learned; at least one kept)."""
        if layer >= self.learned_layers:
            return np.ones(len(self.logits[layer]), dtype=np.int8)
        keep = (self.logits[layer] >= 0).numpy().astype(np.int8)
        if not keep.any():
            keep[int(self.logits[layer].argmax())] = 1
        return keep

    def _pad(self, keep: np.ndarray) -> np.ndarray:
        action = np.zeros(self.pruning_env.max_filters, dtype=np.int8)
        action[: len(keep)] = keep
        return action

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` more episodes: trials of the layer being learned, a fine-tuning episode after
        each learned layer, then the learned policy once every layer is learned."""
        for _ in range(episodes):
            if self.fine_tune_pending:
                self._fine_tune()
            elif self.learned_layers < self.episode_length:
                self._trial()
            else:
                self.run_episode(lambda observation, group_index: self._pad(self.decision(group_index)))

    def _fine_tune(self) -> None:
        """Fine-tune the network pruned by the learned decisions (as the env applies them, budget included)."""
        self.run_episode(lambda observation, group_index: self._pad(self.decision(group_index)))
        keep = self.pruning_env.last_keep_mask
        assert keep is not None
        self.pruning_env.fine_tune(keep, steps=self.fine_tune_steps, seed=self.seed or 0)
        self.fine_tune_pending = False

    def _trial(self) -> None:
        layer = self.learned_layers
        if self._samples is None:
            probabilities = torch.sigmoid(self.logits[layer].detach())
            self._samples = torch.bernoulli(probabilities.expand(self.trials_per_update, -1), generator=self.generator)
            self._rewards = []
        trial = self._samples[len(self._rewards)].numpy().astype(np.int8)
        rewards = self.run_episode(
            lambda observation, group_index: self._pad(trial if group_index == layer else self.decision(group_index)))
        self._rewards.append(rewards[layer])
        if len(self._rewards) == self.trials_per_update:
            self._update(layer)

    def _update(self, layer: int) -> None:
        samples, logits = self._samples, self.logits[layer]
        assert samples is not None
        advantages = torch.tensor(self._rewards) - float(np.mean(self._rewards))
        log_probability = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand_as(samples), samples, reduction="none").sum(dim=1)
        loss = -(advantages * log_probability).mean()
        self.optimizers[layer].zero_grad()
        loss.backward()
        self.optimizers[layer].step()
        self._samples, self._rewards = None, []
        self.updates_done += 1
        if self.updates_done == self.updates_per_layer:
            self.learned_layers, self.updates_done = layer + 1, 0
            self.fine_tune_pending = self.fine_tune_steps > 0

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        group_index = min(self.pruning_env.state.group_index, self.episode_length - 1)
        return self._pad(self.decision(group_index))

    def state_dict(self) -> dict[str, Any]:
        """Logits, optimiser moments, progress, pending trials and random state, as JSON-friendly values."""
        optimisers = [{k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in o.state_dict()["state"].get(0, {}).items()}
                      for o in self.optimizers]
        return {**super().state_dict(), "logits": [l.detach().tolist() for l in self.logits], "optimisers": optimisers,
                "learned_layers": self.learned_layers, "updates_done": self.updates_done,
                "fine_tune_pending": self.fine_tune_pending, "generator": self.generator.get_state().tolist(),
                "samples": None if self._samples is None else self._samples.tolist(), "rewards": self._rewards}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            for logits, values in zip(self.logits, state["logits"], strict=True):
                logits.copy_(torch.tensor(values))
        for optimiser, moments in zip(self.optimizers, state["optimisers"], strict=True):
            if moments:
                saved = optimiser.state_dict()
                saved["state"] = {0: {k: torch.tensor(v) for k, v in moments.items()}}
                optimiser.load_state_dict(saved)
        self.learned_layers, self.updates_done = state["learned_layers"], state["updates_done"]
        self.fine_tune_pending = state["fine_tune_pending"]
        self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self._samples = None if state["samples"] is None else torch.tensor(state["samples"])
        self._rewards = list(state["rewards"])
