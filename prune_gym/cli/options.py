"""Options of the ``prune-gym`` commands turned into the API's objects: run specifications, seeds, keywords, executors."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from prune_gym.runs import RunSpec

DEFAULTS = {field.name: field.default for field in dataclasses.fields(RunSpec) if field.default is not dataclasses.MISSING}
ENV_OPTIONS = ("reward", "macs_budget", "params_budget", "reward_samples", "device")  # search options that are environment keywords
RESUME_OPTIONS = ("episodes", "max_evaluations", "device", "tensorboard")  # what --resume may change
MAX_SEEDS = 1000  # a seed list past this is a typo, not a plan


def parse_key_values(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings to a dict; values parsed as JSON when they parse (numbers, booleans, lists)."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        try:
            result[key] = json.loads(value)
        except json.JSONDecodeError:
            result[key] = value
    return result


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``search`` the user gave (their defaults are None or empty)."""
    return {name: value for name, value in vars(args).items() if value not in (None, [], False) and name not in ("command", "handler")}


def search_spec(args: argparse.Namespace) -> RunSpec:
    """The run specification of ``prune-gym search``: named options, then ``--env-arg`` / ``--agent-arg`` keywords
    (``--agent-arg`` over the task's hyper-parameters from ``--agent-config``).

    Raises:
        ValueError: an environment keyword given both as an option and as ``--env-arg``.
    """
    env_kwargs = parse_key_values(args.env_arg)
    named = {name: getattr(args, name) for name in ENV_OPTIONS if getattr(args, name) is not None}
    twice = sorted(set(named) & set(env_kwargs))
    if twice:
        raise ValueError(f"{', '.join(twice)} given both as --{twice[0].replace('_', '-')} and as --env-arg: give it once")
    fields = {name: getattr(args, name) for name in ("task", "env", "agent", "episodes", "seed", "checkpoint_every", "wandb",
                                                     "wandb_project") if getattr(args, name) is not None}
    from_file = agent_config(args.agent_config, fields.get("task", DEFAULTS["task"]), fields.get("agent", DEFAULTS["agent"]))
    return RunSpec(**fields, env_kwargs={**named, **env_kwargs}, agent_kwargs={**from_file, **parse_key_values(args.agent_arg)},
                   max_evaluations=args.max_evaluations, wandb_entity=args.wandb_entity, wandb_group=args.wandb_group,
                   wandb_tags=tuple(args.wandb_tags), tensorboard=args.tensorboard)


def parse_seeds(tokens: list[str]) -> list[int]:
    """``["0-4", "7"]`` to ``[0, 1, 2, 3, 4, 7]``: seeds and inclusive ranges, each seed once."""
    seeds: dict[int, None] = {}
    for token in tokens:
        first, dash, last = token.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()) or (dash and int(last) < int(first)):
            raise ValueError(f"--seeds {token!r}: expected seeds >= 0 or ranges FIRST-LAST, e.g. --seeds 0-4 or --seeds 0 3 7")
        if int(last if dash else first) - int(first) + len(seeds) >= MAX_SEEDS:
            raise ValueError(f"--seeds {' '.join(tokens)}: more than {MAX_SEEDS} seeds; give fewer")
        seeds.update(dict.fromkeys(range(int(first), int(last if dash else first) + 1)))
    if not seeds:
        raise ValueError("--seeds is empty: give seeds or ranges, e.g. --seeds 0-4")
    return list(seeds)


def optional_seeds(tokens: list[str] | None) -> list[int] | None:
    return None if tokens is None else parse_seeds(tokens)


def executor(args: argparse.Namespace) -> Any:
    """The local pool of ``--workers`` processes (default 1), or with ``--ray [ADDRESS]`` a Ray executor whose runs ask for
    ``--cpus-per-run`` CPUs (default 1) and ``--gpus-per-run`` GPUs (default 0), at most ``--workers`` at once."""
    if args.ray is None:
        from prune_gym.benchmark.executors import LocalExecutor

        if args.cpus_per_run is not None or args.gpus_per_run is not None:
            raise ValueError("--cpus-per-run and --gpus-per-run are Ray resources: add --ray (the local pool gives each of its "
                             "--workers cores / workers torch threads)")
        return LocalExecutor(1 if args.workers is None else args.workers)
    from prune_gym.benchmark.ray_executor import RayExecutor

    return RayExecutor(args.ray, cpus_per_run=1 if args.cpus_per_run is None else args.cpus_per_run,
                       gpus_per_run=0 if args.gpus_per_run is None else args.gpus_per_run, max_in_flight=args.workers)


def agent_config(path: str | None, task: str | None = None, agent: str | None = None) -> dict[str, Any]:
    """The hyper-parameters ``--agent-config FILE`` gives ``task`` (all of them for ``task=None``; see
    :func:`prune_gym.agent_api.read_agent_config`), each checked to be a keyword of ``agent`` when given."""
    if path is None:
        return {}
    from prune_gym.agent_api import check_hyperparameter_names, read_agent_config

    config = read_agent_config(path, task)
    if agent is not None:
        check_hyperparameter_names(agent, config, source=f"--agent-config {path}: ")
    return config
