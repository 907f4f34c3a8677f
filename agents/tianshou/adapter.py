"""Adapter: tianshou 2.0's model-free online algorithms driven by episodes (``--agent tianshou:PPO``).

The algorithms are the ones tianshou's high-level API builds (``tianshou.highlevel``):
its algorithm factories turn a ``Params`` dataclass (learning rates, gamma, clipping,
noise, ...) into networks, optimisers, policy and algorithm. This adapter only picks
the networks (tianshou's default MLPs), runs tianshou's trainer one episode per
training step, reports its training statistics and checkpoints without pickle.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm.algorithm_base import OnPolicyAlgorithm, TrainingStats
from tianshou.data import Batch, Collector, ReplayBuffer, to_numpy
from tianshou.env import DummyVectorEnv
from tianshou.highlevel.algorithm import (
    A2CAlgorithmFactory,
    AlgorithmFactory,
    DDPGAlgorithmFactory,
    DiscreteSACAlgorithmFactory,
    DQNAlgorithmFactory,
    IQNAlgorithmFactory,
    NPGAlgorithmFactory,
    PPOAlgorithmFactory,
    REDQAlgorithmFactory,
    ReinforceAlgorithmFactory,
    SACAlgorithmFactory,
    TD3AlgorithmFactory,
    TRPOAlgorithmFactory,
)
from tianshou.highlevel.config import OffPolicyTrainingConfig, OnPolicyTrainingConfig
from tianshou.highlevel.env import ContinuousEnvironments, DiscreteEnvironments
from tianshou.highlevel.module.actor import ActorFactoryDefault, ContinuousActorType, IntermediateModuleFactoryFromActorFactory
from tianshou.highlevel.module.critic import CriticEnsembleFactoryDefault, CriticFactoryDefault
from tianshou.highlevel.module.special import ImplicitQuantileNetworkFactory
from tianshou.highlevel.params.algorithm_params import (
    A2CParams,
    DDPGParams,
    DiscreteSACParams,
    DQNParams,
    IQNParams,
    NPGParams,
    OnPolicyAlgorithmParams,
    Params,
    PPOParams,
    REDQParams,
    ReinforceParams,
    SACParams,
    TD3Params,
    TRPOParams,
)
from tianshou.highlevel.params.optim import OptimizerFactoryFactoryAdam
from tianshou.trainer import OffPolicyTrainerParams, OnPolicyTrainer, OnPolicyTrainerParams, Trainer
from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode

from prune_gym.validation import check_bool, check_int, check_real, check_sizes, invalid

from ..common import (
    BaseAgent,
    global_random_state,
    random_state_to_json,
    set_global_random_state,
    set_random_state_from_json,
)

CONTINUOUS: tuple[type[gym.Space], ...] = (gym.spaces.Box,)
DISCRETE: tuple[type[gym.Space], ...] = (gym.spaces.Discrete,)

ON_POLICY_TRAINER_FIELDS = ("batch_size", "update_step_num_repetitions")
OFF_POLICY_TRAINER_FIELDS = ("batch_size", "update_step_num_gradient_steps_per_sample")
ALGORITHM_COUNTERS = ("_iter", "_cnt", "_last", "critic_gradient_step", "_last_actor_loss")
"""Plain-Python training state of tianshou's algorithms: target-network and delayed-actor update counters,
the last actor loss delayed-actor algorithms keep reporting."""
BUFFER_COUNTERS = ("_insertion_idx", "_size", "_ep_return", "_ep_len", "_ep_start_idx")


def _real(low: float, high: float, expected: str, *, low_open: bool = False, high_open: bool = False,
          optional: bool = False, factory: bool = False) -> Callable[[str, Any], Any]:
    """A check of a real hyper-parameter in an interval (None passes where optional; where ``factory``, so does an
    object that is no JSON value: one of tianshou's factories, e.g. ``AutoAlphaFactory`` for SAC's alpha)."""

    def check(name: str, value: Any) -> None:
        json_value = value is None or isinstance(value, (numbers.Number, np.bool_, str, list, tuple, dict))
        if (optional and value is None) or (factory and not json_value):
            return
        check_real(name, value, low, high, low_open=low_open, high_open=high_open, expected=expected)

    return check


def _integer(minimum: int, expected: str) -> Callable[[str, Any], Any]:
    return lambda name, value: check_int(name, value, minimum, expected)


_LEARNING_RATE = _real(0.0, math.inf, "a positive learning rate, e.g. 1e-3", low_open=True, high_open=True)
TIANSHOU_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    **{name: _LEARNING_RATE for name in ("lr", "actor_lr", "critic_lr", "critic1_lr", "critic2_lr")},
    "gamma": _real(0.0, 1.0, "a discount in [0, 1]"),
    "gae_lambda": _real(0.0, 1.0, "a GAE lambda in [0, 1]"),
    "tau": _real(0.0, 1.0, "a soft target-update rate in (0, 1]", low_open=True),
    "eps_training": _real(0.0, 1.0, "an exploration probability in [0, 1]"),
    "eps_inference": _real(0.0, 1.0, "an exploration probability in [0, 1]"),
    "backtrack_coeff": _real(0.0, 1.0, "a line-search shrink factor in (0, 1)", low_open=True, high_open=True),
    "eps_clip": _real(0.0, math.inf, "a positive clipping range, e.g. 0.2", low_open=True, high_open=True),
    "dual_clip": _real(1.0, math.inf, "None or a dual-clip bound > 1, e.g. 3", low_open=True, high_open=True, optional=True),
    "max_kl": _real(0.0, math.inf, "a positive KL bound", low_open=True, high_open=True),
    "trust_region_size": _real(0.0, math.inf, "a positive trust-region size", low_open=True, high_open=True),
    "max_grad_norm": _real(0.0, math.inf, "None or a positive gradient-norm bound", low_open=True, high_open=True, optional=True),
    "huber_loss_delta": _real(0.0, math.inf, "None or a positive Huber delta", low_open=True, high_open=True, optional=True),
    "ent_coef": _real(0.0, math.inf, "an entropy coefficient >= 0", high_open=True),
    "vf_coef": _real(0.0, math.inf, "a value-loss coefficient >= 0", high_open=True),
    **{name: _real(0.0, math.inf, "a number >= 0 (or a tianshou factory)", high_open=True, factory=True)
       for name in ("alpha", "policy_noise", "noise_clip")},
    **{name: _integer(1, "a positive integer") for name in (
        "n_step_return_horizon", "update_actor_freq", "actor_delay", "max_backtracks", "max_batchsize", "optim_critic_iters",
        "sample_size", "num_cosines", "num_quantiles", "ensemble_size", "subset_size", "target_sample_size",
        "online_sample_size", "update_step_num_repetitions")},
    "target_update_freq": _integer(0, "a number of steps >= 0 (0: no target network)"),
    "update_step_num_gradient_steps_per_sample": _real(0.0, math.inf, "a positive number of gradient steps per collected step",
                                                       low_open=True, high_open=True),
    **{flag: check_bool for flag in ("deterministic_eval", "is_double", "advantage_normalization", "recompute_advantage",
                                     "return_scaling", "return_standardization", "value_clip")},
}
"""Range checks of the numeric fields of tianshou's ``Params`` and trainer parameters (tianshou takes most of them
unchecked: a learning rate of 0 or a discount of 2 would train, silently wrong)."""


def _actor(kind: ContinuousActorType, hidden: Sequence[int], conditioned_sigma: bool = False, softmax: bool = True) -> ActorFactoryDefault:
    """tianshou's default MLP actor. Gaussian ones output an unbounded mean (the policy clips and scales it);
    discrete ones probabilities (``softmax``) or logits (Q-values, DiscreteSAC's ``Categorical(logits=...)``)."""
    return ActorFactoryDefault(kind, hidden, continuous_unbounded=True, continuous_conditioned_sigma=conditioned_sigma,
                               discrete_softmax=softmax)


def _q_network(hidden: Sequence[int]) -> IntermediateModuleFactoryFromActorFactory:
    return IntermediateModuleFactoryFromActorFactory(_actor(ContinuousActorType.UNSUPPORTED, hidden, softmax=False))


@dataclasses.dataclass(frozen=True)
class TianshouAlgorithm:
    """How to build one algorithm with tianshou's high-level factory."""

    factory: Callable[..., AlgorithmFactory]
    params: type[Params]
    action_spaces: tuple[type[gym.Space], ...]
    networks: Callable[[Sequence[int], Any], tuple[Any, ...]]
    """(hidden sizes, params) -> the module factories the algorithm factory takes after its training config."""
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Where tianshou's defaults do not explore: Gaussian action noise (DDPG, TD3), epsilon-greedy (DQN, IQN)."""


def _gaussian_actor_critic(hidden: Sequence[int], _: Any) -> tuple[Any, ...]:
    return _actor(ContinuousActorType.GAUSSIAN, hidden), CriticFactoryDefault(hidden)


def _deterministic_dual_critics(hidden: Sequence[int], _: Any) -> tuple[Any, ...]:
    return _actor(ContinuousActorType.DETERMINISTIC, hidden), CriticFactoryDefault(hidden), CriticFactoryDefault(hidden)


ALGORITHMS: dict[str, TianshouAlgorithm] = {
    "Reinforce": TianshouAlgorithm(ReinforceAlgorithmFactory, ReinforceParams, CONTINUOUS + DISCRETE,
                                   lambda hidden, _: (_actor(ContinuousActorType.GAUSSIAN, hidden),)),
    "A2C": TianshouAlgorithm(A2CAlgorithmFactory, A2CParams, CONTINUOUS + DISCRETE, _gaussian_actor_critic),
    "PPO": TianshouAlgorithm(PPOAlgorithmFactory, PPOParams, CONTINUOUS + DISCRETE, _gaussian_actor_critic),
    "NPG": TianshouAlgorithm(NPGAlgorithmFactory, NPGParams, CONTINUOUS + DISCRETE, _gaussian_actor_critic),
    "TRPO": TianshouAlgorithm(TRPOAlgorithmFactory, TRPOParams, CONTINUOUS + DISCRETE, _gaussian_actor_critic),
    "DDPG": TianshouAlgorithm(DDPGAlgorithmFactory, DDPGParams, CONTINUOUS,
                              lambda hidden, _: (_actor(ContinuousActorType.DETERMINISTIC, hidden), CriticFactoryDefault(hidden)),
                              {"exploration_noise": "default"}),
    "TD3": TianshouAlgorithm(TD3AlgorithmFactory, TD3Params, CONTINUOUS, _deterministic_dual_critics, {"exploration_noise": "default"}),
    "SAC": TianshouAlgorithm(SACAlgorithmFactory, SACParams, CONTINUOUS,
                             lambda hidden, _: (_actor(ContinuousActorType.GAUSSIAN, hidden, conditioned_sigma=True),
                                                CriticFactoryDefault(hidden), CriticFactoryDefault(hidden))),
    "REDQ": TianshouAlgorithm(REDQAlgorithmFactory, REDQParams, CONTINUOUS,
                              lambda hidden, _: (_actor(ContinuousActorType.GAUSSIAN, hidden, conditioned_sigma=True),
                                                 CriticEnsembleFactoryDefault(hidden))),
    "DiscreteSAC": TianshouAlgorithm(DiscreteSACAlgorithmFactory, DiscreteSACParams, DISCRETE,
                                     lambda hidden, _: (_actor(ContinuousActorType.UNSUPPORTED, hidden, softmax=False),
                                                        CriticFactoryDefault(hidden), CriticFactoryDefault(hidden))),
    "DQN": TianshouAlgorithm(DQNAlgorithmFactory, DQNParams, DISCRETE, lambda hidden, _: (_q_network(hidden),), {"eps_training": 0.1}),
    "IQN": TianshouAlgorithm(IQNAlgorithmFactory, IQNParams, DISCRETE,
                             lambda hidden, params: (ImplicitQuantileNetworkFactory(_q_network(hidden), hidden_sizes=params.hidden_sizes,
                                                                                    num_cosines=params.num_cosines),),
                             {"eps_training": 0.1}),
}


def algorithm_spec(name: str) -> tuple[str, TianshouAlgorithm]:
    """The canonical name and recipe of the algorithm ``name`` (case-insensitive); unknown names list the supported ones."""
    for known, spec in ALGORITHMS.items():
        if isinstance(name, str) and known.lower() == name.lower():
            return known, spec
    raise ValueError(f"unknown tianshou algorithm {name!r}; this adapter supports {list(ALGORITHMS)}")


class _StepInfoOnly(gym.Wrapper):
    """Keeps only the numeric info keys every step has: tianshou stacks infos into arrays, and the
    end-of-episode extras (masks, lists) and strings (a pair sampler's ``pair``) would become objects in its buffer,
    which its saved state (read without pickle) cannot hold."""

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        self._keys = tuple(key for key, value in info.items() if np.isscalar(value) and not isinstance(value, (str, bytes)))
        return observation, {key: info[key] for key in self._keys}

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, {key: info[key] for key in self._keys}


class _EpisodeBatchOnPolicyTrainer(OnPolicyTrainer):
    """tianshou's on-policy trainer, updating (and emptying the buffer) only once it holds ``episodes_per_update``
    finished episodes: tianshou updates after every collection step, and a collection step here is one episode."""

    def __init__(self, algorithm: OnPolicyAlgorithm, params: OnPolicyTrainerParams, episodes_per_update: int) -> None:
        super().__init__(algorithm, params)
        self.episodes_per_update = episodes_per_update

    def _update_step(self, collect_stats: Any = None) -> TrainingStats:
        buffer = self.params.training_collector.buffer
        if np.count_nonzero(buffer.done[: len(buffer)]) < self.episodes_per_update:
            return TrainingStats()
        return super()._update_step(collect_stats)


class TianshouAgent(BaseAgent):
    """A tianshou algorithm (``algorithm``, one of :data:`ALGORITHMS`, case-insensitive) on a prune_gym env.

    Action spaces: ``Reinforce``, ``A2C``, ``PPO``, ``NPG``, ``TRPO`` act in Box and
    Discrete spaces; ``DDPG``, ``TD3``, ``SAC``, ``REDQ`` in Box (LayerRate-v0 or
    FilterSelect-v0 with ``action_type="continuous"``); ``DQN``, ``IQN``,
    ``DiscreteSAC`` in Discrete (LayerRate-v0 with ``action_type="discrete"``).

    One tianshou training step collects one episode, so ``learn(episodes)`` runs
    exactly that many more episodes. Off-policy algorithms then make
    ``update_step_num_gradient_steps_per_sample`` (1) gradient steps per collected
    step; on-policy ones update once ``episodes_per_update`` episodes are collected.

    Args:
        env: a prune_gym env whose action space the algorithm supports.
        seed: seeds networks, exploration, replay sampling and the env's first reset.
        algorithm: the tianshou algorithm.
        hidden_sizes: hidden layers of every MLP (actor, critics, Q-network; tianshou's default 64, 64).
        buffer_size: transitions the replay buffer holds.
        episodes_per_update: on-policy algorithms: episodes per update.
        warmup_episodes: off-policy algorithms: episodes of uniformly random actions before learning starts.
        hyperparameters: fields of tianshou's ``<algorithm>Params`` (e.g. ``lr``, ``gamma``, ``actor_lr``,
            ``eps_clip``), and the trainer's ``batch_size``, ``update_step_num_repetitions`` (on-policy),
            ``update_step_num_gradient_steps_per_sample`` (off-policy). DDPG and TD3 default to
            ``exploration_noise="default"`` (Gaussian, sigma 0.1), DQN and IQN to ``eps_training=0.1``.

    ``save(path)`` writes ``path.pt`` (networks and optimisers, a torch state dict),
    ``path.buffer.npz`` (the replay buffer) and ``path.json`` (counters, random states).
    """

    supported_action_spaces: ClassVar[tuple[type[gym.Space], ...]] = CONTINUOUS + DISCRETE
    transfers = True  # a policy: its saved state acts on any environment with the same spaces

    @classmethod
    def algorithms(cls) -> dict[str, str]:
        """The algorithms ``tianshou:ALGO`` accepts, each with the action spaces it acts in."""
        return {name: f"tianshou's {name} ({', '.join(space.__name__ for space in spec.action_spaces)})"
                for name, spec in ALGORITHMS.items()}

    @classmethod
    def supported_action_spaces_for(cls, hyperparameters: dict[str, Any]) -> tuple[type[gym.Space], ...]:
        return algorithm_spec(hyperparameters.get("algorithm", "PPO"))[1].action_spaces

    def __init__(self, env: gym.Env, seed: int | None = None, algorithm: str = "PPO", hidden_sizes: Sequence[int] = (64, 64),
                 buffer_size: int = 10_000, episodes_per_update: int = 4, warmup_episodes: int = 0, **hyperparameters: Any) -> None:
        name, spec = algorithm_spec(algorithm)
        super().__init__(env, seed, {"algorithm": name})
        on_policy = issubclass(spec.params, OnPolicyAlgorithmParams)
        params_fields = {field.name for field in dataclasses.fields(spec.params)}
        trainer_fields = ON_POLICY_TRAINER_FIELDS if on_policy else OFF_POLICY_TRAINER_FIELDS
        unknown = sorted(set(hyperparameters) - params_fields - set(trainer_fields))
        if unknown:
            raise ValueError(f"tianshou {name} has no hyper-parameter {unknown}; it takes {sorted(params_fields | set(trainer_fields))}")
        for key, value in hyperparameters.items():
            if key in TIANSHOU_CHECKS:
                TIANSHOU_CHECKS[key](key, value)
        if "batch_size" in hyperparameters and not (on_policy and hyperparameters["batch_size"] is None):
            check_int("batch_size", hyperparameters["batch_size"], 1,
                      "a positive minibatch size" + (" (or None: the whole buffer)" if on_policy else ""))
        hidden_sizes = check_sizes("hidden_sizes", hidden_sizes, "a list of positive hidden-layer sizes, e.g. [64, 64]")
        buffer_size = check_int("buffer_size", buffer_size, 1, "a positive number of transitions")
        episodes_per_update = check_int("episodes_per_update", episodes_per_update, 1, "a positive number of episodes")
        warmup = f"0 (the on-policy {name} has no warm-up)" if on_policy else "a number of episodes >= 0"
        warmup_episodes = check_int("warmup_episodes", warmup_episodes, 0, warmup)
        if on_policy and warmup_episodes:
            raise invalid("warmup_episodes", warmup_episodes, warmup)
        if seed is not None:  # the global generators tianshou draws from, seeded as its Experiment does
            np.random.seed(seed)
            torch.manual_seed(seed)
        env.action_space.seed(seed)
        self.warmup_episodes = warmup_episodes
        self.episodes_done = 0
        self._needs_reset = True

        defaults = {**spec.defaults, **({"deterministic_eval": True} if "deterministic_eval" in params_fields else {})}
        params = spec.params(**{**defaults, **{key: value for key, value in hyperparameters.items() if key in params_fields}})
        vector_env = DummyVectorEnv([lambda: _StepInfoOnly(env)])
        environments = (ContinuousEnvironments if isinstance(env.action_space, gym.spaces.Box) else DiscreteEnvironments)(
            env, vector_env, vector_env)
        training_config = OnPolicyTrainingConfig() if on_policy else OffPolicyTrainingConfig()
        factory = spec.factory(params, training_config, *spec.networks(tuple(hidden_sizes), params), OptimizerFactoryFactoryAdam())
        with warnings.catch_warnings():  # tianshou warns on every Gaussian actor whose max_action is 1, bounded or not (ours are not)
            warnings.filterwarnings("ignore", message="action_scaling and action_bound_method are only intended")
            try:
                self.algorithm = factory.create_algorithm(environments, "cpu")
            except AssertionError as error:  # tianshou checks some combinations with assert (REDQ: subset_size <= ensemble_size)
                detail = " ".join(str(error).split()) or "an assertion failed"
                raise ValueError(f"tianshou {name} refused its hyper-parameters: {detail}") from None
        self.buffer = ReplayBuffer(buffer_size, random_seed=int(self.rng.integers(2**31)))
        self.collector: Collector = Collector(self.algorithm, vector_env, self.buffer, exploration_noise=True)
        trainer_kwargs: dict[str, Any] = dict(
            training_collector=self.collector, collection_step_num_env_steps=None, collection_step_num_episodes=1,
            epoch_num_steps=1, test_collector=None, verbose=False, show_progress=False,
            **{key: hyperparameters[key] for key in trainer_fields if key in hyperparameters},
        )
        self.trainer: Trainer
        if isinstance(self.algorithm, OnPolicyAlgorithm):
            self.trainer = _EpisodeBatchOnPolicyTrainer(self.algorithm, OnPolicyTrainerParams(**trainer_kwargs), episodes_per_update)
        else:
            self.trainer = self.algorithm.create_trainer(OffPolicyTrainerParams(**trainer_kwargs))

    def _start(self) -> None:
        """Reset the env (seeded the first time) and the trainer's bookkeeping: before the first episode and after load."""
        self.trainer.reset(reset_collectors=False)
        self.collector.reset(reset_buffer=False, gym_reset_kwargs={"seed": self.seed} if self._first_reset else None)
        self._first_reset = self._needs_reset = False

    def learn(self, episodes: int) -> None:
        """Run ``episodes`` more episodes (warm-up ones with random actions), reporting tianshou's losses as ``train/<name>``."""
        if self._needs_reset:
            self._start()
        for _ in range(episodes):
            if self.episodes_done < self.warmup_episodes:
                self.collector.collect(n_episode=1, random=True)
            else:
                training_stat = self.trainer.execute_epoch().training_stat
                losses = training_stat.get_loss_stats_dict() if training_stat is not None else {}
                if losses:
                    self.log_metrics({f"train/{key}": float(value) for key, value in losses.items()})
            self.episodes_done += 1

    def predict(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The policy's greedy/mode action, or (``deterministic=False``) the one it would explore with while training."""
        policy = self.algorithm.policy
        batch = Batch(obs=np.asarray(observation)[None], info=Batch())
        with torch.no_grad(), torch_train_mode(policy, enabled=False), policy_within_training_step(policy, enabled=not deterministic):
            action = to_numpy(policy(batch).act)
            if not deterministic:
                action = policy.add_exploration_noise(action, batch)
        return np.asarray(policy.map_action(action)[0])

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Counters, random states, the buffer's bookkeeping and the algorithms' plain-Python training state."""
        return_statistics = self._return_statistics()
        return {
            **super().state_dict(), "episodes_done": self.episodes_done, "global_random": global_random_state(),
            "action_space_rng": self.env.action_space.np_random.bit_generator.state,
            "buffer_rng": random_state_to_json(self.buffer._random_state),
            "buffer": {name: getattr(self.buffer, name) for name in BUFFER_COUNTERS} | {"last_index": self.buffer.last_index.tolist()},
            "counters": {name: getattr(self.algorithm, name) for name in ALGORITHM_COUNTERS if hasattr(self.algorithm, name)},
            "return_statistics": None if return_statistics is None else
            [np.asarray(value).tolist() for value in (return_statistics.mean, return_statistics.var, return_statistics.count)],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.episodes_done = state["episodes_done"]
        set_global_random_state(state["global_random"])
        self.env.action_space.np_random.bit_generator.state = state["action_space_rng"]
        set_random_state_from_json(self.buffer._random_state, state["buffer_rng"])
        for attribute, value in state["buffer"].items():
            setattr(self.buffer, attribute, np.array(value) if attribute == "last_index" else value)
        for attribute, value in state["counters"].items():
            setattr(self.algorithm, attribute, value)
        return_statistics = self._return_statistics()
        if return_statistics is not None:
            return_statistics.mean, return_statistics.var, return_statistics.count = (
                np.asarray(value)[()] for value in state["return_statistics"])
        self._needs_reset = True  # the next learn() resets the env, as the uninterrupted run's collector did

    def _return_statistics(self) -> Any:
        """The running return statistics of the on-policy algorithms (``ret_rms``), None for the others."""
        holder = getattr(self.algorithm, "discounted_return_computation", self.algorithm)
        return getattr(holder, "ret_rms", None)

    def save(self, path: str | Path) -> None:
        """``path.pt`` (networks, optimisers), ``path.buffer.npz`` (stored transitions), ``path.json`` (:meth:`state_dict`)."""
        path = Path(path)
        torch.save(self.algorithm.state_dict(), path.with_suffix(".pt"))
        arrays: dict[str, Any] = {}

        def flatten(tree: dict[str, Any], prefix: str) -> None:
            for key, value in tree.items():
                if not isinstance(value, dict):
                    arrays[prefix + key] = value[: len(self.buffer)]
                elif value:
                    flatten(value, f"{prefix}{key}/")
                else:  # an empty sub-batch
                    arrays[f"{prefix}{key}/"] = np.zeros(0)

        flatten(self.buffer._meta.to_dict(), "")
        with open(path.with_suffix(".buffer.npz"), "wb") as handle:
            np.savez(handle, **arrays)
        path.with_suffix(".json").write_text(json.dumps(self.state_dict()))

    def load(self, path: str | Path) -> None:
        path = Path(path)
        self.algorithm.load_state_dict(torch.load(path.with_suffix(".pt"), weights_only=True))
        tree: dict[str, Any] = {}
        with np.load(path.with_suffix(".buffer.npz"), allow_pickle=False) as archive:
            for key in archive.files:
                *parents, leaf = key.split("/")
                node = tree
                for parent in parents:
                    node = node.setdefault(parent, {})
                if leaf:
                    node[leaf] = np.zeros((self.buffer.maxsize, *archive[key].shape[1:]), dtype=archive[key].dtype)
                    node[leaf][: len(archive[key])] = archive[key]
        if tree:
            self.buffer.set_batch(Batch(tree))
        self.load_state_dict(json.loads(path.with_suffix(".json").read_text()))
