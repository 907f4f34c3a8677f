"""What prune_gym expects of an agent, and how it finds agents by name.

Agents live outside this package (the repository's ``agents/`` or any
third-party distribution) and are discovered through the ``prune_gym.agents``
entry-point group: an entry point ``name = "package.module:AgentClass"``
makes ``prune-gym search --agent name`` work. prune_gym never imports agent
packages directly.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

ENTRY_POINT_GROUP = "prune_gym.agents"


@runtime_checkable
class Agent(Protocol):
    """An agent that searches a prune_gym environment.

    Constructor: ``AgentClass(env, seed=None, **hyperparameters)`` where ``env``
    is a (possibly wrapped) prune_gym environment. Episode statistics reach the
    caller through the environment's wrappers (see
    ``prune_gym.wrappers.EpisodeRecorder``), not through the agent.
    """

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` full episodes of search/training on the agent's environment."""

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for one observation."""

    def save(self, path: str | Path) -> None:
        """Write the agent's state (networks, optimiser, counters) to ``path``."""

    def load(self, path: str | Path) -> None:
        """Restore the state written by :meth:`save` (the agent was built with the same env and hyper-parameters)."""


def list_agents() -> list[str]:
    """Names of the agents installed under the ``prune_gym.agents`` entry-point group."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_agent_class(name: str) -> type:
    """The agent class registered as ``name``.

    Names of the form ``sb3:ALGO`` / ``tianshou:ALGO`` resolve to the ``sb3`` /
    ``tianshou`` adapter entry points; the caller passes ``algorithm=ALGO``.

    Raises:
        ValueError: no installed agent has that name (the message lists the installed ones).
    """
    base = name.split(":", 1)[0]
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == base]
    if not matches:
        raise ValueError(f"unknown agent {name!r}; installed agents: {list_agents()} "
                         f"(agents register under the {ENTRY_POINT_GROUP!r} entry-point group)")
    return matches[0].load()


def make_agent(name: str, env: gym.Env, seed: int | None = None, **hyperparameters: Any) -> Agent:
    """Build the agent ``name`` (e.g. ``ddpg``, ``uniform``, ``sb3:PPO``) on ``env``."""
    cls = load_agent_class(name)
    if ":" in name:
        hyperparameters.setdefault("algorithm", name.split(":", 1)[1])
    return cls(env, seed=seed, **hyperparameters)
