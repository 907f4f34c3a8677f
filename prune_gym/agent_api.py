"""What prune_gym expects of an agent, and how it finds agents by name.

Agents live outside this package (the repository's ``agents/`` or any
third-party distribution) and are discovered through the ``prune_gym.agents``
entry-point group: an entry point ``name = "package.module:AgentClass"``
makes ``prune-gym search --agent name`` work. An agent being written needs no
installing: ``--agent package.module:AgentClass`` (importable, e.g. on
``PYTHONPATH``) or ``--agent path/to/file.py:AgentClass`` names its class
directly, through the one mechanism of :mod:`prune_gym.registry`; a run folder
stores that name, and resuming it asks for ``--trust-code``. prune_gym never
imports agent packages directly.

Before anything is written, :func:`check_agent` refuses a class that does not
follow the :class:`Agent` protocol (a missing method, a signature that cannot
take the protocol's call) or whose constructor rejects the hyper-parameters;
:func:`read_agent_config` reads per-task hyper-parameters from a YAML/JSON file
laid out as rl-zoo3's ``hyperparams/*.yml``.

An agent declares the action spaces it can act in, as stable-baselines3's
algorithms do, with a class attribute ``supported_action_spaces`` (a tuple of
``gymnasium.spaces`` classes), or, when that depends on its hyper-parameters
(an adapter of another library), a class method
``supported_action_spaces_for(hyperparameters)``; an agent that only makes
sense on some environments (per-group rates, say) also names their ids in
``supported_environments``. prune_gym checks the declaration before anything
is written and picks a compatible environment and action type from it
(:func:`compatible_environment`). What an agent does not declare is not restricted.

An agent that learns a policy rather than a search of one network's space
declares ``transfers = True`` (:func:`transfers`): what its ``save`` wrote on one
environment, its ``load`` continues on another with the same spaces. The
transfer track (``transfer-v0``) trains such agents on a
:class:`~prune_gym.envs.sampler.PairSampler` of several networks and budgets,
then loads them on pairs they never saw (``RunSpec.agent_state``) to act
zero-shot (``RunSpec.act_only``) or to learn a few episodes more.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from prune_gym.registry import Registry

ENTRY_POINT_GROUP = "prune_gym.agents"
DEFAULT_SECTION = "default"  # the section of an agent config that applies to every task


@runtime_checkable
class Agent(Protocol):
    """An agent that searches a prune_gym environment.

    Constructor: ``AgentClass(env, seed=None, **hyperparameters)`` where ``env``
    is a (possibly wrapped) prune_gym environment. Episode statistics reach the
    caller through the environment's wrappers (see
    ``prune_gym.wrappers.EpisodeRecorder``), not through the agent. An agent with
    a ``metrics_callback`` attribute gets it set to a function that takes its
    training metrics (``{"train/critic_loss": 0.1, ...}``) for the trackers. One
    that writes TensorBoard itself has ``log_to_tensorboard(folder)``, called with
    the run's TensorBoard folder (``--tensorboard``) and returning what to
    ``close()`` at the end (:class:`prune_gym.tracking.Tracker`).
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


_AGENTS: Registry[type] = Registry("agent", ENTRY_POINT_GROUP, expected=type)


def load_agent_class(name: str) -> type:
    """The agent class named ``name``: an installed agent (``ddpg``), an adapter's algorithm (``sb3:PPO`` and
    ``tianshou:PPO`` resolve to the ``sb3`` / ``tianshou`` entry points; the caller passes ``algorithm=ALGO``), or a
    class in user code, ``package.module:Class`` or ``path/to/file.py:Class``.

    Raises:
        ValueError: no installed agent has that name (the message lists the installed ones), it fails to import, or
            it is not a class.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an agent is named by a string such as 'ddpg', got {name!r}")
    base = name.split(":", 1)[0]
    if base not in _AGENTS and ":" not in name:
        raise ValueError(f"unknown agent {name!r}; installed agents: {list_agents()} (agents register under the "
                         f"{ENTRY_POINT_GROUP!r} entry-point group; a class of yours: package.module:Class or path/to/file.py:Class)")
    return _AGENTS.get(base if base in _AGENTS else name)


def names_code(name: str) -> bool:
    """Whether the agent name ``name`` is a class in user code (``package.module:Class``, ``path/to/file.py:Class``)
    rather than an installed agent (``ddpg``) or an adapter's algorithm (``sb3:PPO``)."""
    return ":" in name and name.split(":", 1)[0] not in _AGENTS


def _adapter_algorithm(name: str) -> str | None:
    """``ALGO`` of an adapter's name ``sb3:ALGO`` (None for any other name)."""
    return name.split(":", 1)[1] if ":" in name and not names_code(name) else None


def _agent_class(agent: str | type) -> type:
    return agent if isinstance(agent, type) else load_agent_class(agent)


def agent_hyperparameters(agent: str | type, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """``hyperparameters`` completed with the defaults of the agent's constructor (``algorithm`` for ``sb3:``/``tianshou:``)."""
    cls = _agent_class(agent)
    given = dict(hyperparameters)
    algorithm = _adapter_algorithm(agent) if isinstance(agent, str) else None
    if algorithm is not None:
        given.setdefault("algorithm", algorithm)
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


def transfers(agent: str | type) -> bool:
    """Whether the agent (a name or a class) declares ``transfers = True``: its state saved on one environment, loaded on
    another with the same spaces, continues what it learnt (default False: a search of one network's space)."""
    return bool(getattr(_agent_class(agent), "transfers", False))


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
    algorithm = _adapter_algorithm(name)
    if algorithm is not None:
        hyperparameters.setdefault("algorithm", algorithm)
    check_action_space(name, env, hyperparameters)
    try:
        return cls(env, seed=seed, **hyperparameters)
    except TypeError as error:
        raise ValueError(f"agent {name!r} rejects its arguments: {error}") from None


def _without_annotations(signature: inspect.Signature) -> str:
    parameters = [parameter.replace(annotation=parameter.empty) for parameter in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=signature.empty))


def _protocol_methods() -> dict[str, inspect.Signature]:
    """The methods of :class:`Agent` and their signatures, ``self`` left out (what the search calls)."""
    methods = {}
    for name, function in vars(Agent).items():
        if inspect.isfunction(function) and not name.startswith("_"):
            signature = inspect.signature(function)
            methods[name] = signature.replace(parameters=list(signature.parameters.values())[1:])
    return methods


def _call_error(function: Any, call: inspect.Signature, leading: tuple[Any, ...] = ()) -> str | None:
    """Why ``function`` cannot be called as ``call`` says (its required parameters by position, the others by keyword),
    after ``leading`` positional arguments; None if it can (or has no signature to read, as a builtin)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    required = [None for parameter in call.parameters.values() if parameter.default is parameter.empty]
    keywords = {parameter.name: None for parameter in call.parameters.values() if parameter.default is not parameter.empty}
    try:
        signature.bind(*leading, *required, **keywords)
    except TypeError as error:
        return str(error)
    return None


def agent_keywords(agent: str | type) -> list[str] | None:
    """The hyper-parameters the agent's constructor takes by name (``env`` and ``seed`` aside); None: any (``**kwargs``)."""
    try:
        parameters = inspect.signature(_agent_class(agent)).parameters.values()
    except (TypeError, ValueError):  # no readable signature: nothing to check against
        return None
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return [parameter.name for parameter in parameters if parameter.name not in ("env", "seed")
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]


def check_hyperparameter_names(agent: str, names: Iterable[str], source: str = "") -> None:
    """Refuse, in one line starting with ``source``, hyper-parameter names the agent's constructor does not take."""
    keywords = agent_keywords(agent)
    unknown = sorted(set(names) - set(keywords)) if keywords is not None else []
    if unknown:
        raise ValueError(f"{source}agent {agent!r} takes no hyper-parameter {unknown[0]!r}; its keywords: {keywords}")


def check_agent(name: str, hyperparameters: dict[str, Any]) -> None:
    """Refuse, in one line and before anything is built, an agent class that does not follow the :class:`Agent`
    protocol (a missing method, one whose signature cannot take the protocol's call, a constructor that cannot be
    called as ``AgentClass(env, seed=..., **hyperparameters)``) or that takes no hyper-parameter of one of those given.

    Raises:
        ValueError: the agent's name and what it lacks.
    """
    cls = load_agent_class(name)
    given = agent_hyperparameters(name, hyperparameters)
    check_hyperparameter_names(name, given)
    problems = []
    for method, call in _protocol_methods().items():
        function = getattr(cls, method, None)
        expected = f"{method}{_without_annotations(call)}"
        if not callable(function):
            problems.append(f"no {expected}")
            continue
        plain = inspect.isfunction(inspect.getattr_static(cls, method))  # not a static or class method: self comes first
        error = _call_error(function, call, leading=(None,) if plain else ())
        if error is not None:
            actual = _without_annotations(inspect.signature(function))
            problems.append(f"{method}{actual} cannot be called as {expected} ({error})")
    constructor = inspect.Signature([inspect.Parameter("env", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                                     *[inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None) for key in ("seed", *given)]])
    error = _call_error(cls, constructor)
    if error is not None:
        actual = _without_annotations(inspect.signature(cls))
        problems.append(f"{cls.__name__}{actual} cannot be built as {cls.__name__}(env, seed=..., **hyperparameters) ({error})")
    if problems:
        raise ValueError(f"agent {name!r} does not follow the agent protocol (prune_gym.agent_api.Agent): {'; '.join(problems)}")


def read_agent_config(path: str | Path, task: str | None = None) -> dict[str, Any]:
    """Agent hyper-parameters from a YAML (``.yml``, ``.yaml``) or JSON file, laid out as rl-zoo3's ``hyperparams/*.yml``:
    top-level keys are task names or ``default``, each holding the agent's keyword arguments; ``task``'s section
    overrides ``default``'s. A file without such sections is one set of hyper-parameters for every task (as ``prune-gym
    tune`` writes ``best_config.json``). With ``task=None`` (one set for several tasks) only ``default`` may be given.

    Raises:
        ValueError: unreadable file, another suffix, a section that is no task, or none for ``task``.
    """
    import yaml

    from prune_gym.tasks import list_tasks

    path = Path(path)
    if path.suffix not in (".yml", ".yaml", ".json"):
        raise ValueError(f"agent config {path}: expected a .yml, .yaml or .json file")
    try:
        text = path.read_text()
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        detail = " ".join(str(error).split())
        raise ValueError(f"agent config {path} is unreadable ({type(error).__name__}: {detail})") from None
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise ValueError(f"agent config {path}: expected a mapping of hyper-parameters, or of task names and 'default' to them")
    tasks = set(list_tasks())
    if not set(config) & {*tasks, DEFAULT_SECTION}:
        return config
    for key, section in config.items():
        if key not in tasks and key != DEFAULT_SECTION:
            raise ValueError(f"agent config {path}: section {key!r} is neither a task (`prune-gym list tasks`) nor "
                             f"{DEFAULT_SECTION!r}; hyper-parameters go inside a section")
        if not isinstance(section, dict):
            raise ValueError(f"agent config {path}: section {key!r} holds a {type(section).__name__}, not a mapping of hyper-parameters")
    if task is None and set(config) != {DEFAULT_SECTION}:
        raise ValueError(f"agent config {path} has sections per task ({sorted(set(config) - {DEFAULT_SECTION})}); here one set "
                         f"of hyper-parameters applies to every task: keep only {DEFAULT_SECTION!r}")
    if task is not None and task not in config and DEFAULT_SECTION not in config:
        raise ValueError(f"agent config {path} has no section for task {task!r} and no {DEFAULT_SECTION!r} one; "
                         f"its sections: {sorted(config)}")
    return {**config.get(DEFAULT_SECTION, {}), **(config.get(task, {}) if task is not None else {})}
