"""DDPG, try-and-learn and the baselines on lenet5-digits at macs_budget 0.5, over seeds.

    .venv/bin/python experiments/compare_agents_digits.py [--seeds 0 1 2]

For each agent and seed: the best reward-split accuracy among the episodes that
meet the budget, its MACs ratio, and the seconds taken. DDPG runs AMC's full
schedule (100 warm-up + 300 episodes) on LayerRate-v0; try-and-learn runs 400
episodes on FilterSelect-v0 with its own reward and AMC budget enforcement.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

from prune_gym.agent_api import make_agent
from prune_gym.wrappers import EpisodeRecorder

SETUPS = {  # agent: (env id, env kwargs, episodes)
    "uniform": ("LayerRate-v0", {}, 1),
    "global": ("LayerRate-v0", {}, 1),
    "random-search": ("LayerRate-v0", {}, 400),
    "ddpg": ("LayerRate-v0", {}, 400),
    "try-and-learn": ("FilterSelect-v0", {"reward": "try-and-learn"}, 400),
}


def best_within_budget(agent: str, seed: int, budget: float) -> tuple[float, float, float]:
    env_id, kwargs, episodes = SETUPS[agent]
    env = EpisodeRecorder(gym.make(f"prune_gym:{env_id}", task="lenet5-digits", macs_budget=budget, reward_samples=300, **kwargs))
    start = time.perf_counter()
    make_agent(agent, env, seed=seed).learn(episodes)
    best = max((e for e in env.episodes if e.budget_met), key=lambda e: e.accuracy)
    return best.accuracy, best.macs_ratio, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=0.5)
    args = parser.parse_args()
    print(f"{'agent':<15}{'seed':>5}{'accuracy':>10}{'MACs ratio':>12}{'seconds':>9}")
    for agent in SETUPS:
        for seed in args.seeds:
            accuracy, ratio, seconds = best_within_budget(agent, seed, args.budget)
            print(f"{agent:<15}{seed:>5}{accuracy:>10.4f}{ratio:>12.3f}{seconds:>9.1f}")


if __name__ == "__main__":
    main()
