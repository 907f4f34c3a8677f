"""How close a prune_gym episode gets to the physical floor, and how far the peers' way sits above it.

Usage (from the repository root)::

    .venv/bin/python benchmarks/env_speed.py [--device cpu|cuda] [--quick]

For each task, every episode uses fresh seeded random actions at macs_budget 0.5
and is timed three ways, like for like:

* ``floor``: forward pass of the physically pruned network (``env.export()``,
  torch-pruning output) over the same reward samples, same device and batch size;
* ``env``: the whole LayerRate-v0 / FilterSelect-v0 episode (``reset`` + every
  ``step``), replayed with the evaluation cache cleared so it really evaluates;
* ``naive``: the same decisions done the way NNI's AMC does: at every step a deep
  copy pruned physically with torch-pruning and re-profiled with FlopCounterMode,
  then a DataLoader evaluation.

All three run layer shapes the kernel library has seen (the floor after one
untimed pass). The episode's first run, when its pruned shapes are new and
oneDNN (CPU) creates its kernels, is reported apart as ``cold``: every way of
scoring a new pruned network pays that once.

Prints medians, the ratios env/floor and naive/env, a scaling table, and the
peak RSS after 100 and 2000 LeNet-5 episodes; writes them as JSON too.
``--prefix-cache`` instead times try-and-learn trials (one layer's keep-vector
varied, earlier layers fixed) with the evaluator's prefix cache against full
forward passes (:func:`prefix_cache_speed`).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch_pruning as tp
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if SHARED_DATA.is_dir():
    os.environ.setdefault("PRUNE_GYM_DATA", str(SHARED_DATA))

import prune_gym  # noqa: E402
from prune_gym.progress import progress_bar  # noqa: E402
from prune_gym.pruning.evaluation import MaskEvaluator  # noqa: E402

BATCH = {"cpu": 100, "cuda": 1000}


def synchronise(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock timers are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by ``work()`` (synchronised) and its result."""
    synchronise(device)
    start = time.perf_counter()
    result = work()
    synchronise(device)
    return time.perf_counter() - start, result


def ensure_checkpoint(task_name: str, device: torch.device) -> str:
    """Use the cached checkpoint, or train one epoch (speed does not depend on accuracy)."""
    task = prune_gym.get_task(task_name)
    if task.checkpoint_path().exists():
        return "cached checkpoint"
    task.pretrain(device=device, epochs=1)
    return "1-epoch checkpoint (trained now)"


def make_env(env_id: str, task: str, samples: int, device: torch.device) -> gym.Env:
    """The environment with continuous actions (random rates or keep scores), scoring ``samples`` reward images."""
    return gym.make(env_id, task=task, reward="error", macs_budget=0.5, reward_samples=samples,
                    batch_size=BATCH[device.type], device=device, action_type="continuous")


def result_key(env_id: str) -> str:
    """``LayerRate-v0`` -> ``layer_rate``: the results file's key for an environment."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", env_id.split("-")[0]).lower()


def random_actions(env: gym.Env, rng: np.random.Generator) -> list[np.ndarray]:
    """One action per group, uniform in [0, 1)."""
    return [rng.random(env.action_space.shape).astype(np.float32) for _ in range(env.unwrapped.network.num_groups)]


def run_episode(env: gym.Env, actions: list[np.ndarray]) -> list[np.ndarray]:
    """One episode with the given actions; returns the applied keep-mask."""
    env.reset(seed=0)
    for action in actions:
        env.step(action)
    return env.unwrapped.last_keep_mask


def floor_forward(model: torch.nn.Module, x: torch.Tensor, batch: int) -> None:
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            model(x[start:start + batch])


def naive_episode(base, keep: list[np.ndarray], batch: int) -> float:
    """NNI-AMC style: per step deep copy + torch-pruning + FlopCounterMode; DataLoader evaluation at the end."""
    network = base.network
    example = base.evaluator.x[:1]
    pruned = network.model
    for step in range(network.num_groups):
        pruned = copy.deepcopy(network.model).eval()
        graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
        modules = dict(pruned.named_modules())
        for group, mask in zip(network.groups[:step + 1], keep[:step + 1]):
            dropped = np.flatnonzero(~mask).tolist()
            if dropped:
                graph.get_pruning_group(modules[group.name], tp.prune_conv_out_channels, idxs=dropped).prune()
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            pruned(example)
    loader = DataLoader(TensorDataset(base.evaluator.x, base.evaluator.y), batch_size=batch)
    correct = 0
    with torch.inference_mode():
        for x, y in loader:
            correct += int((pruned(x).argmax(1) == y).sum())
    return correct / len(base.evaluator.y)


def compare(task: str, episodes: int, device: torch.device, bar: tqdm, samples: int = 1000) -> dict[str, Any]:
    """Median seconds per episode of floor, env (both envs) and naive, and their ratios; ``bar`` advances per episode."""
    row: dict[str, Any] = {"task": task, "checkpoint": ensure_checkpoint(task, device)}
    batch = BATCH[device.type]
    for position, env_id in enumerate(prune_gym.list_environments()[:2]):  # the naive way is timed on the first (LayerRate-v0)
        env = make_env(env_id, task, samples, device)
        base = env.unwrapped
        rng = np.random.default_rng(0)
        run_episode(env, random_actions(env, rng))  # warm-up: allocator, importance caches
        floors, envs, colds, naives = [], [], [], []
        for _ in range(episodes):
            actions = random_actions(env, rng)
            seconds, keep = timed(device, lambda: run_episode(env, actions))
            colds.append(seconds)  # the first run of new layer shapes: oneDNN/cuDNN set up their kernels
            base.evaluator.clear()
            envs.append(timed(device, lambda: run_episode(env, actions))[0])
            exported = base.export()
            floor_forward(exported, base.evaluator.x, batch)
            floors.append(timed(device, lambda: floor_forward(exported, base.evaluator.x, batch))[0])
            if position == 0:
                naives.append(timed(device, lambda: naive_episode(base, keep, batch))[0])
            bar.update()
        key = result_key(env_id)
        row[f"env_{key}"] = statistics.median(envs)
        row[f"env_cold_{key}"] = statistics.median(colds)
        row[f"floor_{key}"] = statistics.median(floors)
        row[f"env/floor_{key}"] = row[f"env_{key}"] / row[f"floor_{key}"]
        if naives:
            row["naive"] = statistics.median(naives)
            row["naive/env"] = row["naive"] / row[f"env_{key}"]
        row["groups"] = base.network.num_groups
        env.close()
    return row


def prefix_cache_speed(task: str, device: torch.device, trials: int, samples: int = 1000) -> dict[str, Any]:
    """Seconds per try-and-learn trial with the evaluator's prefix cache and with full forward passes.

    A trial of layer ``l`` scores one new mask (its other steps hit the mask
    cache): earlier layers fixed to random decisions, layer ``l`` random, later
    layers whole. For every layer, ``trials`` such masks are scored by an
    evaluator with the prefix cache and by one without it, alternating which
    goes first; each mask is scored once untimed by both before (kernels for its
    layer shapes, the cut recorded). Returns the median seconds per layer and
    their means over the layers (a run with as many trials for every layer).
    """
    env = gym.make("FilterSelect-v0", task=task, reward="try-and-learn", enforce_budget=False, reward_samples=samples,
                   batch_size=BATCH[device.type], device=device)
    base = env.unwrapped
    evaluators = {label: MaskEvaluator(base.network, base.evaluator.x, base.evaluator.y, batch_size=base.evaluator.batch_size,
                                       cache_size=0, metric=base.task.metric, prefix_cache_bytes=cache_bytes)
                  for label, cache_bytes in (("cached", base.evaluator.prefix_cache_bytes), ("full", 0))}
    rng = np.random.default_rng(4)
    fixed = base.network.full_mask()
    per_layer: dict[str, list[float]] = {"cached": [], "full": []}
    bar = progress_bar(base.network.num_groups, f"{task}: prefix cache", "layer")
    for layer, group in enumerate(base.network.groups):
        masks = []
        for _ in range(trials):
            keep = [mask.copy() for mask in fixed]
            keep[layer] = rng.random(group.num_channels) < 0.5
            keep[layer][0] = True
            masks.append(keep)
        for evaluator in evaluators.values():
            for keep in masks:
                evaluator.score(keep)
        timings: dict[str, list[float]] = {"cached": [], "full": []}
        for index, keep in enumerate(masks):
            for label in ("cached", "full") if index % 2 == 0 else ("full", "cached"):
                timings[label].append(timed(device, lambda: evaluators[label].score(keep))[0])
        for label, values in timings.items():
            per_layer[label].append(statistics.median(values))
        fixed[layer] = masks[-1][layer]
        bar.update()
    bar.close()
    env.close()
    row = {"task": task, "trial_cached": statistics.mean(per_layer["cached"]), "trial_full": statistics.mean(per_layer["full"]),
           "prefix_hits": evaluators["cached"].prefix_hits, "seconds_per_layer": per_layer,
           "ratio_per_layer": [c / f for c, f in zip(per_layer["cached"], per_layer["full"])]}
    row["ratio"] = row["trial_cached"] / row["trial_full"]
    return row


def rss_mb() -> tuple[float, float]:
    """(peak, current) resident set size in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak, current


def memory_soak(device: torch.device, checkpoints: tuple[int, ...] = (100, 2000)) -> list[dict[str, float]]:
    """Peak/current RSS after 100 and 2000 LeNet-5 episodes (random actions, cache on)."""
    env = make_env("LayerRate-v0", "lenet5-mnist", 1000, device)
    rng = np.random.default_rng(1)
    rows = []
    bar = progress_bar(max(checkpoints), "memory soak", "episode")
    for episode in range(1, max(checkpoints) + 1):
        run_episode(env, random_actions(env, rng))
        bar.update()
        if episode in checkpoints:
            peak, current = rss_mb()
            rows.append({"episodes": episode, "peak_rss_mb": peak, "rss_mb": current, "cache_hits": env.unwrapped.evaluator.hits})
    bar.close()
    return rows


def scaling(device: torch.device, episodes: int) -> list[dict[str, Any]]:
    """LayerRate episode time vs reward samples (LeNet-5/MNIST) and vs model size."""
    rows = []
    settings = [("lenet5-mnist", 250), ("lenet5-mnist", 1000), ("lenet5-mnist", 4000), ("resnet20-cifar10-subset", 1000),
                ("vgg16-cifar10-subset", 1000)]
    bar = progress_bar(len(settings), "scaling", "setting")
    for task, samples in settings:
        env = make_env("LayerRate-v0", task, samples, device)
        rng = np.random.default_rng(2)
        run_episode(env, random_actions(env, rng))
        seconds = statistics.median(timed(device, lambda: run_episode(env, random_actions(env, rng)))[0] for _ in range(episodes))
        rows.append({"task": task, "samples": samples, "macs": env.unwrapped.network.original_macs, "episode_s": seconds})
        bar.update()
    bar.close()
    return rows


def profile_lenet(device: torch.device) -> str:
    """cProfile of LeNet-5 episodes: where the time goes when the forward pass is tiny."""
    import cProfile
    import io
    import pstats

    env = make_env("LayerRate-v0", "lenet5-mnist", 1000, device)
    rng = np.random.default_rng(3)
    run_episode(env, random_actions(env, rng))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        run_episode(env, random_actions(env, rng))
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    return text.getvalue()


def prefix_cache_report(device: torch.device, machine: str, trials: int) -> None:
    """Print and write (``results/prefix_cache-<device>.json``) :func:`prefix_cache_speed` on ResNet-20 and VGG-16."""
    rows = []
    for task in ("resnet20-cifar10-subset", "vgg16-cifar10-subset"):
        ensure_checkpoint(task, device)
        rows.append(prefix_cache_speed(task, device, trials))
    print("\nseconds per try-and-learn trial (mean over layers of the median), 1000 reward samples; full = the whole network")
    print(f"{'task':<26}{'full':>9}{'cached':>9}{'ratio':>7}  ratio per layer")
    for r in rows:
        print(f"{r['task']:<26}{r['trial_full']:>9.4f}{r['trial_cached']:>9.4f}{r['ratio']:>7.2f}  "
              + " ".join(f"{ratio:.2f}" for ratio in r["ratio_per_layer"]))
    out = ROOT / "benchmarks" / "results" / f"prefix_cache-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "date": time.strftime("%Y-%m-%d"), "device": str(device),
                               "threads": torch.get_num_threads(), "trials": trials,
                               "prefix_cache": rows}, indent=2))
    print(f"results written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer episodes (a smoke run)")
    parser.add_argument("--prefix-cache", action="store_true", help="only the try-and-learn trial time with and without the prefix cache")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(os.cpu_count() or 1)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    if args.prefix_cache:
        prefix_cache_report(device, cpu, 2 if args.quick else 5)
        return
    episodes = {task: 2 if args.quick else n for task, n in {"lenet5-mnist": 7, "resnet20-cifar10-subset": 7,
                                                              "vgg16-cifar10-subset": 3}.items()}
    results: dict[str, Any] = {"machine": cpu, "device": str(device), "threads": torch.get_num_threads()}
    bar = progress_bar(2 * sum(episodes.values()), "floor, env and naive episodes", "episode")  # two environments each
    results["compare"] = [compare(task, n, device, bar) for task, n in episodes.items()]
    bar.close()
    print("\nseconds per episode (median), 1000 reward samples, macs_budget 0.5; env = LayerRate-v0 / FilterSelect-v0;")
    print("cold = the episode's first run, when its layer shapes are new to the kernel library (floor and naive run warm)")
    print(f"{'task':<26}{'groups':>7}{'floor':>8}{'LayerRate':>10}{'cold':>8}{'env/floor':>10}"
          f"{'FilterSel':>10}{'cold':>8}{'env/floor':>10}{'naive':>8}{'naive/env':>10}")
    for r in results["compare"]:
        print(f"{r['task']:<26}{r['groups']:>7}{r['floor_layer_rate']:>8.4f}{r['env_layer_rate']:>10.4f}{r['env_cold_layer_rate']:>8.4f}"
              f"{r['env/floor_layer_rate']:>10.2f}{r['env_filter_select']:>10.4f}{r['env_cold_filter_select']:>8.4f}"
              f"{r['env/floor_filter_select']:>10.2f}{r['naive']:>8.3f}{r['naive/env']:>10.1f}")
    results["scaling"] = scaling(device, 2 if args.quick else 5)
    print("\nscaling: LayerRate-v0 episode time")
    print(f"{'task':<26}{'samples':>8}{'MACs':>14}{'episode s':>11}")
    for r in results["scaling"]:
        print(f"{r['task']:<26}{r['samples']:>8}{r['macs']:>14,}{r['episode_s']:>11.4f}")
    results["memory"] = memory_soak(device, (20, 200) if args.quick else (100, 2000))
    print("\nmemory over lenet5-mnist LayerRate-v0 episodes")
    for r in results["memory"]:
        print(f"after {r['episodes']:>5} episodes: peak RSS {r['peak_rss_mb']:.1f} MB, RSS {r['rss_mb']:.1f} MB, "
              f"cache hits {r['cache_hits']}")
    growth = results["memory"][-1]["peak_rss_mb"] - results["memory"][0]["peak_rss_mb"]
    print(f"peak RSS growth: {growth:.1f} MB")
    print("\nwhere a LeNet-5 episode's time goes (20 episodes, by own time):")
    print(profile_lenet(device))
    out = ROOT / "benchmarks" / "results" / f"env_speed-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
