"""prune_gym's gymnasium environments: the shared episode loop and one file per environment.

Registered here once each, as Gymnasium registers its own (``register(id=...,
entry_point="module:Class")``, so registering imports nothing heavy); every
other place reads the ids back from gymnasium's registry, so an environment a
user registers the same way (a :class:`PruningEnv` subclass) is found by
``prune-gym search --env`` and the benchmark.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    from prune_gym.envs.base import PruningEnv
    from prune_gym.envs.filter_select import FilterSelectEnv
    from prune_gym.envs.layer_rate import LayerRateEnv

gym.register(id="LayerRate-v0", entry_point="prune_gym.envs.layer_rate:LayerRateEnv")
gym.register(id="FilterSelect-v0", entry_point="prune_gym.envs.filter_select:FilterSelectEnv")

_CLASSES = {"PruningEnv": "prune_gym.envs.base", "LayerRateEnv": "prune_gym.envs.layer_rate",
            "FilterSelectEnv": "prune_gym.envs.filter_select"}


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _entry_class(entry_point: object) -> object:
    """The object an entry point names: imported if its module is prune_gym's or already imported, else None."""
    if not isinstance(entry_point, str):
        return entry_point
    module, _, name = entry_point.partition(":")
    if module.startswith("prune_gym.") or module in sys.modules:
        try:
            return getattr(importlib.import_module(module), name, None)
        except ImportError:
            return None
    return None


def list_environments() -> list[str]:
    """Ids of the registered prune_gym environments: the built-in ones, then those of imported modules."""
    from prune_gym.envs.base import PruningEnv

    ids = [env_id for env_id, spec in gym.registry.items()
           if isinstance(cls := _entry_class(spec.entry_point), type) and issubclass(cls, PruningEnv)]
    built_in = ["LayerRate-v0", "FilterSelect-v0"]
    return sorted(ids, key=lambda env_id: (built_in.index(env_id) if env_id in built_in else len(built_in), env_id))


def environment_class(env_id: str) -> type[PruningEnv]:
    """The :class:`PruningEnv` subclass registered as ``env_id`` (``module:EnvId`` imports ``module`` first).

    Raises:
        ValueError: the id is not registered, or is not a prune_gym environment.
    """
    from prune_gym.envs.base import PruningEnv

    if not isinstance(env_id, str):
        raise ValueError(f"an environment id is a string such as 'LayerRate-v0', got {env_id!r}")
    name = env_id
    if ":" in env_id:
        module, _, name = env_id.partition(":")
        try:  # user code: whatever its import raises is one line
            importlib.import_module(module)
        except Exception as error:
            raise ValueError(f"cannot import {module!r} for environment {env_id!r}: {type(error).__name__}: "
                             f"{' '.join(str(error).split())}") from None
    spec = gym.registry.get(name)
    cls = None
    if spec is not None:
        try:
            cls = gym.envs.registration.load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
        except Exception:  # an entry point whose module fails to import is no usable environment
            cls = None
    if not (isinstance(cls, type) and issubclass(cls, PruningEnv)):
        raise ValueError(f"unknown environment {env_id!r}; prune_gym environments: {list_environments()} "
                         "(register a PruningEnv subclass with gymnasium.register, or name it as 'module:EnvId')")
    return cls


__all__ = ["FilterSelectEnv", "LayerRateEnv", "PruningEnv", "environment_class", "list_environments"]
