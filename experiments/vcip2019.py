"""Importance-aware filter selection with DDPG (VCIP 2019), at CPU scale.

Claim: a DDPG agent that decides directly which filters to prune, with a shaped
reward, reaches a higher acceleration ratio at a smaller accuracy loss than
conventional criterion-based pruning, on MNIST and CIFAR-10.

Here: AMC's DDPG on FilterSelect-v0 with continuous per-filter scores (kept when
>= 0.5) and the potential-based ``shaped`` reward, at 0.5 of the MACs, against
uniform pruning ranked by L1 and by std at the same budget, on LeNet-5/MNIST and
ResNet-20 on the CIFAR-10 subset; every network fine-tuned the same way, test
accuracy loss and acceleration (original / pruned MACs) over ``--seeds`` (search
seeds for DDPG, fine-tune seeds for the uniform baselines). Verdict: reproduced
if DDPG's loss is smaller than both baselines' on a task.

    .venv/bin/python experiments/vcip2019.py [--quick]
"""

from __future__ import annotations

import common
import numpy as np

from prune_gym.benchmark import Recovery

SETTINGS = {  # task: (episodes, warm-up, fine-tune steps, reward protocol)
    "lenet5-mnist": (200, 50, 150, {"reward_samples": 1000}),
    "resnet20-cifar10-subset": (200, 50, 150, {"reward_samples": 1000, "bn_recalibration": 100}),
}
QUICK = {"lenet5-digits": (12, 4, 20, {"reward_samples": 200})}


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0])
    rows, verdicts, payload = [], [], {}
    for task, (episodes, warmup, steps, protocol) in (QUICK if args.quick else SETTINGS).items():
        bn = protocol.get("bn_recalibration", 0)
        per_seed = common.Measurer(task, Recovery(steps=steps, seeds=(0,)), args.out, args.device, bn)
        seeded = common.Measurer(task, Recovery(steps=steps, seeds=tuple(args.seeds)), args.out, args.device, bn)
        original = per_seed.unpruned_test_score()
        results: dict[str, list[dict]] = {}
        for criterion in ("l1", "std"):
            measured = seeded.measure(common.uniform_keep(task, 0.5, criterion, args.device))
            results[f"uniform {criterion}"] = [{**measured, "test_score": score} for score in measured["test_scores"]]
        results["DDPG filter selection"] = []
        for seed in args.seeds:
            keep, search = common.search("ddpg", "FilterSelect-v0", task, seed, episodes, {"warmup_episodes": warmup}, args.device,
                                         macs_budget=0.5, action_type="continuous", reward="shaped", **protocol)
            results["DDPG filter selection"].append({**per_seed.measure(keep), **search})
        payload[task] = {"unpruned": original, **results}
        for name, values in results.items():
            rows.append([task, name, f"{np.mean([v['acceleration'] for v in values]):.2f}x",
                         common.mean_std([original - v["test_score"] for v in values], 100)])
        loss = {name: np.mean([original - v["test_score"] for v in values]) for name, values in results.items()}
        better = loss["DDPG filter selection"] < min(loss["uniform l1"], loss["uniform std"])
        verdicts.append([task, f"{100 * loss['DDPG filter selection']:.2f}", f"{100 * min(loss['uniform l1'], loss['uniform std']):.2f}",
                         "reproduced" if better else "not reproduced"])
    tables = [common.print_table(f"VCIP 2019: DDPG filter selection vs uniform criteria at 0.5 MACs (test accuracy loss in points "
                                 f"after the same fine-tune, mean +- std over {len(args.seeds)} seeds)",
                                 ["task", "method", "acceleration", "accuracy loss"], rows),
              common.print_table("Verdict: DDPG selection loses less accuracy than criterion-based pruning at the same acceleration",
                                 ["task", "DDPG loss", "best uniform loss", "verdict"], verdicts)]
    common.save("vcip2019" + ("-quick" if args.quick else ""), args.out, payload, tables, list(QUICK if args.quick else SETTINGS))


if __name__ == "__main__":
    main()
