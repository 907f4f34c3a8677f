"""The `prune-gym` command starts fast and lists what is installed; the README's agent runs as written."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from run_cli import assert_one_line_error, cli

import prune_gym
from prune_gym.agent_api import check_action_space, compatible_environment
from prune_gym.cli import main
from prune_gym.runs import RunFolder
from prune_gym.wrappers import EpisodeRecorder

ROOT = Path(__file__).resolve().parents[1]
STARTUP_BOUND_S = 2.5  # measured 0.45 s on the 2-core CI machine; generous for a loaded one


def prune_gym_command(*arguments: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``python -m prune_gym.cli ARGUMENTS`` in a fresh interpreter, stdout a pipe; returns the result and its wall seconds."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "prune_gym.cli", *arguments], capture_output=True, text=True, env=environment, cwd=ROOT)
    return result, time.perf_counter() - start


@pytest.mark.parametrize("arguments", [("--help",), ("list", "tasks"), ("list", "datasets"), ("list", "rewards")])
def test_help_and_light_listings_start_fast_without_torch(arguments):
    result, seconds = prune_gym_command(*arguments)
    assert result.returncode == 0, result.stderr
    assert seconds < STARTUP_BOUND_S, f"prune-gym {' '.join(arguments)} took {seconds:.2f} s"
    probe = ("import sys; from prune_gym.cli import main; main(['list', 'tasks']); "
             "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'wandb', 'stable_baselines3') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert imported.stdout.strip().splitlines()[-1] == "[]"


def test_heavy_listings_come_from_the_cache_without_torch_until_the_installed_code_changes(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PRUNE_GYM_CACHE": str(tmp_path)}

    def run(*code: str) -> str:
        done = subprocess.run([sys.executable, "-c", "; ".join(code)], capture_output=True, text=True, env=environment, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run("from prune_gym.cli import main", "main(['list', 'agents'])")
    [cached] = (tmp_path / "listings").glob("agents-*.json")
    again = run("import sys", "from prune_gym.cli import main", "main(['list', 'agents'])", "print('torch' in sys.modules)")
    assert again == first + "False\n", "the second listing is the first, and needs no torch"
    cached.write_text('{"headers": ["agent", "action spaces", "description"], "rows": [["planted", "Box", "from the cache"]]}')
    assert run("from prune_gym.cli import main", "main(['list', 'agents'])") == first, "a planted cache file is never served"
    source = ROOT / "agents" / "baselines" / "__init__.py"
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # an edited agent: the listing is redone
        assert run("from prune_gym.cli import main", "main(['list', 'agents'])") == first
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def listing(capsys, what: str) -> dict[str, list[str]]:
    """``prune-gym list WHAT`` parsed: first column -> the other columns (split on runs of 2+ spaces)."""
    assert main(["list", what]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {cells[0]: cells[1:] for cells in (re.split(r" {2,}", line) for line in lines[1:])}


def test_tasks_are_listed_with_descriptions_metric_and_whether_their_checkpoint_is_cached(capsys):
    prune_gym.get_task("lenet5-digits").load_model()  # pretrains into the test cache if needed
    tasks = listing(capsys, "tasks")
    assert set(tasks) == set(prune_gym.list_tasks())
    assert tasks["lenet5-digits"][:2] == ["cached", "accuracy"] and "LeNet-5" in tasks["lenet5-digits"][2]
    assert tasks["fcn-mnist-scenes"][1] == "mean-iou"
    if not prune_gym.get_task("vgg16-cifar10").checkpoint_path().exists():
        assert tasks["vgg16-cifar10"][0] == "run `prune-gym pretrain`"


def test_every_listing_names_each_entry_with_a_description(capsys):
    for what, names in [("environments", prune_gym.list_environments()), ("models", prune_gym.list_models()),
                        ("datasets", prune_gym.list_datasets()), ("rewards", prune_gym.list_rewards()),
                        ("observations", prune_gym.list_observations())]:
        rows = listing(capsys, what)
        assert set(rows) == set(names), what
        assert all(row and row[-1] for row in rows.values()), f"{what} without a description: {rows}"
    assert listing(capsys, "environments")["LayerRate-v0"][0] == "continuous, discrete"
    assert listing(capsys, "models")["resnet56"][0] == "(3, 32, 32)" and "depth=56" in listing(capsys, "models")["resnet56"][1]
    assert "k-means" in listing(capsys, "criteria")["cluster"][0]


def test_agents_are_listed_with_their_action_spaces_and_every_stable_baselines3_algorithm(capsys):
    agents = listing(capsys, "agents")
    assert {"ddpg", "uniform", "try-and-learn", "tianshou:PPO", "tianshou:SAC", "sb3:PPO", "sb3:SAC", "sb3:DQN"} <= set(agents)
    assert "sb3" not in agents and "tianshou" not in agents and not any(name.startswith("ddpg:") for name in agents)
    assert agents["sb3:DQN"] == ["Discrete", "stable-baselines3's Deep Q-Network (DQN)"]
    assert agents["uniform"][0] == "Box on LayerRate-v0" and agents["try-and-learn"][0] == "MultiBinary on FilterSelect-v0"
    assert "AMC" in agents["ddpg"][1]


def test_output_never_wraps_when_piped(tmp_path, capsys):
    result, _ = prune_gym_command("list", "tasks")
    assert len(result.stdout.splitlines()) == 1 + len(prune_gym.list_tasks())
    run = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-" * 2) / "run"
    assert main(["search", "--agent", "uniform", "--episodes", "1", "--run-dir", str(run), "--quiet", "--reward-samples", "100"]) == 0
    assert f"run folder and plots: {run}/learning_curve.png" in capsys.readouterr().out


def readme_blocks(language: str) -> list[str]:
    """The ``language`` code blocks of the README's "Write your own agent" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Write your own agent\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_agent_runs_as_written_through_its_entry_point(tmp_path, monkeypatch):
    (agent_code,) = readme_blocks("python")
    (pyproject,) = readme_blocks("toml")
    assert '[project.entry-points."prune_gym.agents"]' in pyproject
    name, target = re.search(r'^([\w-]+) = "([\w.]+:\w+)"$', pyproject, flags=re.MULTILINE).groups()
    module, attribute = target.split(":")
    assert 20 <= len(agent_code.splitlines()) <= 50, "a short example"
    (tmp_path / f"{module}.py").write_text(agent_code)
    dist_info = tmp_path / f"{module}-0.1.dist-info"  # what `pip install` writes for the pyproject.toml entry point
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[prune_gym.agents]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert compatible_environment(name) == ("LayerRate-v0", "continuous")
    run = tmp_path / "run"
    assert main(["search", "--agent", name, "--task", "lenet5-digits", "--episodes", "8", "--reward-samples", "200",
                 "--checkpoint-every", "3", "--run-dir", str(run), "--quiet"]) == 0
    records = RunFolder(run).episodes()[0]
    assert len(records) == 8 and all(record.budget_met for record in records)

    agent_class = getattr(__import__(module), attribute)

    def returns(split: int | None) -> list[float]:
        """Returns of 6 episodes: uninterrupted, or learned in two parts with a save/load into a fresh agent between."""
        recorder = EpisodeRecorder(gym.make("prune_gym:LayerRate-v0", task="lenet5-digits", reward_samples=200))
        check_action_space(agent_class, recorder)
        agent = agent_class(recorder, seed=0)
        if split is None:
            agent.learn(6)
        else:
            agent.learn(split)
            agent.save(tmp_path / "agent.json")
            agent = agent_class(recorder, seed=0)
            agent.load(tmp_path / "agent.json")
            agent.learn(6 - split)
        return [record.episode_return for record in recorder.episodes]

    assert returns(None) == returns(3)


def test_environments_are_listed_from_the_cache_without_torch(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PRUNE_GYM_CACHE": str(tmp_path)}
    probe = "import sys; from prune_gym.cli import main; main(['list', 'environments']); print('torch' in sys.modules)"

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run()
    assert first.endswith("True\n") and "LayerRate-v0" in first, "the first listing imports the environments"
    assert run() == first.replace("True\n", "False\n"), "the second is the first, served from the cache without torch"


def test_reward_keyword_arguments_are_given_with_env_arg_as_the_help_says(tmp_path):
    assert "reward_kwargs=" in cli("search", "--help").stdout.replace("\n", " ")
    prune_gym.get_task("lenet5-digits").load_model()
    common = ["search", "--agent", "uniform", "--episodes", "1", "--reward-samples", "100", "--quiet", "--reward", "budget-penalty"]
    done = cli(*common, "--run-dir", str(tmp_path / "run"), "--env-arg", 'reward_kwargs={"penalty": 2}')
    assert done.returncode == 0, done.stderr
    assert RunFolder(tmp_path / "run").read_spec().env_kwargs["reward_kwargs"] == {"penalty": 2}
    refused = cli(*common, "--run-dir", str(tmp_path / "refused"), "--env-arg", 'reward_kwargs={"penalty": -1}')
    assert_one_line_error(refused, "penalty")
    assert not (tmp_path / "refused").exists()


def test_a_glob_of_results_folders_skips_what_holds_no_results_with_a_note(tmp_path):
    results = tmp_path / "results"
    for agent in ("random-search", "tpe"):  # two published results, as `prune-gym benchmark --out results/AGENT` leaves them
        (results / agent).mkdir(parents=True)
        shutil.copy(ROOT / "leaderboard" / "cpu-v0" / "results" / f"{agent}.json", results / agent / "results.json")
    (results / "cache" / "recovered").mkdir(parents=True)  # what `--cache results/cache` leaves beside them
    (results / "ddpg").mkdir()
    (results / "ddpg" / "benchmark.json").write_text(json.dumps({"suite": "cpu-v0", "agent": "ddpg"}))  # still running
    (results / "notes.txt").write_text("to do")
    done = cli("leaderboard", *sorted(str(path) for path in results.glob("*")))  # what the shell makes of results/*
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"prune-gym leaderboard: skipping {results / 'cache'}: no results.json, not a `prune-gym benchmark --out` folder",
        f"prune-gym leaderboard: skipping {results / 'ddpg'}: no results.json, its benchmark has not run to the end",
        f"prune-gym leaderboard: skipping {results / 'notes.txt'}: not a results file (.json)"]
    ranks = [line.split(" | ")[:2] for line in done.stdout.splitlines() if re.match(r"\| \d+ \|", line)]
    assert ranks == [["| 1", "random-search"], ["| 2", "tpe"]]
    assert_one_line_error(cli("leaderboard", str(results / "cache")), f"{results / 'cache'} has no results.json")
    assert_one_line_error(cli("leaderboard", str(results / "cache"), str(results / "ddpg")),
                          "none of the 2 paths holds benchmark results")
