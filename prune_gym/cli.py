"""The ``prune-gym`` command: ``pretrain`` task models and ``list`` what is registered."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from prune_gym.errors import PruneGymError


def _pretrain(args: argparse.Namespace) -> int:
    from prune_gym.tasks import get_task
    from prune_gym.tasks.training import load_checkpoint

    task = get_task(args.task)
    path = task.checkpoint_path()
    if path.exists() and not args.retrain:
        metadata = load_checkpoint(path, task.build_model(), task.name)
        print(f"{task.name}: checkpoint {path} already trained (test accuracy {metadata['test_accuracy']:.2%}); "
              f"pass --retrain to train again")
        return 0
    result = task.pretrain(device=args.device, epochs=args.epochs, progress=not args.quiet)
    print(f"{task.name}: test accuracy {result.test_accuracy:.2%}, reward-split accuracy {result.reward_accuracy:.2%}, "
          f"{result.epochs} epochs in {result.seconds:.1f} s; checkpoint {path}")
    return 0


def _listers() -> dict[str, Callable[[], list[str]]]:
    import prune_gym
    from prune_gym.agent_api import list_agents

    return {
        "tasks": prune_gym.list_tasks,
        "models": prune_gym.list_models,
        "rewards": prune_gym.list_rewards,
        "observations": prune_gym.list_observations,
        "criteria": prune_gym.list_importance_criteria,
        "agents": list_agents,
    }


def _list(args: argparse.Namespace) -> int:
    for name in _listers()[args.what]():
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``prune-gym`` (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="prune-gym", description="A reinforcement-learning gym for CNN filter pruning.")
    commands = parser.add_subparsers(dest="command", required=True)

    pretrain = commands.add_parser("pretrain", help="train a task's model and cache its checkpoint")
    pretrain.add_argument("task", help="task name (see `prune-gym list tasks`)")
    pretrain.add_argument("--epochs", type=int, default=None, help="override the task's number of epochs")
    pretrain.add_argument("--retrain", action="store_true", help="train again even if a checkpoint exists")
    pretrain.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    pretrain.add_argument("--quiet", action="store_true", help="no progress bar")
    pretrain.set_defaults(run=_pretrain)

    listing = commands.add_parser("list", help="list registered tasks, models, rewards, observations, criteria or agents")
    listing.add_argument("what", choices=["tasks", "models", "rewards", "observations", "criteria", "agents"])
    listing.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prune-gym``; prune_gym's own errors print one line on stderr and return 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (PruneGymError, ValueError) as error:
        print(f"prune-gym {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
