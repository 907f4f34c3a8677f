"""Structural redundancy by clustering (CISAI 2022) with RL-chosen cluster dimensions, at CPU scale.

Claim: clustering a layer's filters and pruning the redundant ones inside
similar sets, with RL choosing each layer's cluster dimension (hence its rate),
beats norm-based criteria at equal FLOPs.

Here: at 0.5 of the MACs of a half-width ResNet-20 on Fashion-MNIST, AMC's DDPG
on LayerRate-v0 with ``criterion="cluster"`` (the decided width is the number
of k-means clusters; each cluster keeps its filter nearest the centroid)
against uniform rates with the cluster, L1 and L2 criteria and DDPG with L1;
every network fine-tuned the same way and scored on the test split (mean +-
std over ``--seeds``: search seeds for DDPG, fine-tune seeds for the fixed
rankings). Verdict: reproduced if RL + cluster beats every uniform norm
criterion by more than one test standard error.

    .venv/bin/python experiments/cisai2022.py [--quick]
"""

from __future__ import annotations

import common
import numpy as np

import prune_gym
from prune_gym.benchmark import Recovery
from prune_gym.benchmark.scoring import standard_error


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0])
    task = "lenet5-digits" if args.quick else "resnet20-slim-fashion-mnist"
    episodes, warmup = (12, 4) if args.quick else (150, 50)
    steps = 20 if args.quick else 150
    protocol = {"reward_samples": 200 if args.quick else 1000, **({} if args.quick else {"bn_recalibration": 100})}
    measurer = common.Measurer(task, Recovery(steps=steps, seeds=(0,)), args.out, args.device, protocol.get("bn_recalibration", 0))
    methods: dict[str, list[float]] = {}
    for criterion in ("cluster", "l1", "l2"):
        scorer = common.Measurer(task, Recovery(steps=steps, seeds=tuple(args.seeds)), args.out, args.device,
                                 protocol.get("bn_recalibration", 0))
        methods[f"uniform {criterion}"] = scorer.measure(common.uniform_keep(task, 0.5, criterion, args.device))["test_scores"]
    for criterion in ("cluster", "l1"):
        scores = []
        for seed in args.seeds:
            keep, _ = common.search("ddpg", "LayerRate-v0", task, seed, episodes, {"warmup_episodes": warmup}, args.device,
                                    macs_budget=0.5, criterion=criterion, **protocol)
            scores.append(measurer.measure(keep)["test_score"])
        methods[f"DDPG + {criterion}"] = scores
    original = measurer.unpruned_test_score()
    rows = [[name, common.mean_std(scores, 100)] for name, scores in methods.items()]
    tables = [common.print_table(f"CISAI 2022 on {task} at 0.5 MACs (test accuracy %, unpruned {100 * original:.2f})",
                                 ["method", "test accuracy after fine-tune"], rows)]
    rl = np.mean(methods["DDPG + cluster"])
    best_norm = max(np.mean(methods["uniform l1"]), np.mean(methods["uniform l2"]))
    margin = standard_error(best_norm, len(prune_gym.get_task(task).splits().test_y))
    verdict = "reproduced" if rl - best_norm > margin else "partly" if rl >= best_norm else "not reproduced"
    tables.append(common.print_table("Verdict: RL-chosen cluster dimensions beat norm criteria at equal MACs",
                                     ["RL + cluster minus best uniform norm", "test standard error", "verdict"],
                                     [[f"{100 * (rl - best_norm):+.2f} points", f"{100 * margin:.2f} points", verdict]]))
    payload = {"task": task, "episodes": episodes, "steps": steps, "protocol": protocol, "unpruned": original, "methods": methods}
    common.save("cisai2022" + ("-quick" if args.quick else ""), args.out, payload, tables, [task])


if __name__ == "__main__":
    main()
