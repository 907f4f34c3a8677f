"""Named registries: one mechanism behind rewards, observations, criteria, models, datasets, tasks and suites.

Every registry resolves a name in three places, in order:

1. what was registered in this process (``register_reward("name")`` and its twins),
2. the registry's entry-point group, if it has one (``[project.entry-points."prune_gym.rewards"]``
   in a third-party package's ``pyproject.toml``): loaded on first use,
3. ``"package.module:attribute"``: imported on first use (so a command line can name
   a user's reward, observation or criterion without registering it anywhere).

The name under which an item was found is the name stored in run folders, so a
resumed run finds it again the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def first_line(function: Callable) -> str:
    """The first line of a function's docstring (its one-line description), or ''."""
    return (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""


class Registry(Generic[T]):
    """Items of one kind by name.

    Args:
        kind: what an item is, for messages (``"reward"``).
        entry_point_group: the entry-point group third-party packages register under, or None.
        adapt: turns an object found through an entry point or ``module:attribute`` into an item
            (called with the name and the object); identity by default.
        hint: what to do when a name is unknown (appended to the error).
        plural: the plural of ``kind`` (default: ``kind + "s"``).
        expected: the type every item has; an object found that is not one is refused in one line.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 adapt: Callable[[str, Any], T] | None = None, hint: str = "", plural: str | None = None,
                 expected: type | None = None) -> None:
        self.kind = kind
        self.expected = expected
        self.plural = plural or f"{kind}s"
        self.entry_point_group = entry_point_group
        self._adapt = adapt
        self._hint = hint
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, overwrite: bool = False) -> T:
        """Add ``item`` as ``name``.

        Raises:
            ValueError: the name is not a non-empty string, or is taken and ``overwrite`` is False.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._items and not overwrite:
            raise ValueError(f"a {self.kind} named {name!r} is already registered; pass overwrite=True to replace it")
        self._items[name] = item
        return item

    def decorator(self, name: str, function: Callable | None, build: Callable[[Callable], T], overwrite: bool = False) -> Any:
        """``register_X``'s body: register ``build(function)`` as ``name``, or return a decorator doing so.

        ``build`` turns the user's function into the registry's item; the function is returned unchanged.
        """

        def decorate(fn: Callable) -> Callable:
            if not callable(fn):
                raise TypeError(f"{self.kind} {name!r} must be callable, got {type(fn).__name__}")
            self.register(name, build(fn), overwrite)
            return fn

        return decorate if function is None else decorate(function)

    def names(self) -> list[str]:
        """Registered names and the names of the entry-point group (sorted)."""
        return sorted(set(self._items) | set(self._entry_points()))

    def registered(self) -> dict[str, T]:
        """The items registered in this process so far (entry points not loaded)."""
        return dict(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._items or name in self._entry_points())

    def get(self, name: str) -> T:
        """The item called ``name``.

        Raises:
            ValueError: unknown name (the message lists the known ones), or a ``module:attribute``
                that cannot be imported.
        """
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} must be given by name, got {type(name).__name__} {name!r}")
        if name in self._items:
            return self._items[name]
        found = self._entry_points().get(name)
        if found is not None:
            return self._remember(name, found.load())
        if ":" in name:
            module, _, attribute = name.partition(":")
            try:  # the module is user code: whatever its import raises (a syntax error, an exception) is one line
                value = getattr(importlib.import_module(module), attribute)
            except Exception as error:
                detail = " ".join(str(error).split())
                raise ValueError(f"cannot load {self.kind} {name!r}: {type(error).__name__}: {detail}") from None
            return self._remember(name, value)
        hint = f" {self._hint}" if self._hint else ""
        raise ValueError(f"unknown {self.kind} {name!r}; registered {self.plural}: {self.names()}{hint}")

    def _remember(self, name: str, value: Any) -> T:
        try:
            item = self._adapt(name, value) if self._adapt is not None else value
        except (TypeError, ValueError, AttributeError) as error:
            detail = " ".join(str(error).split())
            raise ValueError(f"{name!r} is not a {self.kind} ({type(value).__name__}: {detail})") from None
        if self.expected is not None and not isinstance(item, self.expected):
            raise ValueError(f"{name!r} is not a {self.kind}: it is a {type(item).__name__}, not a {self.expected.__name__}")
        self._items[name] = item
        return item

    def _entry_points(self) -> dict[str, Any]:
        if self.entry_point_group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}
