"""Scale-out on real Ray (a local instance, 2 CPUs, loopback only): same results as the local pool, lost workers, tuning."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

from prune_gym.benchmark.executors import LocalExecutor
from prune_gym.benchmark.ray_executor import RayExecutor, assigned_cuda_device, ray_session
from prune_gym.benchmark.runner import run_benchmark
from prune_gym.benchmark.tuning import parse_space
from prune_gym.cli import main
from prune_gym.runs import RunFolder

ROOT = Path(__file__).resolve().parents[1]
QUICK = "lenet5-digits_LayerRate-0.5"  # the quick suite's one entry, as a folder name

KILLING_AGENT = '''
import os
import re
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np


class KillingAgent:
    """Random rates; SIGKILLs its own process at its 8th episode the first time it runs a seed (every time on ``doomed_seed``)."""
    supported_action_spaces = (gym.spaces.Box,)
    supported_environments = ("LayerRate-v0",)

    def __init__(self, env, seed=None, marker_dir="", doomed_seed=-1):
        self.env, self.seed, self.rng, self.episodes = env, seed, np.random.default_rng(seed), 0
        self.marker, self.doomed = Path(marker_dir) / f"killed-seed-{seed}", seed == doomed_seed

    def learn(self, episodes):
        for _ in range(episodes):
            self.episodes += 1
            if self.episodes == 8 and (self.doomed or not self.marker.exists()):
                self.marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            self.env.reset()
            done = False
            while not done:
                _, _, done, _, _ = self.env.step(self.rng.uniform(0, 1, 1).astype(np.float32))

    def predict(self, observation, deterministic=True):
        return np.array([0.5], dtype=np.float32)

    def save(self, path): pass

    def load(self, path): pass
'''


@pytest.fixture(scope="module")
def killing_agent(tmp_path_factory):
    """A test-only agent package on this process's path and on PYTHONPATH, which the workers of both back-ends inherit."""
    site = tmp_path_factory.mktemp("site")
    (site / "killing_agent.py").write_text(textwrap.dedent(KILLING_AGENT))
    info = site / "killing_agent-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: killing-agent\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prune_gym.agents]\nkilling = killing_agent:KillingAgent\n")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), previous]))
    sys.path.insert(0, str(site))
    yield "killing"
    sys.path.remove(str(site))
    os.environ.pop("PYTHONPATH") if previous is None else os.environ.__setitem__("PYTHONPATH", previous)
    sys.modules.pop("killing_agent", None)


@pytest.fixture(scope="module")
def ray(killing_agent):
    """A local Ray instance (2 CPUs, 127.0.0.1 only), shut down after the module's tests."""
    with ray_session("local", num_cpus=2) as session:
        assert [node["NodeManagerAddress"] for node in session.nodes()] == ["127.0.0.1"]
        yield session


def episode_rows(run_dir: Path) -> list[dict[str, str]]:
    """episodes.csv as rows, without the wall time (and the line checksum that covers it)."""
    return [{key: value for key, value in row.items() if key != "seconds"} for row in
            (record.to_row() for record in RunFolder(run_dir).episodes()[0])]


def without_times(run: dict) -> dict:
    return {key: value for key, value in run.items() if not key.endswith("seconds")}


def test_the_quick_suite_on_ray_gives_the_local_pools_results_and_a_rerun_skips_them(ray, tmp_path):
    kwargs = {"agent_kwargs": {"warmup_episodes": 10}, "progress": False}  # DDPG trains its networks from episode 10 of 40
    local = run_benchmark("ddpg", "quick-v0", tmp_path / "local", executor=LocalExecutor(1), **kwargs)
    shared = tmp_path / "shared"  # --storage: the run folders, where every worker writes
    assert main(["benchmark", "--agent", "ddpg", "--suite", "quick-v0", "--agent-arg", "warmup_episodes=10", "--out", str(tmp_path / "ray"),
                 "--storage", str(shared), "--ray", "--cpus-per-run", "1", "--quiet"]) == 0
    remote = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert remote == json.loads((shared / "results.json").read_text())
    assert [run["seed"] for run in remote["runs"]] == [0, 1] and not remote["failed"]
    assert [without_times(run) for run in remote["runs"]] == [without_times(run) for run in local["runs"]]
    for seed in (0, 1):
        rows = episode_rows(shared / QUICK / f"seed-{seed}")
        assert len(rows) == 40 and rows == episode_rows(tmp_path / "local" / QUICK / f"seed-{seed}")
    scored = (shared / QUICK / "seed-0" / "score.json").stat().st_mtime_ns
    again = run_benchmark("ddpg", "quick-v0", shared, executor=RayExecutor("local"), **kwargs)
    assert (shared / QUICK / "seed-0" / "score.json").stat().st_mtime_ns == scored, "a re-run skips scored runs"
    assert [without_times(run) for run in again["runs"]] == [without_times(run) for run in remote["runs"]]


def test_a_killed_worker_is_retried_and_one_killed_on_every_try_is_reported(ray, killing_agent, tmp_path):
    results = run_benchmark(killing_agent, "quick-v0", tmp_path / "out", agent_kwargs={"marker_dir": str(tmp_path), "doomed_seed": 1},
                            executor=RayExecutor("local", max_retries=1), progress=False)
    assert (tmp_path / "killed-seed-0").exists() and (tmp_path / "killed-seed-1").exists(), "both workers were SIGKILLed"
    assert [run["seed"] for run in results["runs"]] == [0] and results["runs"][0]["episodes"] == 40
    [failure] = results["failed"]
    assert failure["seed"] == 1 and failure["error"].startswith("worker lost: ") and "died" in failure["error"]
    retried = [int(row["episode"]) for row in episode_rows(tmp_path / "out" / QUICK / "seed-0")]
    assert retried == list(range(40)), "the retry resumed the run: no episode lost or recorded twice"
    doomed = [int(row["episode"]) for row in episode_rows(tmp_path / "out" / QUICK / "seed-1")]
    assert doomed == list(range(len(doomed))) and len(doomed) == 14, "7 episodes per try, each once"


def test_the_local_pool_also_retries_a_killed_worker(killing_agent, tmp_path):
    results = run_benchmark(killing_agent, "quick-v0", tmp_path / "out", seeds=[0], agent_kwargs={"marker_dir": str(tmp_path)},
                            executor=LocalExecutor(2), progress=False)
    assert (tmp_path / "killed-seed-0").exists() and not results["failed"] and results["runs"][0]["episodes"] == 40
    assert [int(row["episode"]) for row in episode_rows(tmp_path / "out" / QUICK / "seed-0")] == list(range(40))


def test_a_multi_seed_search_writes_one_run_folder_per_seed_alike_on_both_back_ends(ray, tmp_path, capsys):
    search = ["search", "--task", "lenet5-digits", "--agent", "random-search", "--episodes", "15", "--reward-samples", "200",
              "--seeds", "0-1", "--quiet"]
    assert main([*search, "--run-dir", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert main([*search, "--run-dir", str(tmp_path / "ray"), "--ray", "--cpus-per-run", "1"]) == 0
    assert "lenet5-digits: 2 seeds" in capsys.readouterr().out
    for seed in (0, 1):
        rows = episode_rows(tmp_path / "ray" / f"seed-{seed}")
        assert len(rows) == 15 and rows == episode_rows(tmp_path / "local" / f"seed-{seed}")
    summary = (tmp_path / "ray" / "seed-0" / "summary.json").stat().st_mtime_ns
    assert main([*search, "--run-dir", str(tmp_path / "ray"), "--ray"]) == 0
    assert (tmp_path / "ray" / "seed-0" / "summary.json").stat().st_mtime_ns == summary, "a re-run skips finished seeds"


def test_tuning_writes_the_best_configuration_that_benchmark_then_uses(ray, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("sigma: {loguniform: [0.1, 1.0]}  # noise scale\nwarmup_episodes: {choice: [5, 20]}\n")
    out = tmp_path / "tuned"
    assert main(["tune", "--agent", "ddpg", "--suite", "quick-v0", "--trials", "3", "--space", str(space),
                 "--tuning-seeds", "100", "101", "--out", str(out), "--quiet"]) == 0
    assert "best_config.json" in capsys.readouterr().out
    report = json.loads((out / "tuning.json").read_text())
    assert len(report["trials"]) == 3 and report["tuning_seeds"] == [100, 101]
    completed = [trial for trial in report["trials"] if trial["status"] == "completed"]
    assert completed and all(trial["episodes"] == 80 for trial in completed), "a whole trial: 2 tuning seeds x 40 episodes"
    best = json.loads((out / "best_config.json").read_text())
    assert best == max(completed, key=lambda trial: trial["best_so_far"])["config"]
    assert set(best) == {"sigma", "warmup_episodes"} and 0.1 <= best["sigma"] <= 1.0 and best["warmup_episodes"] in (5, 20)
    seed_dirs = sorted(path.name for path in (out / "trials").glob(f"*/{QUICK}/seed-*"))
    assert set(seed_dirs) == {"seed-100", "seed-101"}, "tuning never searches a benchmark seed"
    assert main(["benchmark", "--agent", "ddpg", "--suite", "quick-v0", "--seeds", "0", "--agent-config", str(out / "best_config.json"),
                 "--out", str(tmp_path / "bench"), "--quiet"]) == 0
    manifest = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert manifest["agent_kwargs_given"] == best and manifest["agent_kwargs"]["sigma"] == best["sigma"]


def test_tuning_refuses_benchmark_seeds_in_one_line(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("sigma: {uniform: [0.1, 1.0]}\n")
    assert main(["tune", "--agent", "ddpg", "--suite", "quick-v0", "--trials", "2", "--space", str(space),
                 "--tuning-seeds", "1", "100", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "tuning seeds [1] are benchmark seeds of quick-v0" in error


@pytest.mark.parametrize("space, words", [
    ({"lr": {"loguniform": [0, 1]}}, ["lr", "positive low bound"]),
    ({"lr": {"uniform": [1, 0.1]}}, ["lr", "low < high"]),
    ({"n": {"randint": [1.5, 4]}}, ["n", "integer bounds"]),
    ({"n": {"gauss": [0, 1]}}, ["n", "expected one of"]),
    ({"hidden": {"choice": [[64], [128]]}}, ["hidden", "numbers, strings or booleans"]),
    ([1, 2], ["mapping of hyper-parameter names"]),
])
def test_a_bad_search_space_is_one_line(space, words):
    with pytest.raises(ValueError) as error:
        parse_space(space)
    assert len(str(error.value).splitlines()) == 1 and all(word in str(error.value) for word in words)


def test_resources_no_node_has_are_refused_in_one_line(ray, tmp_path, capsys):
    assert main(["benchmark", "--agent", "uniform", "--suite", "quick-v0", "--out", str(tmp_path), "--ray", "--gpus-per-run", "1",
                 "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no Ray node has 1 CPUs and 1 GPUs" in error
    assert main(["benchmark", "--agent", "uniform", "--suite", "quick-v0", "--out", str(tmp_path), "--cpus-per-run", "2"]) == 2
    assert "add --ray" in capsys.readouterr().err


def test_a_gpu_run_is_placed_on_the_device_ray_assigned():
    assert assigned_cuda_device([3], "3") == "cuda:0", "Ray narrows CUDA_VISIBLE_DEVICES to the task's GPU"
    assert assigned_cuda_device(["2"], "1,2") == "cuda:1"
    assert assigned_cuda_device([2], None) == "cuda:2"


def test_the_cli_does_not_import_ray_ray_is_an_extra_and_its_absence_is_one_line(tmp_path):
    probe = "import sys, prune_gym.cli; prune_gym.cli.build_parser(); print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(dependency.startswith("ray") for dependency in project["dependencies"]), "a plain install stays small"
    extras = project["optional-dependencies"]
    assert any(dependency.startswith("ray[tune]>=2.60") for dependency in extras["ray"])
    own = [re.fullmatch(r"prune_gym\[(.*)\]", dependency) for dependency in extras["dev"]]
    assert any(match and "ray" in match.group(1).split(",") for match in own), "README's install command brings Ray Tune"
    space = tmp_path / "space.yaml"
    space.write_text("sigma: {uniform: [0.1, 1.0]}\n")
    without_ray = "import sys; sys.modules['ray'] = None; from prune_gym.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", without_ray, "tune", "--agent", "cma-es", "--suite", "quick-v0", "--trials", "1",
                             "--space", str(space), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "prune-gym tune: error: Ray is not installed (it runs --ray and `prune-gym tune`): pip install 'prune_gym[ray]'"]
