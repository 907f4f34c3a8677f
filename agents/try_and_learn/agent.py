"""Try-and-learn: one Bernoulli keep/drop policy per layer, trained by REINFORCE, layer after layer.

Runs on FilterSelect-v0 with binary actions, meant for ``reward="try-and-learn"``
(psi x phi of the group just decided). Layers are learned in network order:
while layer ``l`` learns, earlier layers replay their learned decisions and
later layers keep every filter, so the reward of step ``l`` measures layer
``l``'s choice. Each update samples ``trials_per_update`` keep/drop vectors,
and follows REINFORCE with the trials' mean reward as baseline.

With ``finetune_steps > 0``, the network is fine-tuned after each layer is
learned, as in the paper: ``finetune_steps`` training batches of the network
pruned by the decisions so far (``PruningEnv.fine_tune``); later layers are
learned, and rewards scored, on the tuned weights.

Simplification, stated: each layer's policy is a vector of learnable
per-filter logits (initialised to keep every filter with probability
``initial_keep``) rather than the paper's network over the filter weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.common import BaseAgent


class TryAndLearnAgent(BaseAgent):
    """Per-layer Bernoulli policies trained by REINFORCE with a mean-reward baseline.

    Args:
        env: FilterSelect-v0 with ``action_type="binary"``.
        seed: seeds the sampled trials.
        trials_per_update: sampled keep/drop vectors per policy update.
        lr: Adam learning rate of the logits.
        initial_keep: initial keep probability of every filter.
        finetune_steps: training batches of fine-tuning after each learned layer (0: none).
    """

    def __init__(self, env: gym.Env, seed: int | None = None, trials_per_update: int = 8, lr: float = 0.3,
                 initial_keep: float = 0.8, finetune_steps: int = 0) -> None:
        super().__init__(env, seed)
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise ValueError(f"try-and-learn samples keep/drop per filter: use FilterSelect-v0 with binary actions, not {env.action_space}")
        if not isinstance(finetune_steps, int) or finetune_steps < 0:
            raise ValueError(f"finetune_steps must be a number of training batches >= 0, got {finetune_steps!r}")
        self.trials_per_update = trials_per_update
        self.finetune_steps = finetune_steps
        self.generator = torch.Generator().manual_seed(0 if seed is None else seed)
        start = float(np.log(initial_keep / (1 - initial_keep)))
        self.logits = [torch.full((g.num_channels,), start, requires_grad=True) for g in self.pruning_env.network.groups]
        self.optimizers = [torch.optim.Adam([logits], lr=lr) for logits in self.logits]
        self.learned_layers = 0

    def decision(self, layer: int) -> np.ndarray:
        """The deterministic keep-vector of a layer (all kept before it is learned; at least one kept)."""
        if layer >= self.learned_layers:
            return np.ones(len(self.logits[layer]), dtype=np.int8)
        keep = (self.logits[layer] >= 0).numpy().astype(np.int8)
        if not keep.any():
            keep[int(self.logits[layer].argmax())] = 1
        return keep

    def _pad(self, keep: np.ndarray) -> np.ndarray:
        action = np.zeros(self.env.action_space.shape, dtype=np.int8)
        action[: len(keep)] = keep
        return action

    def learn(self, episodes: int) -> None:
        """Spread ``episodes`` over the layers not learned yet, learning them in order."""
        remaining = self.episode_length - self.learned_layers
        if remaining == 0:
            return
        updates = max(1, episodes // (remaining * self.trials_per_update))
        for layer in range(self.learned_layers, self.episode_length):
            for _ in range(updates):
                self._update(layer)
            self.learned_layers = layer + 1
            if self.finetune_steps:
                self._fine_tune()

    def _fine_tune(self) -> None:
        """Fine-tune the network pruned by the learned decisions (as the env applies them, budget included)."""
        self.run_episode(lambda observation, step: self._pad(self.decision(step)))
        self.pruning_env.fine_tune(self.pruning_env.last_keep_mask, steps=self.finetune_steps, seed=self.seed or 0)

    def _update(self, layer: int) -> None:
        logits = self.logits[layer]
        probabilities = torch.sigmoid(logits.detach())
        samples = torch.bernoulli(probabilities.expand(self.trials_per_update, -1), generator=self.generator)
        rewards = []
        for sample in samples:
            trial = sample.numpy().astype(np.int8)
            step_rewards = self.run_episode(lambda observation, step: self._pad(trial if step == layer else self.decision(step)))
            rewards.append(step_rewards[layer])
        advantages = torch.tensor(rewards) - float(np.mean(rewards))
        log_probability = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand_as(samples), samples, reduction="none").sum(dim=1)
        loss = -(advantages * log_probability).mean()
        self.optimizers[layer].zero_grad()
        loss.backward()
        self.optimizers[layer].step()

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        step = min(self.pruning_env.step_index, self.episode_length - 1)
        return self._pad(self.decision(step))

    def save(self, path: str | Path) -> None:
        """Logits and progress as JSON."""
        Path(path).write_text(json.dumps({"logits": [l.detach().tolist() for l in self.logits], "learned_layers": self.learned_layers}))

    def load(self, path: str | Path) -> None:
        state = json.loads(Path(path).read_text())
        with torch.no_grad():
            for logits, values in zip(self.logits, state["logits"]):
                logits.copy_(torch.tensor(values))
        self.learned_layers = state["learned_layers"]
