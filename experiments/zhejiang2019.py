"""Filter standard deviation as importance (Zhejiang Univ. 2019), at CPU scale.

Claim: ranking filters by the standard deviation of their weights prunes VGG-16
and ResNet-110 on CIFAR-10 to more than 30% fewer FLOPs (faster) with
near-original accuracy after fine-tuning.

Here: uniform pruning to 0.7 of the MACs (30% fewer) of a quarter-width VGG-16
and a half-width ResNet-56 on the CIFAR-10 subset, filters ranked by std, L1 or
a fixed random ranking; each pruned network fine-tuned the same way
(150 batches, recovery seeds = ``--seeds``), scored on the test split;
MACs and measured CPU speed-up. Verdict: reproduced if std stays within 1.5
points (about one binomial standard error on 1,017 test images) of the original
and is no worse than random.

    .venv/bin/python experiments/zhejiang2019.py [--quick]
"""

from __future__ import annotations

import common
import numpy as np

from prune_gym.benchmark import Recovery

CRITERIA = ("std", "l1", "random")


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0])
    tasks = ["lenet5-digits"] if args.quick else ["vgg16-slim-cifar10-subset", "resnet56-slim-cifar10-subset"]
    steps = 20 if args.quick else 150
    tables, payload = [], {"budget": 0.7, "steps": steps, "tasks": {}}
    rows = []
    for task in tasks:
        measurer = common.Measurer(task, Recovery(steps=steps, seeds=tuple(args.seeds)), args.out, args.device)
        original = measurer.unpruned_test_score()
        payload["tasks"][task] = {"original": original}
        for criterion in CRITERIA:
            result = measurer.measure(common.uniform_keep(task, 0.7, criterion, args.device))
            scores = result["test_scores"]
            payload["tasks"][task][criterion] = result
            drop = 100 * (original - np.mean(scores))
            rows.append([task, criterion, f"{100 * original:.2f}", common.mean_std(scores, 100), f"{drop:.2f}",
                         f"{1 - result['macs_ratio']:.1%}", f"{result['speed_up']:.2f}x"])
    tables.append(common.print_table(
        "Zhejiang 2019: std vs L1 vs random ranking at 30% fewer MACs, after the same fine-tune (test accuracy %, mean +- std over "
        f"{len(args.seeds)} fine-tune seeds)",
        ["task", "criterion", "original", "after fine-tune", "drop (points)", "MACs removed", "CPU speed-up"], rows))
    verdicts = []
    for task in tasks:
        data = payload["tasks"][task]
        std_drop = data["original"] - np.mean(data["std"]["test_scores"])
        holds = std_drop <= 0.015 and np.mean(data["std"]["test_scores"]) >= np.mean(data["random"]["test_scores"])
        verdicts.append([task, f"{100 * std_drop:.2f} points", "reproduced" if holds else "not reproduced"])
    tables.append(common.print_table("Verdict: >30% fewer MACs with near-original accuracy by std ranking",
                                     ["task", "std drop", "verdict"], verdicts))
    common.save("zhejiang2019" + ("-quick" if args.quick else ""), args.out, payload, tables, tasks)


if __name__ == "__main__":
    main()
