"""Run folders and results that cannot be credited to the wrong run, and code that runs only when the user trusts it.

Each case is what a careless or hostile user does, through the command in a real subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from run_cli import assert_one_line_error, cli

from prune_gym.runs import RunFolder

SEARCH = ["search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    assert cli(*SEARCH, "--agent", "random-search", "--episodes", "3", "--run-dir", str(run)).returncode == 0
    return run


@pytest.mark.parametrize("field", ["task", "reward", "env"])
def test_a_run_folder_naming_code_imports_it_only_with_trust_code(field, finished_run, tmp_path):
    """A ``config.json`` from someone else that names ``module:attribute`` would import that module on resume, export
    or recovery: refused in one line unless ``--trust-code`` (the module here leaves a marker when imported)."""
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run)], check=True)
    marker = tmp_path / "imported"
    (tmp_path / "pwnmod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n\ndef f(*args, **kwargs):\n    return 0.0\n")
    config = json.loads((run / "config.json").read_text())
    if field == "reward":
        config["env_kwargs"]["reward"] = "pwnmod:f"
    else:
        config[field] = "pwnmod:f" if field == "task" else "pwnmod:X-v0"
    (run / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for command in (["search", "--resume", str(run), "--episodes", "5", "--quiet"], ["export", str(run)], ["recover", str(run)]):
        if field != "task" and command[0] != "search":
            continue  # export and recovery import only the task
        assert_one_line_error(cli(*command, env=env, cwd=tmp_path), "names code that would be imported", "pwnmod:", "--trust-code")
        assert not marker.exists(), f"{command[0]} imported the folder's module without --trust-code"
    trusted = cli("search", "--resume", str(run), "--episodes", "5", "--quiet", "--trust-code", env=env, cwd=tmp_path)
    assert marker.exists(), trusted.stderr
    assert "Traceback" not in trusted.stderr, trusted.stderr


def test_a_pruned_network_file_naming_code_loads_it_only_with_trust_code(finished_run, tmp_path):
    import torch

    from prune_gym.errors import RunError
    from prune_gym.recovery import load_pruned

    assert cli("export", str(finished_run), "--output", str(tmp_path / "pruned.pt")).returncode == 0
    payload = torch.load(tmp_path / "pruned.pt", weights_only=True)
    torch.save({**payload, "task": "pwnmod_absent:f"}, tmp_path / "foreign.pt")
    with pytest.raises(RunError, match="names code that would be imported"):
        load_pruned(tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="cannot load task 'pwnmod_absent:f'"):
        load_pruned(tmp_path / "foreign.pt", trust_code=True)
    assert load_pruned(tmp_path / "pruned.pt") is not None


def test_names_of_prune_gym_and_installed_plugins_are_trusted(finished_run):
    from prune_gym.runs import code_names

    spec = RunFolder(finished_run).read_spec()
    assert code_names(spec) == []
    assert code_names(spec.replace(env="prune_gym:LayerRate-v0").with_env(reward="prune_gym.rewards:x", device="cuda:0")) == []
    assert code_names(spec.with_env(reward="evil.module:f")) == ["reward 'evil.module:f'"]


def test_a_refused_writer_leaves_the_holders_lock_and_files_alone(tmp_path):
    """While a search is starting (the lock held, nothing written yet), the same command again is refused, and it must not
    clean the folder as if its own start had failed: the holder's lock file stays, so the next writer is refused too."""
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from prune_gym.runs import RunFolder
        with RunFolder({str(run)!r}).writing(create=True):
            print("holding", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert_one_line_error(cli(*SEARCH, "--agent", "random-search", "--episodes", "3", "--run-dir", str(run)),
                              f"in use by process {holder.pid}")
        assert (run / ".lock").read_text().split()[0] == str(holder.pid), "the holder's lock file is still there"
        assert_one_line_error(cli(*SEARCH, "--agent", "random-search", "--episodes", "3", "--run-dir", str(run)),
                              f"in use by process {holder.pid}")
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0


def test_a_benchmark_does_not_adopt_another_agents_run_folder(tmp_path, capsys):
    """A ``seed-N`` folder a random-search search left where a cma-es benchmark puts its run is refused, not scored as
    cma-es; the benchmark's run for that seed is failed, naming the fields, and nothing is credited."""
    from prune_gym.benchmark import get_suite
    from prune_gym.cli import main

    entry = get_suite("quick-v0").entries[0]
    foreign = tmp_path / "out" / entry.slug / "seed-1"
    assert main([*SEARCH, "--agent", "random-search", "--episodes", "2", "--run-dir", str(foreign)]) == 0
    before = (foreign / "episodes.csv").read_bytes()
    assert main(["benchmark", "--agent", "cma-es", "--suite", "quick-v0", "--seeds", "1", "--out", str(tmp_path / "out"),
                 "--quiet"]) == 2
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["runs"] == [] and len(results["failed"]) == 1
    assert "holds another run (agent, agent_kwargs, env_kwargs.macs_budget" in results["failed"][0]["error"] or \
        "holds another run (agent, agent_kwargs" in results["failed"][0]["error"], results["failed"][0]["error"]
    assert (foreign / "episodes.csv").read_bytes() == before and not (foreign / "score.json").exists()
    assert main([*SEARCH, "--agent", "cma-es", "--episodes", "2", "--seeds", "1", "--run-dir", str(tmp_path / "out" / entry.slug)]) == 2
    assert "seed 1: RunError" in capsys.readouterr().err


@pytest.mark.parametrize("agent, kwargs", [("cma-es", {}), ("ddpg", {"warmup_episodes": 4})])
def test_a_resumed_search_counts_evaluations_exactly_as_an_uninterrupted_one(agent, kwargs, tmp_path, monkeypatch):
    """Stopped by Ctrl-C after 5 episodes and resumed, a search records the same episodes and the same evaluation
    counts as one never stopped: the checkpoint keeps the evaluation cache, and the unpruned network's reference
    evaluation is the environment's, charged to no agent (a 12-evaluation budget buys 12 one-evaluation episodes)."""
    import signal

    from prune_gym.runs import RunSpec
    from prune_gym.search import resume_search, run_search
    from prune_gym.wrappers import EpisodeRecorder

    spec = RunSpec(task="lenet5-digits", env_kwargs={"reward_samples": 100}, agent=agent, agent_kwargs=kwargs, episodes=12,
                   max_evaluations=12, checkpoint_every=1)
    whole = run_search(spec, tmp_path / "whole", progress=False)
    assert whole["episodes_done"] == 12 and whole["evaluations"] <= 12
    original_step, finished = EpisodeRecorder.step, []

    def stop_after_five_episodes(self, action):
        result = original_step(self, action)
        if result[2]:
            finished.append(1)
            if len(finished) == 5:
                os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(EpisodeRecorder, "step", stop_after_five_episodes)
    assert run_search(spec, tmp_path / "stopped", progress=False)["episodes_done"] == 5
    monkeypatch.setattr(EpisodeRecorder, "step", original_step)
    resume_search(tmp_path / "stopped", progress=False)
    uninterrupted, resumed = (RunFolder(tmp_path / name).episodes()[0] for name in ("whole", "stopped"))
    assert [(r.evaluations, r.rates) for r in resumed] == [(r.evaluations, r.rates) for r in uninterrupted]


def test_no_hang_a_fifo_a_huge_seed_range_or_an_unreachable_ray_is_one_line_within_seconds(finished_run, tmp_path):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run)], check=True)
    (run / "episodes.csv").unlink()
    os.mkfifo(run / "episodes.csv")
    assert_one_line_error(cli("search", "--resume", str(run), "--quiet", timeout=60), "episodes.csv is not a regular file")
    assert_one_line_error(cli(*SEARCH, "--seeds", "0-300000", "--run-dir", str(tmp_path / "many"), timeout=60), "more than 1000 seeds")
    assert_one_line_error(cli(*SEARCH, "--agent", "uniform", "--episodes", "1", "--seeds", "0", "--ray", "127.0.0.1:1",
                              "--run-dir", str(tmp_path / "ray"), timeout=60), "no Ray cluster answers at 127.0.0.1:1")
    assert not (tmp_path / "many").exists() and not (tmp_path / "ray").exists()


def test_no_silent_nonsense_in_a_run_folders_records(finished_run, tmp_path):
    """A flipped byte in the last complete record is corruption (refused, the file untouched), not a torn write; an
    emptied or deleted episodes.csv is not resumed as if the agent's checkpoint had seen nothing."""
    for damage in ("flip", "empty", "delete"):
        run = tmp_path / damage
        subprocess.run(["cp", "-r", str(finished_run), str(run)], check=True)
        csv = run / "episodes.csv"
        if damage == "flip":
            data = bytearray(csv.read_bytes())
            data[-20] ^= 0x01
            csv.write_bytes(bytes(data))
        elif damage == "empty":
            csv.write_bytes(b"")
        else:
            csv.unlink()
        before = csv.read_bytes() if csv.exists() else None
        expected = "line 4 is damaged (checksum mismatch)" if damage == "flip" else "holds 0 episodes but the agent's checkpoint has seen 3"
        assert_one_line_error(cli("search", "--resume", str(run), "--episodes", "5", "--quiet"), expected)
        assert (csv.read_bytes() if csv.exists() else None) == before, "nothing is deleted or rewritten"


@pytest.mark.parametrize("arguments, words", [
    (["--env", "importboom:X-v0"], ["cannot import 'importboom'", "RuntimeError: boom at import"]),
    (["--reward", "importboom:f"], ["cannot load reward 'importboom:f'", "RuntimeError"]),
    (["--reward", "syntaxbad:f"], ["cannot load reward 'syntaxbad:f'", "SyntaxError"]),
    (["--reward", "nomodule_zz:f"], ["cannot load reward 'nomodule_zz:f'", "ModuleNotFoundError"]),
    (["--task", "os:getcwd"], ["'os:getcwd' is not a task"]),
])
def test_hostile_names_on_the_command_line_are_one_line_and_leave_no_folder(arguments, words, tmp_path):
    (tmp_path / "importboom.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "syntaxbad.py").write_text("def f(:\n")
    result = cli(*SEARCH, "--agent", "uniform", "--episodes", "1", "--run-dir", str(tmp_path / "run"), *arguments,
                 env={**os.environ, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "run").exists()


def test_a_suite_named_by_code_that_is_no_suite_is_one_line(tmp_path):
    assert_one_line_error(cli("benchmark", "--agent", "uniform", "--suite", "os:getcwd", "--out", str(tmp_path / "b")),
                          "'os:getcwd' is not a suite")
    assert not (tmp_path / "b").exists()


def test_a_pickle_in_weights_pt_or_nonsense_in_config_json_is_one_line(finished_run, tmp_path):
    """``weights.pt`` is loaded with ``weights_only``: a pickle carrying code is refused, never run; a hand-edited
    ``"episodes": -5`` is refused on resume."""
    import pickle

    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(finished_run), str(run)], check=True)
    marker = tmp_path / "ran"
    (run / "checkpoint" / "weights.pt").write_bytes(pickle.dumps(Planted(str(marker))))
    assert_one_line_error(cli("export", str(run)), "weights.pt is not the network's weights")
    assert not marker.exists()
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "episodes": -5}))
    assert_one_line_error(cli("search", "--resume", str(run), "--quiet"), "episodes=-5")


class Planted:
    """A pickle that would run code (leave a marker) when unpickled without ``weights_only``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))
