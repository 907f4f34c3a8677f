"""Named registries: one mechanism behind rewards, observations, criteria, models, datasets, tasks and suites.

Every registry resolves a name in three places, in order:

1. what was registered in this process (``register_reward("name")`` and its twins),
2. the registry's entry-point group, if it has one (``[project.entry-points."prune_gym.rewards"]``
   in a third-party package's ``pyproject.toml``): loaded on first use,
3. ``"package.module:attribute"`` or ``"path/to/file.py:attribute"``: imported on first use (so a
   command line can name a user's reward, observation, criterion or agent without registering or
   installing it anywhere; a file is imported alone, as a module of its own).

The name under which an item was found is the name stored in run folders (a file by its absolute
path, :func:`absolute_code_name`), so a resumed run finds it again the same way.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def first_line(function: Callable) -> str:
    """The first line of a function's docstring (its one-line description), or ''."""
    return (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""


def code_file(name: str) -> str | None:
    """The file of a ``path/to/file.py:attribute`` name (``None`` for any other name)."""
    path, colon, _ = name.rpartition(":")
    return path if colon and path.endswith(".py") else None


def folder_name_part(name: str) -> str:
    """A task or agent name as part of a folder or run name: ``sb3:PPO`` as ``sb3-PPO``, ``path/to/file.py:Class`` as
    ``file-Class``."""
    path = code_file(name)
    return (f"{Path(path).stem}:{name.rpartition(':')[2]}" if path is not None else name).replace(":", "-")


def absolute_code_name(name: str) -> str:
    """``name`` with the file of a ``path/to/file.py:attribute`` made absolute (what a run folder stores, so that a resume
    from another working directory finds the same file); any other name unchanged."""
    path = code_file(name)
    return name if path is None else f"{Path(path).expanduser().resolve()}:{name.rpartition(':')[2]}"


def import_file(path: str) -> ModuleType:
    """The Python file ``path`` imported as a module of its own, once per process (named after its absolute path, so it
    shadows no installed module); its folder is not put on ``sys.path``.

    Raises:
        FileNotFoundError: no such file.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise FileNotFoundError(f"no file {path}")
    name = f"prune_gym_file_{file.stem}_{hashlib.sha256(str(file).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before it runs, as an import does (dataclasses and pickle look the module up)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


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
            ValueError: unknown name (the message lists the known ones), or an entry point, ``module:attribute``
                or ``file.py:attribute`` that cannot be imported.
        """
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} must be given by name, got {type(name).__name__} {name!r}")
        if name in self._items:
            return self._items[name]
        found = self._entry_points().get(name)
        if found is None and ":" not in name:
            hint = f" {self._hint}" if self._hint else ""
            raise ValueError(f"unknown {self.kind} {name!r}; registered {self.plural}: {self.names()}{hint}")
        module, _, attribute = name.rpartition(":")
        try:  # a plug-in or user code: whatever its import raises (a syntax error, an exception) is one line
            if found is not None:
                imported = found.load()
            else:
                imported = import_file(module) if code_file(name) else importlib.import_module(module)
        except Exception as error:
            detail = " ".join(str(error).split())
            where = f" ({found.value})" if found is not None else ""
            raise ValueError(f"cannot load {self.kind} {name!r}{where}: {type(error).__name__}: {detail}") from None
        if found is not None:
            return self._remember(name, imported)
        if not hasattr(imported, attribute):
            raise ValueError(f"cannot load {self.kind} {name!r}: {module} has no attribute {attribute!r}")
        return self._remember(name, getattr(imported, attribute))

    def _remember(self, name: str, value: Any) -> T:
        try:
            item = self._adapt(name, value) if self._adapt is not None else value
        except (TypeError, ValueError, AttributeError) as error:
            detail = " ".join(str(error).split())
            raise ValueError(f"{name!r} is not {self._article} {self.kind} ({type(value).__name__}: {detail})") from None
        if self.expected is not None and not isinstance(item, self.expected):
            expected = "class" if self.expected is type else self.expected.__name__
            raise ValueError(f"{name!r} is not {self._article} {self.kind}: it is a {type(item).__name__}, not a {expected}")
        self._items[name] = item
        return item

    @property
    def _article(self) -> str:
        return "an" if self.kind[0] in "aeiou" else "a"

    def _entry_points(self) -> dict[str, Any]:
        if self.entry_point_group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}
