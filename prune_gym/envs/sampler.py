"""The task sampler of the transfer track: several (network, budget) pairs, one drawn at every reset.

An agent that should generalise learns on a distribution of pruning problems
rather than on one. :class:`PairSampler` holds one environment per pair, built
once, and plays the episode of a pair drawn uniformly at every ``reset``,
through the ordinary gymnasium API: any agent that runs on one prune_gym
environment runs on the sampler unchanged.

Every pair must present the same spaces. LayerRate-v0 with the ``layer-budget``
observation does on every network: one pruned fraction per step, 13 values that
are all ratios within one network, the budgets among them. Networks differ in
their number of groups, which only changes the episode's length. FilterSelect-v0
cannot take part: its action and its ``filters`` observation are as wide as a
network's widest group, so the transfer track is LayerRate-v0 only (the sampler
refuses pairs whose spaces differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np


class PairSampler(gym.Wrapper):
    """Plays, from every ``reset``, the environment of one of ``envs`` drawn uniformly at random.

    Seeding: ``reset(seed=s)`` restarts the draw from ``s`` (and seeds the drawn environment), so the same seed gives
    the same sequence of pairs; later resets without a seed continue it. ``pair`` is the index of the pair being played
    and ``info["pair"]`` its name (``names``, default ``pair-0``, ``pair-1``, ...). ``unwrapped`` is the current pair's
    :class:`~prune_gym.PruningEnv` (its network, budget and state).

    Args:
        envs: one environment per pair (e.g. ``Entry.run_spec(...).make_env()``), all with the same spaces.
        names: a name per pair (e.g. the entries' names).
        seed: the draw's seed when the first ``reset`` gives none.

    Raises:
        ValueError: no environment, a name count that is not the environment count, or spaces that differ.
    """

    def __init__(self, envs: Sequence[gym.Env], names: Sequence[str] | None = None, seed: int | None = None) -> None:
        if not envs:
            raise ValueError("a PairSampler needs at least one environment (one per pair)")
        names = [f"pair-{i}" for i in range(len(envs))] if names is None else list(names)
        if len(names) != len(envs):
            raise ValueError(f"a PairSampler got {len(envs)} environments but {len(names)} names: give one name per environment")
        for name, env in zip(names, envs, strict=True):
            for kind in ("observation_space", "action_space"):
                if getattr(env, kind) != getattr(envs[0], kind):
                    raise ValueError(f"pair {name!r} has the {kind} {getattr(env, kind)}, pair {names[0]!r} "
                                     f"{getattr(envs[0], kind)}: every pair needs the same spaces (LayerRate-v0 with "
                                     "observation='layer-budget' has them on every network)")
        super().__init__(envs[0])
        self.envs, self.names = list(envs), names
        self.rng = np.random.default_rng(seed)
        self.pair = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.pair = int(self.rng.integers(len(self.envs)))
        self.env = self.envs[self.pair]
        observation, info = self.env.reset(seed=seed, options=options)
        return observation, {**info, "pair": self.names[self.pair]}

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, {**info, "pair": self.names[self.pair]}

    def close(self) -> None:
        for env in self.envs:
            env.close()
