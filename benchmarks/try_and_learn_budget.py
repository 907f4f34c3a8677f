"""How many layers try-and-learn learns within a suite entry's evaluation budget, per setting: sizes its leaderboard row.

Usage (from the repository root)::

    .venv/bin/python benchmarks/try_and_learn_budget.py [--suite cpu-v0] [--entry resnet20-slim-fashion-mnist/FilterSelect-0.5]

The benchmark stops every agent at the entry's number of reward evaluations,
and try-and-learn's dense reward evaluates within episodes; a setting whose
layers do not all get learned within the budget leaves the later layers to
the budget clipping. Prints, per setting: layers learned, episodes, evaluations,
the best budget-meeting reward-split score and the seconds.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

from prune_gym.benchmark import get_suite
from prune_gym.wrappers import EpisodeBudgetExhausted, EpisodeRecorder
from prune_gym_agents.try_and_learn import TryAndLearnAgent

SETTINGS = [{"trials_per_update": trials, "max_updates_per_layer": updates, "recovery_steps": 0}
            for trials, updates in ((3, 2), (2, 2), (2, 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="cpu-v0")
    parser.add_argument("--entry", default="resnet20-slim-fashion-mnist/FilterSelect-0.5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    entry = get_suite(args.suite).entry(args.entry)
    print(f"{entry.name}: budget {entry.episodes} episodes and as many reward evaluations")
    for kwargs in SETTINGS:
        env = EpisodeRecorder(gym.make(entry.env, task=entry.task, macs_budget=entry.macs_budget, reward="try-and-learn",
                                       action_type="binary", **entry.env_kwargs),
                              max_episodes=entry.episodes, max_evaluations=entry.episodes)
        agent = TryAndLearnAgent(env, seed=args.seed, **kwargs)
        started = time.perf_counter()
        try:
            agent.learn(entry.episodes)
        except EpisodeBudgetExhausted:
            pass
        met = [episode.score for episode in env.episodes if episode.budget_met]
        print(f"{kwargs}: layers learned {agent.learned_layers}/{agent.pruning_env.network.num_groups}, "
              f"episodes {len(env.episodes)}, evaluations {env.episodes[-1].evaluations}, "
              f"best score {max(met) if met else float('nan'):.4f}, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
