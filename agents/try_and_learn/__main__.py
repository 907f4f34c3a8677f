"""Run try-and-learn to the end on a task and report its decision (not the best sampled trial).

Usage (from the repository root)::

    python -m prune_gym_agents.try_and_learn --task resnet20-cifar10-subset --drop-allowance 0.02 [--agent-arg key=value ...]

Learns every layer on FilterSelect-v0 with ``reward="try-and-learn"`` and
``enforce_budget=False`` (no MACs budget clips anything), plays the decision
once, and prints per layer the filters kept, then the decision's MACs and
params (ratios to the original), its reward-split score and its test-split
score (the exported network with the fine-tuned weights) next to the unpruned
network's; ``--json PATH`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym

from prune_gym.tasks import evaluate, get_task

from .agent import TryAndLearnAgent
from .budget import learn_decision


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="lenet5-digits")
    parser.add_argument("--drop-allowance", type=float, default=0.02, help="the reward's b (fraction of the score)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-samples", type=int, default=1000)
    parser.add_argument("--bn-recalibration", type=int, default=0)
    parser.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE", help="a TryAndLearnAgent hyper-parameter")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    hyperparameters = {}
    for item in args.agent_arg:
        key, separator, value = item.partition("=")
        if not separator:
            parser.error(f"--agent-arg {item!r}: expected KEY=VALUE, e.g. recovery_steps=200")
        hyperparameters[key] = json.loads(value)
    env = gym.make("prune_gym:FilterSelect-v0", task=args.task, reward="try-and-learn",
                   reward_kwargs={"drop_allowance": args.drop_allowance}, enforce_budget=False,
                   reward_samples=args.reward_samples, bn_recalibration=args.bn_recalibration)
    agent = TryAndLearnAgent(env, seed=args.seed, **hyperparameters)
    base = agent.pruning_env
    splits = get_task(args.task).splits()
    test_before = evaluate(base.network.model, splits.test_x, splits.test_y, base.task.metric)
    progress: list[dict[str, float]] = []

    def record(metrics: dict[str, float]) -> None:
        progress.append(metrics)
        if "update" not in metrics:
            print(f"  layer {metrics['layer']:.0f}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "layer"), flush=True)

    agent.metrics_callback = record
    start = time.perf_counter()
    episodes = 0
    while not agent.finished:
        agent.learn(1)
        episodes += 1
    learn_decision(agent)
    last = base.last_state
    assert last is not None
    report = {
        "task": args.task, "drop_allowance": args.drop_allowance, "seed": args.seed, "hyperparameters": hyperparameters,
        "episodes": episodes + 1, "seconds": time.perf_counter() - start,
        "updates_per_layer": [sum(1 for m in progress if "update" in m and m["layer"] == g) for g in range(agent.episode_length)],
        "kept_channels": [int(m.sum()) for m in agent.decision], "channels": agent.widths,
        "macs_ratio": last.macs_ratio, "params_ratio": last.params_ratio,
        "reward_score": last.score, "reward_score_before": base.score_before,
        "test_score": evaluate(base.export(), splits.test_x, splits.test_y, base.task.metric), "test_score_before": test_before,
        "prefix_hits": base.evaluator.prefix_hits, "evaluations": base.evaluator.misses,
    }
    for group, kept, updates in zip(base.network.groups, report["kept_channels"], report["updates_per_layer"]):
        print(f"{group.index:>3} {group.name:<28} kept {kept:>4}/{group.num_channels:<4} after {updates} updates")
    print(f"decision: MACs {report['macs_ratio']:.3f}, params {report['params_ratio']:.3f} of the original; "
          f"reward-split score {report['reward_score']:.4f} (unpruned {report['reward_score_before']:.4f}), "
          f"test {report['test_score']:.4f} (unpruned {report['test_score_before']:.4f}); "
          f"{report['episodes']} episodes, {report['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
