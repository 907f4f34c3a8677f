"""What prune_gym expects of an agent, and how it finds agents by name.

Agents live outside this package (the repository's ``agents/`` or any
third-party distribution) and are discovered through the ``prune_gym.agents``
entry-point group: an entry point ``name = "package.module:AgentClass"``
makes ``prune-gym search --agent name`` work. prune_gym never imports agent
packages directly.

An agent declares the action spaces it can act in, as stable-baselines3's
algorithms do, with a class attribute ``supported_action_spaces`` (a tuple of
``gymnasium.spaces`` classes), or, when that depends on its hyper-parameters
(an adapter of another library), a class method
``supported_action_spaces_for(hyperparameters)``; an agent that only makes
sense on some environments (per-group rates, say) also names their ids in
``supported_environments``. prune_gym checks the declaration before anything
is written and picks a compatible environment and action type from it
(:func:`compatible_environment`). What an agent does not declare is not restricted.
"""

from __future__ import annotations

import inspect
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
    ``prune_gym.wrappers.EpisodeRecorder``), not through the agent. An agent with
    a ``metrics_callback`` attribute gets it set to a function that takes its
    training metrics (``{"train/critic_loss": 0.1, ...}``) for the trackers.
    """

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` more episodes of search/training (repeated calls continue where the last one stopped)."""

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for one observation."""

    def save(self, path: str | Path) -> None:
        """Write the agent's whole state (networks, optimiser, buffers, counters, random state) to ``path``
        (a file name prefix: the agent may write several files starting with it)."""

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
        ValueError: no installed agent has that name (the message lists the installed ones), or it fails to import.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an agent is named by a string such as 'ddpg', got {name!r}")
    base = name.split(":", 1)[0]
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == base]
    if not matches:
        raise ValueError(f"unknown agent {name!r}; installed agents: {list_agents()} "
                         f"(agents register under the {ENTRY_POINT_GROUP!r} entry-point group)")
    try:
        return matches[0].load()
    except Exception as error:  # a broken third-party package: say which, in one line
        raise ValueError(f"agent {name!r} ({matches[0].value}) fails to import: {type(error).__name__}: {error}") from None


def _agent_class(agent: str | type) -> type:
    return agent if isinstance(agent, type) else load_agent_class(agent)


def agent_hyperparameters(agent: str | type, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """``hyperparameters`` completed with the defaults of the agent's constructor (``algorithm`` for ``sb3:``/``tianshou:``)."""
    cls = _agent_class(agent)
    given = dict(hyperparameters)
    name = agent if isinstance(agent, str) else cls.__name__
    if ":" in name:
        given.setdefault("algorithm", name.split(":", 1)[1])
    defaults = {}
    for parameter in inspect.signature(cls).parameters.values():
        if parameter.name in ("env", "seed") or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if parameter.default is not parameter.empty:
            defaults[parameter.name] = list(parameter.default) if isinstance(parameter.default, tuple) else parameter.default
    return {**defaults, **given}


def supported_action_spaces(agent: str | type, hyperparameters: dict[str, Any] | None = None) -> tuple[type[gym.Space], ...] | None:
    """The action-space classes the agent (a name or a class) declares (None: it declares nothing, so any)."""
    cls = _agent_class(agent)
    declared = getattr(cls, "supported_action_spaces_for", None)
    if callable(declared):
        return tuple(declared(agent_hyperparameters(agent, hyperparameters or {})))
    spaces = getattr(cls, "supported_action_spaces", None)
    return None if spaces is None else tuple(spaces)


def supported_environments(agent: str | type) -> tuple[str, ...] | None:
    """The environment ids the agent declares (None: any environment with a supported action space)."""
    ids = getattr(_agent_class(agent), "supported_environments", None)
    return None if ids is None else tuple(ids)


def compatible_environment(name: str, hyperparameters: dict[str, Any] | None = None, env_id: str | None = None,
                           action_type: str | None = None) -> tuple[str, str]:
    """The (environment id, action type) the agent runs on: the first compatible pair, or check the given ones.

    Raises:
        ValueError: the given environment / action type does not fit the agent (the message lists what does).
    """
    from prune_gym.envs import environment_class, list_environments

    spaces = supported_action_spaces(name, hyperparameters)
    env_ids = supported_environments(name)

    def fits(candidate: str, space: type[gym.Space]) -> bool:
        allowed = env_ids is None or any(issubclass(environment_class(candidate), environment_class(e)) for e in env_ids)
        return allowed and (spaces is None or issubclass(space, spaces))

    for candidate in [env_id] if env_id is not None else list_environments():
        types = environment_class(candidate).action_types
        if action_type is not None and action_type not in types:
            raise ValueError(f"invalid action_type={action_type!r} for {candidate}: expected one of {list(types)}")
        for kind in [action_type] if action_type is not None else list(types):
            if fits(candidate, types[kind]):
                return candidate, kind
    choices = [f"--env {e} --env-arg action_type={k}" for e in list_environments()
               for k, space in environment_class(e).action_types.items() if fits(e, space)]
    given = f"{env_id} with action_type={action_type}" if action_type else str(env_id)
    raise ValueError(f"agent {name!r} cannot run on {given}; use {' or '.join(choices) if choices else 'another agent'}")


def check_action_space(agent: str | type, env: gym.Env, hyperparameters: dict[str, Any] | None = None) -> None:
    """Raise a one-line ``ValueError`` if the agent (a name or a class) does not declare ``env`` or its action space."""
    from prune_gym.envs import environment_class

    label = agent if isinstance(agent, str) else agent.__name__
    env_ids = supported_environments(agent)
    if env_ids is not None and not isinstance(env.unwrapped, tuple(environment_class(e) for e in env_ids)):
        raise ValueError(f"agent {label!r} runs on {list(env_ids)}, not on {type(env.unwrapped).__name__}")
    spaces = supported_action_spaces(agent, hyperparameters)
    if spaces is not None and not isinstance(env.action_space, spaces):
        names = ", ".join(space.__name__ for space in spaces)
        raise ValueError(f"agent {label!r} acts in {names} action spaces, not in {env.action_space}: "
                         "pick another environment or action_type (`prune-gym list environments`)")


def make_agent(name: str, env: gym.Env, seed: int | None = None, **hyperparameters: Any) -> Agent:
    """Build the agent ``name`` (e.g. ``ddpg``, ``uniform``, ``sb3:PPO``) on ``env``.

    Raises:
        ValueError: unknown agent, hyper-parameters its constructor rejects, or an action space it does not support.
    """
    cls = load_agent_class(name)
    if ":" in name:
        hyperparameters.setdefault("algorithm", name.split(":", 1)[1])
    check_action_space(name, env, hyperparameters)
    try:
        return cls(env, seed=seed, **hyperparameters)
    except TypeError as error:
        raise ValueError(f"agent {name!r} rejects its arguments: {error}") from None
