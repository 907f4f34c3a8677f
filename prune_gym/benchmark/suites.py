"""Benchmark suites: named, versioned sets of pruning problems, each with one protocol for every agent.

A :class:`Suite` fixes everything a score depends on: its entries (task,
environment, MACs budget, reward protocol), the search budget of each entry
(``episodes``: at most that many episodes and as many reward-split
evaluations, the same for every agent, whether its reward comes once per
episode or at every step), the seeds, and
the recovery every pruned network gets before it is scored on the test split
(:class:`Recovery`). A suite never changes once published: a different
protocol is a new version (``cpu-v1``). Register your own with
:func:`register_suite`.

Built-in suites (``prune_gym.list_suites()``):

* ``quick-v0``: one small entry, for tests and smoke runs (one agent, two seeds
  in well under 3 minutes on 2 CPU cores); saturated: every agent ties there;
* ``quick-v1``: its successor on the embedded digits, where where to prune
  matters (CNN5, a wide last layer): random search already beats uniform
  pruning, so a new agent's first minutes say something;
* ``cpu-v1``: the CPU leaderboard from 2026-12 on: the one-shot track (no
  fine-tune) at aggressive MACs and parameter budgets on Fashion-MNIST, entries
  chosen by measured headroom (a search beats every uniform criterion by more
  than the noise there, and the reward ranks the best candidates as the test
  split does), uniform pruning that uses the whole budget as the reference;
* ``transfer-v0``: the transfer track: agents that can transfer learn on half-width
  ResNet-20 and Plain-20 at several MACs budgets (one-shot scoring, the
  ``layer-budget`` observation), then prune pairs they never saw (an unseen
  budget on each network, and CNN5 on the digits, a network and data never
  seen) zero-shot or with 10 further evaluations, against black-box optimisers
  and uniform pruning given those 10 evaluations;
* ``cpu-v0``: the first CPU leaderboard (as published): Fashion-MNIST (10,000 test images) with a
  residual and a plain half-width 20-layer network, two budgets and both
  environments, 100 reward evaluations per entry, sized so that the whole
  leaderboard regenerates in about 2 hours on 2 CPU cores;
* ``cifar10-v0``: the same protocol on full CIFAR-10 (ResNet-20/56, VGG-16) for
  GPU machines; needs torchvision's CIFAR-10 and pretrained checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prune_gym.registry import Registry
from prune_gym.runs import RunSpec
from prune_gym.validation import check_int


@dataclass(frozen=True)
class Recovery:
    """The fine-tuning every pruned network gets before its test score counts, identical for all agents.

    ``steps`` batches of the task's optimiser at a tenth of its pretraining
    learning rate (cosine schedule), once per seed in ``seeds``; the score is
    the mean test score over those seeds. BatchNorm statistics start from the
    recalibrated ones when the entry's environment recalibrates. ``steps=0`` is
    the one-shot track: the pruned network is scored as it is (after that
    recalibration), with no training at all.
    """

    steps: int = 200
    seeds: tuple[int, ...] = (0, 1)

    def __post_init__(self) -> None:
        check_int("recovery steps", self.steps, 0, "a number of training batches >= 0 (0: the one-shot track)")
        if len(self.seeds) < 1:
            raise ValueError("a recovery protocol needs at least one fine-tuning seed")


@dataclass(frozen=True)
class Entry:
    """One pruning problem of a suite: prune ``task`` to ``macs_budget`` of its MACs (and ``params_budget`` of its
    parameters; 1.0: no parameter budget) on ``env`` in ``episodes`` evaluations.

    ``env_kwargs`` fix the reward protocol (reward, reward_samples,
    bn_recalibration, criterion, ...). Agents whose declaration does not fit
    ``env`` are not applicable to the entry; the action type is chosen per
    agent from its declaration.
    """

    task: str
    env: str = "LayerRate-v0"
    macs_budget: float = 0.5
    episodes: int = 200
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    params_budget: float = 1.0

    @property
    def name(self) -> str:
        """``task/env-budget``, e.g. ``resnet20-fashion-mnist/LayerRate-0.5`` (``...-1-params0.3`` under a parameter
        budget): unique within a suite."""
        params = f"-params{self.params_budget:g}" if self.params_budget < 1 else ""
        return f"{self.task}/{self.env.split('-v')[0]}-{self.macs_budget:g}{params}"

    @property
    def slug(self) -> str:
        """The entry's name as a folder name."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)

    def run_spec(self, agent: str, agent_kwargs: Mapping[str, Any] | None = None, seed: int = 0,
                 env_overrides: Mapping[str, Any] | None = None, device: str | None = None) -> RunSpec:
        """The run of ``agent`` on this entry: the entry's environment keywords and MACs budget, then
        ``env_overrides`` (e.g. ``criterion`` for a uniform baseline), capped at ``episodes`` reward evaluations."""
        budgets = {"macs_budget": self.macs_budget, **({"params_budget": self.params_budget} if self.params_budget < 1 else {})}
        env_kwargs = {**self.env_kwargs, **budgets, **(env_overrides or {})}
        if device is not None:
            env_kwargs["device"] = device
        return RunSpec(task=self.task, env=self.env, env_kwargs=env_kwargs, agent=agent, agent_kwargs=dict(agent_kwargs or {}),
                       episodes=self.episodes, max_evaluations=self.episodes, seed=seed)


@dataclass(frozen=True)
class Transfer:
    """The training half of a transfer suite: its entries are then the held-out pairs.

    An agent that declares ``transfers`` (:func:`prune_gym.agent_api.transfers`) learns, once per seed, for
    ``episodes`` episodes (as many reward evaluations at most) on a :class:`~prune_gym.envs.sampler.PairSampler`
    over the ``train`` entries (their ``episodes`` are unused); it then meets each held-out entry either zero-shot
    (one episode of its deterministic policy, nothing learnt) or few-shot (the entry's ``episodes`` evaluations of
    further learning from the trained state). Every other agent gets the same few-shot evaluations on each held-out
    entry from scratch: a black-box optimiser cannot transfer, and that is the comparison.
    """

    train: tuple[Entry, ...]
    episodes: int

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("a transfer suite needs at least one train entry")
        check_int("transfer episodes", self.episodes, 1, "a positive number of training episodes")


@dataclass(frozen=True)
class Suite:
    """A named, versioned benchmark: entries, seeds, and the recovery protocol (``transfer``: what agents that
    transfer learn on first; the entries are then held out)."""

    name: str
    entries: tuple[Entry, ...]
    seeds: tuple[int, ...]
    recovery: Recovery = field(default_factory=Recovery)
    baseline_criterion: str = "l1"
    description: str = ""
    filled_uniform: bool = False
    """Uniform pruning (the reference, normalised score 0, and the ``uniform`` agent's runs) uses the whole budget
    (:meth:`RateBudget.uniform_counts` filled); False in the suites published before cpu-v1, whose uniform pruning is
    one common rate, as measured then."""
    transfer: Transfer | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*-v\d+", self.name):
            raise ValueError(f"invalid suite name {self.name!r}: expected a lower-case name with a version, e.g. 'my-suite-v0'")
        if not self.entries:
            raise ValueError(f"suite {self.name!r} has no entry")
        names = [entry.name for entry in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name!r} lists an entry twice: {names}")
        if not self.seeds:
            raise ValueError(f"suite {self.name!r} has no seed")
        if self.transfer is not None and {e.name for e in self.transfer.train} & set(names):
            raise ValueError(f"suite {self.name!r} holds out an entry it also trains on: "
                             f"{sorted({e.name for e in self.transfer.train} & set(names))}")

    def entry(self, name: str) -> Entry:
        """The entry called ``name``; unknown names list the suite's entries."""
        for entry in self.entries:
            if name in (entry.name, entry.slug):
                return entry
        raise ValueError(f"suite {self.name!r} has no entry {name!r}; its entries: {[e.name for e in self.entries]}")


_SUITES: Registry[Suite] = Registry("suite", expected=Suite)


def register_suite(suite: Suite, overwrite: bool = False) -> Suite:
    """Add ``suite`` under its name (a published name never changes meaning: register a new version instead)."""
    return _SUITES.register(suite.name, suite, overwrite)


def get_suite(name: str) -> Suite:
    """The suite registered as ``name``; unknown names list the registered ones."""
    return _SUITES.get(name)


def list_suites() -> list[str]:
    """Names of the registered suites."""
    return _SUITES.names()


_PROXY = {"reward_samples": 500, "bn_recalibration": 100}  # chosen by the fidelity study (README, LEADERBOARD.md)

register_suite(Suite(
    "quick-v0",
    entries=(Entry("lenet5-digits", "LayerRate-v0", 0.5, episodes=40, env_kwargs={"reward_samples": 300}),),
    seeds=(0, 1),
    recovery=Recovery(steps=20, seeds=(0, 1)),
    description="one LeNet-5 entry on the embedded digits: tests and smoke runs, no download",
))
register_suite(Suite(
    "quick-v1",
    entries=(Entry("cnn5-digits", "LayerRate-v0", 0.5, episodes=40, env_kwargs={"reward_samples": 300, "bn_recalibration": 100}),),
    seeds=(0, 1),
    recovery=Recovery(steps=20, seeds=(0, 1)),
    description="one CNN5 entry on the embedded digits, where a search beats uniform pruning: smoke runs, no download",
))
register_suite(Suite(
    "cpu-v0",
    entries=(
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.3, episodes=100, env_kwargs=_PROXY),
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.5, episodes=100, env_kwargs=_PROXY),
        Entry("plain20-slim-fashion-mnist", "LayerRate-v0", 0.5, episodes=100, env_kwargs=_PROXY),
        Entry("resnet20-slim-fashion-mnist", "FilterSelect-v0", 0.5, episodes=100, env_kwargs=_PROXY),
    ),
    seeds=(0, 1, 2, 3, 4),
    recovery=Recovery(steps=100, seeds=(0, 1)),
    description="half-width ResNet-20 and Plain-20 on Fashion-MNIST (10,000 test images) at 0.3 and 0.5 of the MACs, "
                "both environments",
))
_ONE_SHOT_PROXY = {"reward_samples": 1000, "bn_recalibration": 100}  # chosen by the headroom study (benchmarks/README.md)
register_suite(Suite(
    "cpu-v1",
    entries=(
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.3, episodes=100, env_kwargs=_ONE_SHOT_PROXY),
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 1.0, episodes=100, env_kwargs=_ONE_SHOT_PROXY, params_budget=0.3),
        Entry("plain20-slim-fashion-mnist", "LayerRate-v0", 0.3, episodes=100, env_kwargs=_ONE_SHOT_PROXY),
        Entry("resnet20-slim-fashion-mnist", "FilterSelect-v0", 0.3, episodes=100, env_kwargs=_ONE_SHOT_PROXY),
    ),
    seeds=(0, 1, 2, 3, 4),
    recovery=Recovery(steps=0, seeds=(0,)),
    filled_uniform=True,
    description="the one-shot track (no fine-tune: BatchNorm recalibrated on 100 images, then scored) on Fashion-MNIST "
                "(10,000 test images): half-width ResNet-20 at 0.3 of the MACs and at 0.3 of the parameters and half-width "
                "Plain-20 at 0.3 of the MACs on LayerRate-v0, ResNet-20 at 0.3 of the MACs on FilterSelect-v0",
))
_TRANSFER_PROXY = {**_ONE_SHOT_PROXY, "observation": "layer-budget"}
register_suite(Suite(
    "transfer-v0",
    entries=(
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.4, episodes=10, env_kwargs=_TRANSFER_PROXY),
        Entry("plain20-slim-fashion-mnist", "LayerRate-v0", 0.3, episodes=10, env_kwargs=_TRANSFER_PROXY),
        Entry("cnn5-digits", "LayerRate-v0", 0.5, episodes=10, env_kwargs={**_TRANSFER_PROXY, "reward_samples": 300}),
    ),
    seeds=(0, 1, 2, 3, 4),
    recovery=Recovery(steps=0, seeds=(0,)),
    filled_uniform=True,
    transfer=Transfer(train=(
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.2, env_kwargs=_TRANSFER_PROXY),
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.3, env_kwargs=_TRANSFER_PROXY),
        Entry("resnet20-slim-fashion-mnist", "LayerRate-v0", 0.5, env_kwargs=_TRANSFER_PROXY),
        Entry("plain20-slim-fashion-mnist", "LayerRate-v0", 0.2, env_kwargs=_TRANSFER_PROXY),
        Entry("plain20-slim-fashion-mnist", "LayerRate-v0", 0.5, env_kwargs=_TRANSFER_PROXY),
    ), episodes=200),
    description="the transfer track (one-shot scoring, the layer-budget observation): agents that transfer learn for 200 "
                "episodes on half-width ResNet-20 at 0.2, 0.3 and 0.5 of the MACs and half-width Plain-20 at 0.2 and 0.5 "
                "(Fashion-MNIST), then prune held-out pairs: ResNet-20 at 0.4, Plain-20 at 0.3 and CNN5 on the digits "
                "(a network and data never seen) at 0.5, zero-shot or with 10 evaluations",
))
_GPU_PROXY = {"reward_samples": 5000, "bn_recalibration": 500, "recovery_steps": 20}
register_suite(Suite(
    "cifar10-v0",
    entries=(
        Entry("resnet20-cifar10", "LayerRate-v0", 0.5, episodes=400, env_kwargs=_GPU_PROXY),
        Entry("resnet56-cifar10", "LayerRate-v0", 0.5, episodes=400, env_kwargs=_GPU_PROXY),
        Entry("vgg16-cifar10", "LayerRate-v0", 0.3, episodes=400, env_kwargs=_GPU_PROXY),
        Entry("resnet56-cifar10", "FilterSelect-v0", 0.5, episodes=400, env_kwargs=_GPU_PROXY),
    ),
    seeds=(0, 1, 2, 3, 4),
    recovery=Recovery(steps=3900, seeds=(0, 1)),  # 10 epochs of 50,000 images at batch 128
    description="full CIFAR-10 (GPU): ResNet-20/56 and VGG-16, AMC's 5,000 held-out reward images, 20 recovery steps in the reward",
))
