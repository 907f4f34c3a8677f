"""``prune-gym list WHAT``: the registered tasks, environments, models, datasets, rewards, observations, criteria, agents
and suites, each with a one-line description, cached on disk while the installed code is unchanged."""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any

from prune_gym.registry import first_line


def doc(item: Any) -> str:
    """The first line of an object's docstring; for a ``functools.partial``, its function's, then the bound arguments."""
    if isinstance(item, functools.partial):
        bound = inspect.signature(item.func).bind_partial(*item.args, **item.keywords).arguments
        return f"{doc(item.func)} ({', '.join(f'{name}={value!r}' for name, value in bound.items())})"
    return first_line(item)


def agent_rows() -> list[tuple[str, ...]]:
    """Installed agents: name, action spaces, description; adapters one row per algorithm (``sb3:PPO``)."""
    from prune_gym.agent_api import list_agents, load_agent_class, supported_action_spaces, supported_environments

    def spaces(name: str) -> str:
        declared = supported_action_spaces(name)
        environments = supported_environments(name)
        text = ", ".join(space.__name__ for space in declared) if declared is not None else "any"
        return f"{text} on {', '.join(environments)}" if environments else text

    rows: list[tuple[str, ...]] = []
    for name in list_agents():
        try:
            cls = load_agent_class(name)
        except ValueError as error:  # a broken third-party agent: say so, list the others
            rows.append((name, "", str(error)))
            continue
        algorithms = getattr(cls, "algorithms", None)  # an adapter: `name:ALGO` passes algorithm=ALGO
        if callable(algorithms) and "algorithm" in inspect.signature(cls).parameters:
            rows += [(f"{name}:{algorithm}", spaces(f"{name}:{algorithm}"), description) for algorithm, description in algorithms().items()]
        else:
            rows.append((name, spaces(name), doc(cls)))
    return rows


def task_rows() -> list[tuple[str, ...]]:
    from prune_gym.tasks import get_task, list_tasks

    def checkpoint(task: Any) -> str:
        if task.checkpoint_path().exists():
            return "cached"
        return "trains on first use" if task.auto_pretrain else "run `prune-gym pretrain`"

    return [(name, checkpoint(task), task.metric, task.description) for name in list_tasks() for task in [get_task(name)]]


HEADERS: dict[str, tuple[str, ...]] = {
    "tasks": ("task", "checkpoint", "metric", "description"),
    "environments": ("environment", "action types", "description"),
    "models": ("model", "input (C, H, W)", "description"),
    "datasets": ("dataset", "description"),
    "rewards": ("reward", "kind", "description"),
    "observations": ("observation", "description"),
    "criteria": ("criterion", "description"),
    "agents": ("agent", "action spaces", "description"),
    "suites": ("suite", "entries", "seeds", "description"),
}
"""The column headers of each listing."""


def catalogue(what: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Column headers and rows of ``prune-gym list WHAT``; imports only what that listing needs."""
    return HEADERS[what], _rows(what)


def _rows(what: str) -> list[tuple[str, ...]]:
    if what == "tasks":
        return task_rows()
    if what == "agents":
        return agent_rows()
    if what == "environments":
        from prune_gym.envs import environment_class, list_environments

        return [(env_id, ", ".join(environment_class(env_id).action_types), doc(environment_class(env_id)))
                for env_id in list_environments()]
    if what == "models":
        from prune_gym.tasks.models import get_model, list_models

        return [(name, str(spec.input_shape), doc(spec.factory)) for name in list_models() for spec in [get_model(name)]]
    if what == "datasets":
        from prune_gym.tasks.data import get_dataset_loader, list_datasets

        return [(name, doc(get_dataset_loader(name))) for name in list_datasets()]
    if what == "rewards":
        from prune_gym.rewards import get_reward, list_rewards

        return [(name, "sparse" if spec.sparse else "", spec.description) for name in list_rewards() for spec in [get_reward(name)]]
    if what == "observations":
        from prune_gym.observations import get_observation, list_observations

        return [(name, doc(get_observation(name))) for name in list_observations()]
    if what == "suites":
        from prune_gym.benchmark import get_suite, list_suites

        return [(suite.name, ", ".join(entry.name for entry in suite.entries), str(len(suite.seeds)), suite.description)
                for suite in [get_suite(name) for name in list_suites()]]
    from prune_gym.pruning.importance import get_importance, list_importance_criteria

    return [(name, get_importance(name).description) for name in list_importance_criteria()]


LISTINGS = tuple(HEADERS)


CACHED_LISTINGS = {"environments": "prune_gym.envs.base", "models": "prune_gym.tasks.models", "datasets": "prune_gym.tasks.data",
                   "observations": "prune_gym.observations", "criteria": "prune_gym.pruning.importance", "agents": "torch"}
"""Listings that import torch or the RL libraries, and the module whose import they wait for: kept in the cache until the
installed code changes, and served from it only while that module is not imported yet (once it is, listing afresh is
cheap and shows what this process registered)."""


def installed_code_fingerprint() -> str:
    """A digest of what those listings depend on: every installed distribution (the name, version and modification time
    of its metadata folder, read from the folder's name rather than parsed: a few milliseconds), and the modification
    times of the source files of prune_gym and of the packages behind ``prune_gym.*`` entry points (editable installs
    change without a new version)."""
    import contextlib
    import hashlib
    import os
    from importlib import metadata, util
    from pathlib import Path

    parts = []
    for folder in sys.path:  # where importlib.metadata looks, and as it does: a folder it cannot read holds nothing
        with contextlib.suppress(OSError):
            parts += sorted(f"{entry.name}:{entry.stat().st_mtime_ns}" for entry in os.scandir(folder or ".")
                            if entry.name.endswith((".dist-info", ".egg-info")))
    distributions = list(metadata.distributions())
    packages = {"prune_gym"} | {ep.value.split(":")[0].split(".")[0] for dist in distributions for ep in dist.entry_points
                                if ep.group.startswith("prune_gym.")}
    for package in sorted(packages):
        spec = util.find_spec(package)
        if spec is None:
            continue
        for location in spec.submodule_search_locations or ([spec.origin] if spec.origin else []):
            parts += sorted(f"{path}:{path.stat().st_mtime_ns}" for path in Path(location).rglob("*.py"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def listing(what: str) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """``catalogue(what)``, from the cache (``$PRUNE_GYM_CACHE/listings``) while the installed code is unchanged."""
    if what not in CACHED_LISTINGS or CACHED_LISTINGS[what] in sys.modules:
        return catalogue(what)
    from prune_gym.paths import cache_dir
    from prune_gym.storage import write_atomic

    fingerprint = installed_code_fingerprint()
    path = cache_dir() / "listings" / f"{what}-{fingerprint}.json"
    try:
        cached = cached_listing(what, fingerprint, json.loads(path.read_text()))
    except (OSError, ValueError):  # absent or unreadable: list afresh
        cached = None
    if cached is not None:
        return cached
    headers, rows = catalogue(what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"listing": what, "fingerprint": fingerprint, "headers": headers, "rows": rows,
                                       "digest": listing_digest(what, fingerprint, headers, rows)}))
    except OSError:  # a read-only cache only costs the next listing its speed
        pass
    return headers, rows


def listing_digest(what: str, fingerprint: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The digest a cached listing carries: of its name, the installed code's fingerprint, its headers and its rows."""
    import hashlib

    content = json.dumps([what, fingerprint, list(headers), [list(row) for row in rows]], separators=(",", ":"))
    return hashlib.sha256(content.encode()).hexdigest()


def cached_listing(what: str, fingerprint: str, cached: Any) -> tuple[tuple[str, ...], list[tuple[str, ...]]] | None:
    """The headers and rows of a cache file's content if it checks out, else None (the listing is made afresh).

    It checks out when it names this listing and this fingerprint, its headers are the listing's, every row is as many
    strings as there are headers, its digest matches (:func:`listing_digest`), and (agents) it lists exactly the
    installed agents: a damaged, hand-edited, planted or foreign file is never served.
    """
    if not isinstance(cached, dict) or cached.get("listing") != what or cached.get("fingerprint") != fingerprint:
        return None
    headers, rows = cached.get("headers"), cached.get("rows")
    if headers != list(HEADERS[what]) or not isinstance(rows, list):
        return None
    if not all(isinstance(row, list) and len(row) == len(headers) and all(isinstance(cell, str) for cell in row) for row in rows):
        return None
    if cached.get("digest") != listing_digest(what, fingerprint, headers, rows):
        return None
    if what == "agents":
        from importlib.metadata import entry_points

        if {row[0].split(":", 1)[0] for row in rows} != {entry.name for entry in entry_points(group="prune_gym.agents")}:
            return None
    return tuple(headers), [tuple(row) for row in rows]


def list_command(args: argparse.Namespace) -> int:
    headers, rows = listing(args.what)
    rows = [headers, *[tuple(cell.replace("``", "") for cell in row) for row in rows]]
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    for row in rows:  # plain aligned columns, one line per entry: nothing wraps when piped to grep or a file
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
