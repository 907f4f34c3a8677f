"""One-step pruning-recovery (ICTAI 2019) against layer-by-layer pruning-recovery, at equal MACs, at CPU scale.

Claim: a global rate sets each layer's rate (one threshold on layer-normalised
importance ranked across layers); pruning once and fine-tuning once reaches the
accuracy of pruning layer by layer with recovery after each layer, in a fraction
of the time.

Here: the ICTAI global ranking at 0.5 of the MACs on a half-width ResNet-20
(Fashion-MNIST) and the quarter-width VGG-16 (CIFAR-10 subset). One-step: prune
all groups with the global rates, fine-tune 60 batches once. Layer by
layer: prune the groups one at a time to the same rates (re-ranking filters on
the tuned weights), fine-tuning 60 batches after each group. Both end
at the same per-group widths (equal MACs); test accuracy after recovery and the
total wall time, over ``--seeds``. A third row gives the one fine-tune as many
batches as layer-by-layer trains in all (equal training): it tells whether a
gap comes from the pruning schedule or from the training budget. Verdict (on
the one-step row): reproduced if one-step is within one standard error (test
split) of layer-by-layer and at least 3x faster.

    .venv/bin/python experiments/ictai2019.py [--quick]
"""

from __future__ import annotations

import time

import common
import gymnasium as gym
import numpy as np

import prune_gym
from prune_gym.agent_api import make_agent
from prune_gym.benchmark.scoring import standard_error
from prune_gym.tasks import evaluate, recover


def global_rates(task: str, budget: float, device: str) -> np.ndarray:
    """The ICTAI one-step rates: one threshold on layer-normalised L1 importance ranked globally."""
    env = gym.make("LayerRate-v0", task=task, macs_budget=budget, reward_samples=1, device=device)
    return np.asarray(make_agent("global", env).rates)


def one_step(task: str, rates: np.ndarray, steps: int, seed: int, device: str) -> tuple[float, float]:
    """Prune every group at once, fine-tune once; (test accuracy, seconds of pruning and fine-tuning)."""
    env = gym.make("LayerRate-v0", task=task, macs_budget=1.0, enforce_budget=False, reward_samples=1, device=device).unwrapped
    started = time.perf_counter()
    budget = env.rate_budget()
    keep = budget.keep_masks(budget.kept_counts(rates))
    pruned = env.network.export(keep)
    splits = env.task.splits(device)
    recover(pruned, splits, env.task.training, steps=steps, seed=seed, progress=False)
    seconds = time.perf_counter() - started
    return evaluate(pruned, splits.test_x, splits.test_y), seconds


def layer_by_layer(task: str, rates: np.ndarray, steps: int, seed: int, device: str) -> tuple[float, float]:
    """Prune one group at a time (ranked on the current weights), fine-tuning after each; (test accuracy, seconds)."""
    env = gym.make("LayerRate-v0", task=task, macs_budget=1.0, enforce_budget=False, reward_samples=1, device=device).unwrapped
    started = time.perf_counter()
    keep = env.network.full_mask()
    for group, rate in enumerate(rates):
        if rate <= 0:
            continue
        channels = env.network.groups[group].num_channels
        keep[group] = env.ranking.keep_most_important(group, round(channels * (1 - rate)), env.criterion)
        env.recover(keep, steps=steps, seed=seed)  # the env re-ranks filters on the tuned weights
    seconds = time.perf_counter() - started
    splits = env.task.splits(device)
    return evaluate(env.network.export(keep), splits.test_x, splits.test_y), seconds


def main() -> None:
    args = common.arguments(__doc__.splitlines()[0])
    tasks = ["lenet5-digits"] if args.quick else ["resnet20-slim-fashion-mnist", "vgg16-slim-cifar10-subset"]
    steps = 10 if args.quick else 60
    rows, verdicts, payload = [], [], {"budget": 0.5, "steps": steps, "tasks": {}}
    for task in tasks:
        rates = global_rates(task, 0.5, args.device)
        one_step(task, rates, 1, 0, args.device)  # untimed warm-up: the pruned shapes' kernels are built once
        results = {name: [method(task, rates, steps, seed, args.device) for seed in args.seeds]
                   for name, method in (("one-step", one_step), ("layer-by-layer", layer_by_layer))}
        total_steps = steps * int(np.count_nonzero(rates > 0))  # layer-by-layer's training, given to one fine-tune
        results["one-step, same total batches"] = [one_step(task, rates, total_steps, seed, args.device) for seed in args.seeds]
        payload["tasks"][task] = {"rates": rates.tolist(), **{name: [{"test_score": s, "seconds": t} for s, t in values]
                                                               for name, values in results.items()}}
        for name, values in results.items():
            rows.append([task, name, common.mean_std([s for s, _ in values], 100), common.mean_std([t for _, t in values], 1, 1)])
        one, layered = (np.array(results[name]) for name in ("one-step", "layer-by-layer"))
        samples = len(prune_gym.get_task(task).splits().test_y)
        close = one[:, 0].mean() >= layered[:, 0].mean() - standard_error(layered[:, 0].mean(), samples)
        faster = layered[:, 1].mean() / one[:, 1].mean()
        verdicts.append([task, f"{100 * (one[:, 0].mean() - layered[:, 0].mean()):+.2f} points", f"{faster:.1f}x",
                         "reproduced" if close and faster >= 3 else "partly" if close or faster >= 3 else "not reproduced"])
    tables = [common.print_table(f"ICTAI 2019: one-step vs layer-by-layer pruning-recovery at 0.5 MACs (test accuracy %, seconds; "
                                 f"mean +- std over {len(args.seeds)} seeds)", ["task", "method", "test accuracy", "wall time (s)"], rows),
              common.print_table("Verdict: one-step recovery matches layer-by-layer accuracy in a fraction of the time",
                                 ["task", "one-step minus layer-by-layer", "time saved", "verdict"], verdicts)]
    common.save("ictai2019" + ("-quick" if args.quick else ""), args.out, payload, tables, tasks)


if __name__ == "__main__":
    main()
