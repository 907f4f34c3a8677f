"""Learning to prune filters (try-and-learn, arXiv 1801.07365): the trade-off curve over the drop allowance b.

Claim: with the reward R = psi x phi, psi = (b - (A_base - A)) / b, phi = log(1/C),
the drop allowance b alone controls the accuracy/size trade-off (a larger b
prunes more and loses more accuracy), for classification (VGG-16, ResNet) and
semantic segmentation alike.

Here: the faithful try-and-learn agent (per-layer policies over the filters'
weight statistics whose trials start at keep probability 0.5, REINFORCE,
fine-tuning between layers) on FilterSelect-v0
with ``enforce_budget=False`` (no MACs budget: b alone decides), for several b,
on a quarter-width VGG-16 (CIFAR-10 subset), a half-width ResNet-20
(Fashion-MNIST) and the FCN on MNIST scenes (mean IoU). Reported: the MACs the
learned decision keeps and its test score after the same recovery fine-tune
(from the weights tuned during learning), mean +- std over ``--seeds``.
Verdict: reproduced if the kept MACs fall as b grows (no step up by more than
0.02, the largest b below the smallest) and the score drop at the largest b is
at least the drop at the smallest, on every task.

    .venv/bin/python experiments/try_and_learn.py [--quick]
"""

from __future__ import annotations

import common
import gymnasium as gym
import numpy as np

from prune_gym.benchmark import Recovery
from prune_gym_agents.try_and_learn import TryAndLearnAgent
from prune_gym_agents.try_and_learn.budget import learn_decision

TASKS = {  # task: reward protocol
    "vgg16-slim-cifar10-subset": {"reward_samples": 300, "bn_recalibration": 100},
    "resnet20-slim-fashion-mnist": {"reward_samples": 300, "bn_recalibration": 100},
    "fcn-mnist-scenes": {"reward_samples": 200, "bn_recalibration": 100},
}
AGENT = {"trials_per_update": 4, "max_updates_per_layer": 4, "recovery_steps": 20}  # short: one seed takes ~20 min on one thread


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0])
    tasks = {"lenet5-digits": {"reward_samples": 200}} if args.quick else TASKS
    allowances = (0.02, 0.2) if args.quick else (0.01, 0.05, 0.2)
    agent_kwargs = {"trials_per_update": 4, "max_updates_per_layer": 3, "recovery_steps": 10} if args.quick else AGENT
    steps = 20 if args.quick else 100
    rows, payload, trends = [], {"allowances": allowances, "agent": agent_kwargs, "steps": steps, "tasks": {}}, []
    for task, protocol in tasks.items():
        measurer = common.Measurer(task, Recovery(steps=steps, seeds=(0,)), args.out, args.device, protocol.get("bn_recalibration", 0))
        original = measurer.unpruned_test_score()
        payload["tasks"][task] = {"unpruned": original, "runs": {}}
        means = []
        for b in allowances:
            runs = []
            for seed in args.seeds:
                env = gym.make("FilterSelect-v0", task=task, reward="try-and-learn", reward_kwargs={"drop_allowance": b},
                               enforce_budget=False, device=args.device, **protocol)
                agent = TryAndLearnAgent(env, seed=seed, **agent_kwargs)
                learn_decision(agent)
                weights = {k: v.detach().cpu() for k, v in env.unwrapped.network.model.state_dict().items()}
                runs.append(measurer.measure(list(agent.decision), weights=weights))
                print(f"{task} b={b:g} seed {seed}: MACs kept {runs[-1]['macs_ratio']:.3f}, test score {runs[-1]['test_score']:.4f} "
                      f"(unpruned {original:.4f})", flush=True)
            payload["tasks"][task]["runs"][str(b)] = runs
            macs, drop = [r["macs_ratio"] for r in runs], [original - r["test_score"] for r in runs]
            means.append((np.mean(macs), np.mean(drop)))
            rows.append([task, f"{b:g}", common.mean_std(macs, 1, 3), common.mean_std(drop, 100)])
        kept, dropped = zip(*means)
        trend = all(np.diff(kept) <= 0.02) and kept[-1] < kept[0] and dropped[-1] >= dropped[0]
        trends.append([task, " -> ".join(f"{m:.2f}" for m in kept), "reproduced" if trend else "not reproduced"])
    metric = "test score (accuracy, or mean IoU for fcn-mnist-scenes)"
    tables = [common.print_table(f"try-and-learn: MACs kept and {metric} drop in points after the same fine-tune, by drop allowance b "
                                 f"(mean +- std over {len(args.seeds)} seeds)", ["task", "b", "MACs kept / original", "score drop"], rows),
              common.print_table("Verdict: b alone controls the trade-off (more pruning, larger drop as b grows)",
                                 ["task", "MACs kept as b grows", "verdict"], trends)]
    common.save("try_and_learn" + ("-quick" if args.quick else ""), args.out, payload, tables, list(tasks))


if __name__ == "__main__":
    main()
