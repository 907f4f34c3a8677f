"""Extending prune_gym as a user would: each extension below is a few lines, with no change to the library.

Also: the package's import graph (type-checking and function-level imports included) has no circle,
and ``prune_gym`` never imports the ``agents`` packages.
"""

import ast
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prune_gym
from prune_gym.agent_api import compatible_environment, make_agent
from prune_gym.runs import RunSpec
from prune_gym.search import run_search

DIGITS = dict(task="lenet5-digits", reward_samples=100)


def test_a_new_observation_is_a_function_of_the_episode_state():
    @prune_gym.register_observation("test-progress", size=2, overwrite=True)
    def progress(state):
        """Fraction of groups decided, and of the MACs left."""
        return np.array([state.group_index / state.num_groups, state.macs_ratio])

    env = gym.make("LayerRate-v0", observation="test-progress", **DIGITS)
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observation, [0.0, 1.0])
    observation, *_ = env.step(np.array([0.5], np.float32))
    assert observation[0] == 0.5 and observation[1] < 1.0
    assert env.observation_space.shape == (2,)


def test_a_new_criterion_ranks_filters_and_becomes_a_filter_feature():
    @prune_gym.register_importance("test-last-first", overwrite=True)
    def last_first(group):
        """Later filters matter more."""
        return np.arange(group.num_channels, dtype=float)  # later filters matter more

    env = gym.make("LayerRate-v0", criterion="test-last-first", enforce_budget=False, **DIGITS)
    env.reset(seed=0)
    env.step(np.array([0.5], np.float32))
    np.testing.assert_array_equal(env.unwrapped.state.keep[0], [False] * 3 + [True] * 3)
    features = gym.make("FilterSelect-v0", **DIGITS).unwrapped.observer
    assert "test-last-first" in features.criteria and "random" not in features.criteria


class KeepHalfEnv(prune_gym.LayerRateEnv):
    """A user's environment: LayerRate whose every decision keeps at least half of the group."""

    def _decide(self, action):
        keep, info = super()._decide(np.minimum(np.asarray(action, np.float32), 0.5))
        return keep, info


def test_a_new_environment_is_registered_once_and_found_everywhere(tmp_path):
    gym.register(id="TestKeepHalf-v0", entry_point=KeepHalfEnv)
    assert "TestKeepHalf-v0" in prune_gym.list_environments()
    summary = run_search(RunSpec(task="lenet5-digits", env="TestKeepHalf-v0", agent="random-search", episodes=3,
                                 env_kwargs={"macs_budget": 1.0, "reward_samples": 100}),
                         run_dir=tmp_path / "run", progress=False)
    assert summary["env"] == "TestKeepHalf-v0" and summary["best"]["macs_ratio"] > 0.2


class RatesOnlyAgent:
    """A third-party agent that only plays rates: it declares so, and prune_gym picks LayerRate-v0 for it."""

    supported_action_spaces = (gym.spaces.Box,)
    supported_environments = ("LayerRate-v0",)

    def __init__(self, env, seed=None):
        self.env = env


def test_a_new_agent_declares_its_spaces_and_gets_a_compatible_environment(monkeypatch):
    import prune_gym.agent_api as api

    monkeypatch.setattr(api, "load_agent_class", lambda name: RatesOnlyAgent)
    assert compatible_environment("rates-only") == ("LayerRate-v0", "continuous")
    with pytest.raises(ValueError, match="cannot run on FilterSelect-v0.*--env LayerRate-v0"):
        compatible_environment("rates-only", env_id="FilterSelect-v0")
    with pytest.raises(ValueError, match="runs on \\['LayerRate-v0'\\]"):
        make_agent("rates-only", gym.make("FilterSelect-v0", **DIGITS))


def test_sb3_algorithms_declare_the_spaces_stable_baselines3_accepts():
    assert compatible_environment("sb3:DQN") == ("LayerRate-v0", "discrete")
    assert compatible_environment("sb3:SAC", env_id="FilterSelect-v0") == ("FilterSelect-v0", "continuous")
    assert compatible_environment("try-and-learn") == ("FilterSelect-v0", "binary")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports: at module level, in functions and under ``TYPE_CHECKING`` alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_import_circles_and_prune_gym_never_imports_agents():
    root = Path(prune_gym.__file__).parent
    modules = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p for p in root.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    for name, path in modules.items():
        assert not any(m == "agents" or m.startswith("agents.") for m in _imports(path)), f"{name} imports agents"

    finished: set[str] = set()

    def visit(name, trail):  # depth-first; an edge back into the trail is a circle
        assert name not in trail, f"import circle: {' -> '.join(trail[trail.index(name):] + [name])}"
        if name not in finished:
            for dependency in sorted(graph[name]):
                if not name.startswith(dependency + "."):  # a package's own submodules may import from it
                    visit(dependency, trail + [name])
            finished.add(name)

    for name in graph:
        visit(name, [])
