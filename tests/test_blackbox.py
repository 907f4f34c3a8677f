"""Budget-feasible rate vectors, random search, CMA-ES and TPE on real searches over lenet5-digits."""

from importlib.metadata import EntryPoint
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from prune_gym.agent_api import compatible_environment
from prune_gym.wrappers import EpisodeRecorder
from prune_gym_agents.baselines import RandomSearchAgent, UniformAgent
from prune_gym_agents.blackbox import CMAESAgent, TPEAgent

BUDGET = 0.5
SEARCHERS = [RandomSearchAgent, CMAESAgent, TPEAgent]


class BudgetClipCounter(gym.Wrapper):
    """Counts the steps at which the environment's own budget clipping cut a decision."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.clipped_steps = 0

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.clipped_steps += bool(info["budget_clipped"])
        return observation, reward, terminated, truncated, info


def recorded(macs_budget: float = BUDGET) -> EpisodeRecorder:
    env = gym.make("prune_gym:LayerRate-v0", task="lenet5-digits", macs_budget=macs_budget, reward_samples=300)
    return EpisodeRecorder(BudgetClipCounter(env))


@pytest.fixture(scope="module")
def uniform_score():
    env = recorded()
    UniformAgent(env, seed=0).learn(1)
    assert env.episodes[0].budget_met
    return env.episodes[0].score


def test_projection_keeps_feasible_vectors_and_makes_infeasible_ones_feasible():
    env = recorded().unwrapped
    budget = env.rate_budget()
    assert budget.channels.tolist() == [6, 16] and budget.min_keep.tolist() == [2, 4], "floors ceil(C x (1 - max_rate 0.8))"
    feasible = np.array([0.5, 0.45])
    assert budget.is_feasible(feasible)
    assert np.array_equal(budget.project(feasible), feasible)

    unpruned = budget.project(np.zeros(2))  # keeps 100% of the MACs: every kept fraction shrinks by one factor
    assert budget.is_feasible(unpruned) and budget.meets_budget(budget.kept_counts(unpruned))
    assert not budget.meets_budget(budget.kept_counts(np.zeros(2)))
    below_floor = np.array([0.8, 0.8])  # meets the budget, but round(6 x 0.2) = 1 channel is under the floor of 2
    assert budget.meets_budget(budget.kept_counts(below_floor)) and not budget.is_feasible(below_floor)
    assert budget.kept_counts(budget.project(below_floor)).tolist() == [2, 4]

    rng = np.random.default_rng(0)
    for rates in rng.uniform(0, env.max_rate, (200, 2)):
        projected = budget.project(rates)
        assert budget.is_feasible(projected)
        assert np.all(projected >= 0) and np.all(projected <= env.max_rate)
    for bad in (np.zeros(3), np.array([0.5, 0.9]), np.array([np.nan, 0.1])):
        with pytest.raises(ValueError, match="pruning rates in"):
            budget.project(bad)


@pytest.mark.parametrize("agent_class", SEARCHERS)
def test_a_budget_no_rate_can_reach_is_refused_at_construction(agent_class):
    with pytest.raises(ValueError, match="macs_budget=0.02 cannot be met"):
        agent_class(recorded(macs_budget=0.02), seed=0)


@pytest.mark.parametrize("agent_class", SEARCHERS)
def test_every_episode_meets_the_budget_unclipped_and_the_best_beats_uniform(agent_class, uniform_score):
    env = recorded()
    agent = agent_class(env, seed=0)
    metrics: list[dict[str, float]] = []
    agent.metrics_callback = metrics.append
    for _ in range(4):
        agent.learn(25)
    assert len(env.episodes) == 100
    assert all(episode.budget_met for episode in env.episodes)
    assert env.env.clipped_steps == 0, "the environment's budget clipping never had to act"
    assert max(episode.score for episode in env.episodes) >= uniform_score
    if agent_class is CMAESAgent:
        assert agent.optimizer.population_size == 6 and agent.optimizer.generation == 16
        assert len(metrics) == 16 and len(agent.evaluated) == 4, "100 episodes: 16 generations of 6 told, 4 pending"


@pytest.mark.parametrize("agent_class, kwargs, before", [
    (RandomSearchAgent, {}, 5),
    (CMAESAgent, {}, 9),  # mid-generation: 3 of the second generation's 6 evaluated, not yet told
    (TPEAgent, {"n_startup_trials": 4}, 7),  # past the random start-up: TPE's model proposes
])
def test_save_and_load_continue_exactly(tmp_path, agent_class, kwargs, before):
    after = 6
    uninterrupted = agent_class(recorded(), seed=3, **kwargs)
    uninterrupted.learn(before)
    played = []
    for _ in range(after):
        uninterrupted.learn(1)
        played.append(uninterrupted.rates.copy())

    interrupted = agent_class(recorded(), seed=3, **kwargs)
    interrupted.learn(before)
    interrupted.save(tmp_path / "agent")
    resumed_env = recorded()
    resumed = agent_class(resumed_env, seed=99, **kwargs)  # another seed: everything random comes from the file
    resumed.load(tmp_path / "agent")
    for expected in played:
        resumed.learn(1)
        np.testing.assert_array_equal(resumed.rates, expected)
    assert len(resumed_env.episodes) == after


def test_black_box_agents_are_entry_points_on_layer_rate():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    agents = pyproject["project"]["entry-points"]["prune_gym.agents"]
    assert EntryPoint("cma-es", agents["cma-es"], "prune_gym.agents").load() is CMAESAgent
    assert EntryPoint("tpe", agents["tpe"], "prune_gym.agents").load() is TPEAgent
    for agent_class in (CMAESAgent, TPEAgent):
        assert compatible_environment(agent_class) == ("LayerRate-v0", "continuous")
    with pytest.raises(ValueError, match="cannot run on FilterSelect-v0"):
        compatible_environment(TPEAgent, env_id="FilterSelect-v0")


@pytest.mark.parametrize("agent_class, kwargs, message", [
    (CMAESAgent, {"population_size": 1}, "population_size=1"),
    (CMAESAgent, {"sigma0": 0.0}, "sigma0=0.0"),
    (CMAESAgent, {"mean0": 0.9}, "mean0=0.9"),
    (CMAESAgent, {"sigma0": True}, "sigma0=True"),
    (TPEAgent, {"n_startup_trials": 0}, "n_startup_trials=0"),
    (TPEAgent, {"n_ei_candidates": 2.0}, "n_ei_candidates=2.0"),
    (TPEAgent, {"multivariate": "yes"}, "multivariate='yes'"),
])
def test_bad_hyperparameters_are_one_line_errors(agent_class, kwargs, message):
    with pytest.raises(ValueError, match=f"invalid {message}"):
        agent_class(recorded(), seed=0, **kwargs)
