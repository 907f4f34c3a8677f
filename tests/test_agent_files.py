"""Agents named by their class, never installed: ``--agent path/to/file.py:Class`` and ``package.module:Class``, checked
against the agent protocol before anything is written, resumed only with ``--trust-code``, and configured per task by
an rl-zoo3-style hyper-parameter file."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from run_cli import assert_one_line_error, cli

from prune_gym.agent_api import read_agent_config
from prune_gym.rewards import get_reward
from prune_gym.runs import RunFolder, RunSpec, code_names
from prune_gym.search import default_run_dir, resolve_spec, run_search

SEARCH = ["search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet"]

AGENT = textwrap.dedent('''
    """A random-rates agent written next to the tests: it is never installed."""
    import json

    import numpy as np


    class MyAgent:
        """Prunes each layer at a rate drawn uniformly from [low, high]."""

        def __init__(self, env, seed=None, low=0.1, high=0.5):
            self.env, self.low, self.high = env, low, high
            self.rng = np.random.default_rng(seed)
            self.episodes = 0

        def learn(self, episodes):
            for _ in range(episodes):
                observation, _ = self.env.reset()
                done = False
                while not done:
                    observation, _, terminated, truncated, _ = self.env.step(self.predict(observation))
                    done = terminated or truncated
                self.episodes += 1

        def predict(self, observation, deterministic=True):
            return self.rng.uniform(self.low, self.high, size=self.env.action_space.shape).astype(np.float32)

        def save(self, path):
            with open(f"{path}.json", "w") as file:
                json.dump({"episodes": self.episodes, "rng": self.rng.bit_generator.state}, file)

        def load(self, path):
            with open(f"{path}.json") as file:
                state = json.load(file)
            self.episodes, self.rng.bit_generator.state = state["episodes"], state["rng"]


    class WithoutSave(MyAgent):
        save = None


    class LearnsNothing(MyAgent):
        def learn(self):
            pass


    class NeedsBudget(MyAgent):
        def __init__(self, env, seed=None, *, budget):
            super().__init__(env, seed)


    def make_agent(env, seed=None):
        return MyAgent(env, seed)
''')


def saved_episodes(run: Path) -> int:
    """The episode count the agent wrote into the run's last checkpoint."""
    return json.loads((run / "checkpoint" / "agent.json").read_text())["episodes"]


@pytest.fixture(scope="module")
def agent_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("agents") / "my_agent.py"
    path.write_text(AGENT)
    return path


@pytest.fixture(scope="module")
def file_run(agent_file, tmp_path_factory) -> Path:
    """A 3-episode search by the agent of a file, named relative to the working directory."""
    run = tmp_path_factory.mktemp("runs") / "run"
    result = cli(*SEARCH, "--agent", "my_agent.py:MyAgent", "--episodes", "3", "--run-dir", str(run), cwd=agent_file.parent)
    assert result.returncode == 0, result.stderr
    return run


def test_an_agent_file_runs_end_to_end_and_its_folder_names_the_file(agent_file, file_run):
    spec = RunFolder(file_run).read_spec()
    assert spec.agent == f"{agent_file}:MyAgent"  # absolute: a resume from anywhere finds the file
    assert spec.agent_kwargs == {"low": 0.1, "high": 0.5}
    records, _ = RunFolder(file_run).episodes()
    assert [record.episode for record in records] == [0, 1, 2]
    assert saved_episodes(file_run) == 3
    assert code_names(spec) == [f"agent '{agent_file}:MyAgent'"]
    assert default_run_dir(spec).parent == Path("runs") and "my_agent-MyAgent" in default_run_dir(spec).name


def test_resuming_an_agent_file_needs_trust_code(file_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(file_run, run)
    refused = cli("search", "--resume", str(run), "--episodes", "4", "--quiet", cwd=tmp_path)
    assert_one_line_error(refused, "names code that would be imported", "agent", "my_agent.py:MyAgent", "--trust-code")
    assert len(RunFolder(run).episodes()[0]) == 3
    trusted = cli("search", "--resume", str(run), "--episodes", "4", "--quiet", "--trust-code", cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert len(RunFolder(run).episodes()[0]) == 4
    assert saved_episodes(run) == 4  # restored from the checkpoint (3), then one more episode


def test_an_agent_module_on_sys_path_runs_through_the_python_api(monkeypatch, tmp_path):
    (tmp_path / "agents_under_test.py").write_text(AGENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = RunSpec(task="lenet5-digits", agent="agents_under_test:MyAgent", agent_kwargs={"high": 0.3},
                   env_kwargs={"reward_samples": 100}, episodes=2)
    summary = run_search(spec, tmp_path / "run", progress=False)
    assert summary["episodes_done"] == 2 and summary["agent"] == "agents_under_test:MyAgent"
    stored = RunFolder(tmp_path / "run").read_spec()
    assert stored.agent_kwargs == {"low": 0.1, "high": 0.3}
    assert code_names(stored) == ["agent 'agents_under_test:MyAgent'"]


def test_an_agent_without_save_is_one_line_before_any_folder(agent_file, tmp_path):
    run = tmp_path / "run"
    result = cli(*SEARCH, "--agent", f"{agent_file}:WithoutSave", "--episodes", "3", "--run-dir", str(run))
    assert_one_line_error(result, "WithoutSave", "does not follow the agent protocol", "no save(path)")
    assert not run.exists()


@pytest.mark.parametrize(("name", "agent_kwargs", "words"), [
    ("LearnsNothing", {}, ["learn(self) cannot be called as learn(episodes)"]),
    ("NeedsBudget", {}, ["cannot be built as NeedsBudget(env, seed=..., **hyperparameters)", "'budget'"]),
    ("make_agent", {}, ["is not an agent: it is a function, not a class"]),
    ("MyAgent", {"lw": 0.2}, ["takes no hyper-parameter 'lw'; its keywords: ['low', 'high']"]),
    ("Missing", {}, ["my_agent.py has no attribute 'Missing'"]),
])
def test_an_agent_that_breaks_the_protocol_is_refused_before_any_folder(agent_file, tmp_path, name, agent_kwargs, words):
    run = tmp_path / "run"
    with pytest.raises(ValueError) as error:
        run_search(RunSpec(agent=f"{agent_file}:{name}", agent_kwargs=agent_kwargs, episodes=3), run, progress=False)
    assert all(word in str(error.value) for word in words) and "\n" not in str(error.value), error.value
    assert not run.exists()


def test_an_agent_config_applies_per_task_and_agent_args_override_it(agent_file, tmp_path):
    config = tmp_path / "my_agent.yml"
    config.write_text("default:\n  low: 0.0\n  high: 0.9\nlenet5-digits:\n  high: 0.6\nvgg16-cifar10:\n  high: 0.8\n")
    run = tmp_path / "run"
    result = cli(*SEARCH, "--agent", f"{agent_file}:MyAgent", "--agent-config", str(config), "--agent-arg", "low=0.2",
                 "--episodes", "1", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["agent_kwargs"] == {"low": 0.2, "high": 0.6}

    config.write_text("lenet5-digits:\n  hihg: 0.6\n")
    typo = cli(*SEARCH, "--agent", f"{agent_file}:MyAgent", "--agent-config", str(config), "--run-dir", str(tmp_path / "typo"))
    assert_one_line_error(typo, f"--agent-config {config}", "no hyper-parameter 'hihg'", "['low', 'high']")
    assert not (tmp_path / "typo").exists()


def test_agent_configs_read_yaml_and_json_sections_and_flat_files(tmp_path):
    sections = tmp_path / "config.json"
    sections.write_text(json.dumps({"default": {"low": 0.1, "high": 0.4}, "lenet5-digits": {"high": 0.7}}))
    assert read_agent_config(sections, "lenet5-digits") == {"low": 0.1, "high": 0.7}
    assert read_agent_config(sections, "resnet20-cifar10-subset") == {"low": 0.1, "high": 0.4}
    flat = tmp_path / "best_config.json"  # what `prune-gym tune` writes: one set for every task
    flat.write_text(json.dumps({"low": 0.3}))
    assert read_agent_config(flat, "lenet5-digits") == read_agent_config(flat) == {"low": 0.3}
    only_task = tmp_path / "only_task.yaml"
    only_task.write_text("lenet5-digits: {high: 0.7}\n")
    with pytest.raises(ValueError, match="no section for task 'resnet20-cifar10-subset' and no 'default' one"):
        read_agent_config(only_task, "resnet20-cifar10-subset")
    with pytest.raises(ValueError, match="sections per task"):
        read_agent_config(only_task)  # the benchmark: one set for every entry
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text("lenet5-digit: {high: 0.7}\ndefault: {}\n")
    with pytest.raises(ValueError, match="section 'lenet5-digit' is neither a task"):
        read_agent_config(misspelt, "lenet5-digits")
    with pytest.raises(ValueError, match="expected a .yml, .yaml or .json file"):
        read_agent_config(tmp_path / "config.toml", "lenet5-digits")


def test_only_installed_agents_and_prune_gym_modules_are_trusted():
    assert code_names(RunSpec(agent="sb3:PPO")) == code_names(RunSpec(agent="ddpg")) == []
    assert code_names(RunSpec(agent="prune_gym_agents.ddpg:AMCAgent")) == []
    assert code_names(RunSpec(agent="prune_gym.py:Agent")) == ["agent 'prune_gym.py:Agent'"]  # a file, whatever its name


def test_a_reward_file_goes_through_the_same_registry_and_is_stored_by_its_absolute_path(monkeypatch, tmp_path):
    (tmp_path / "my_rewards.py").write_text("def smaller(state):\n    return -state.macs_ratio if state.done else 0.0\n")
    monkeypatch.chdir(tmp_path)
    spec = resolve_spec(RunSpec(agent="uniform", env_kwargs={"reward": "my_rewards.py:smaller"}))
    assert spec.reward == f"{tmp_path / 'my_rewards.py'}:smaller"
    assert get_reward(spec.reward).function is get_reward("my_rewards.py:smaller").function  # one file, imported once
    assert code_names(spec) == [f"reward '{spec.reward}'"]
