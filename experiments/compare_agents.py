"""DDPG, try-and-learn and the baselines on one task at one MACs budget, over seeds.

    .venv/bin/python experiments/compare_agents.py [--task lenet5-digits] [--seeds 0 1 2] [--budget 0.5]
    .venv/bin/python experiments/compare_agents.py --task resnet20-cifar10-subset --seeds 0 \\
        --reward-samples 1000 --env-arg bn_recalibration=100

For each agent and seed: the best reward-split accuracy among the episodes that
meet the budget, its MACs ratio, and the seconds taken. Any installed agent
(``--agents``) runs on the first environment its declaration fits
(``prune_gym.agent_api.compatible_environment``): DDPG runs AMC's full schedule
(100 warm-up + 300 episodes) on LayerRate-v0, try-and-learn on FilterSelect-v0
with its own reward; deterministic schedules (uniform, global) run one episode.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym

from prune_gym.agent_api import compatible_environment, list_agents, make_agent
from prune_gym.cli import parse_key_values
from prune_gym.wrappers import EpisodeRecorder

ONE_EPISODE = {"uniform", "global"}  # deterministic schedules: every episode is the same
AGENT_REWARDS = {"try-and-learn": "try-and-learn"}  # agents built around their own reward


def best_within_budget(agent: str, seed: int, args: argparse.Namespace, env_kwargs: dict[str, Any]) -> tuple[float, float, float]:
    """(accuracy, MACs ratio, seconds) of the agent's best budget-meeting episode."""
    env_id, action_type = compatible_environment(agent)
    kwargs = {"action_type": action_type, **({"reward": AGENT_REWARDS[agent]} if agent in AGENT_REWARDS else {})}
    env = EpisodeRecorder(gym.make(env_id, task=args.task, macs_budget=args.budget,
                                   reward_samples=args.reward_samples, **{**env_kwargs, **kwargs}))
    start = time.perf_counter()
    make_agent(agent, env, seed=seed).learn(1 if agent in ONE_EPISODE else args.episodes)
    best = max((e for e in env.episodes if e.budget_met), key=lambda e: e.score)
    return best.score, best.macs_ratio, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lenet5-digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--reward-samples", type=int, default=300)
    parser.add_argument("--agents", nargs="+", default=["uniform", "global", "random-search", "ddpg", "try-and-learn"],
                        help=f"installed agents: {list_agents()}")
    parser.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE", help="extra environment keyword")
    args = parser.parse_args()
    env_kwargs = parse_key_values(args.env_arg)
    print(f"{args.task}, macs_budget {args.budget}, {args.reward_samples} reward samples, {env_kwargs or 'default env'}")
    print(f"{'agent':<15}{'seed':>5}{'accuracy':>10}{'MACs ratio':>12}{'seconds':>9}", flush=True)
    for agent in args.agents:
        for seed in args.seeds:
            accuracy, ratio, seconds = best_within_budget(agent, seed, args, env_kwargs)
            print(f"{agent:<15}{seed:>5}{accuracy:>10.4f}{ratio:>12.3f}{seconds:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
