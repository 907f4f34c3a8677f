"""Run folders never lose or corrupt an episode, and every bad input is one line: real subprocesses on lenet5-digits.

Each test reproduces a defect found by probing prune_gym as a hostile user would (torn CSV, two writers,
kill -9, SIGINT, a full disk, fork, bad data, CLI tracebacks, silently wrong values) and asserts the fix.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from run_cli import assert_one_line_error, cli
from torch import nn

import prune_gym
from prune_gym.runs import RunFolder

SEARCH = [sys.executable, "-m", "prune_gym.cli", "search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet"]


def episodes(run: Path) -> list[int]:
    return [record.episode for record in RunFolder(run).episodes()[0]]


def wait_for_rows(run: Path, rows: int, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run / "episodes.csv").exists() and len(episodes(run)) >= rows:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{run} did not reach {rows} episodes in {timeout} s")


# ----------------------------------------------------------------- torn records
@pytest.mark.parametrize("cut", [40, 2])
def test_a_torn_last_record_is_reported_dropped_and_the_run_resumes(tmp_path, cut):
    run = tmp_path / "run"
    assert cli(*SEARCH[3:], "--agent", "random-search", "--episodes", "6", "--run-dir", str(run)).returncode == 0
    os.truncate(run / "episodes.csv", (run / "episodes.csv").stat().st_size - cut)
    resumed = cli("search", "--resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "episodes.csv line 7 is torn" in resumed.stderr and "dropped" in resumed.stderr
    assert episodes(run) == list(range(6)), "the torn episode is run again, never glued to the next"
    assert cli("plot", str(run)).returncode == 0


def test_a_damaged_middle_record_is_an_error_naming_file_and_line(tmp_path):
    run = tmp_path / "run"
    assert cli(*SEARCH[3:], "--agent", "random-search", "--episodes", "4", "--run-dir", str(run)).returncode == 0
    lines = (run / "episodes.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("True", "Fals", 1) if "True" in lines[2] else lines[2].replace("0", "1", 1)
    (run / "episodes.csv").write_text("".join(lines))
    assert_one_line_error(cli("search", "--resume", str(run), "--quiet"), "episodes.csv line 3", "checksum")


# ------------------------------------------------------------- concurrent writers
def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([*SEARCH, "--agent", "random-search", "--episodes", "100000", "--run-dir", str(run)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_rows(run, 2, first)
        assert_one_line_error(cli(*SEARCH[3:], "--agent", "random-search", "--episodes", "5", "--run-dir", str(run)),
                              f"in use by process {first.pid}")
        assert_one_line_error(cli("search", "--resume", str(run), "--quiet"), f"process {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 130
    numbers = episodes(run)
    assert numbers == list(range(len(numbers))), "one writer: no duplicate or interleaved episode ids"


# -------------------------------------------------------------- kill -9, SIGINT
def test_kill_9_loses_no_episode_and_the_agent_resumes_from_its_checkpoint(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen([*SEARCH, "--agent", "ddpg", "--episodes", "40", "--checkpoint-every", "5", "--run-dir", str(run),
                                "--agent-arg", "warmup_episodes=10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(run, 17, process)
    process.kill()
    process.wait()
    recorded = len(episodes(run))
    resumed = cli("search", "--resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert episodes(run) == list(range(40)), "no episode lost, none duplicated"
    assert json.loads((run / "checkpoint" / "checkpoint.json").read_text())["episodes"] == 40
    note = re.search(r"checkpoint after episode (\d+)", resumed.stderr)
    checkpointed = int(note.group(1)) if note else recorded
    assert checkpointed >= 15 and checkpointed % 5 == 0
    agent_state = json.loads((run / "checkpoint" / "agent.json").read_text())
    assert agent_state["episode_num"] == checkpointed + (40 - recorded), "DDPG continued from its checkpoint, not from scratch"


def test_ctrl_c_stops_after_the_episode_exits_130_and_resumes_exactly_like_an_uninterrupted_run(tmp_path):
    arguments = ["--agent", "ddpg", "--episodes", "24", "--agent-arg", "warmup_episodes=6", "--seed", "3"]
    whole = tmp_path / "whole"
    assert cli(*SEARCH[3:], *arguments, "--run-dir", str(whole)).returncode == 0
    run = tmp_path / "run"
    process = subprocess.Popen([*SEARCH, *arguments, "--run-dir", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(run, 10, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and f"prune-gymsearch--resume{run}" in "".join(out.split())
    interrupted_at = len(episodes(run))
    assert 10 <= interrupted_at < 24
    assert json.loads((run / "checkpoint" / "checkpoint.json").read_text())["episodes"] == interrupted_at
    assert cli("search", "--resume", str(run), "--quiet").returncode == 0
    uninterrupted, resumed = RunFolder(whole).episodes()[0], RunFolder(run).episodes()[0]
    assert [(r.episode_return, r.rates, r.kept_channels) for r in resumed] == \
        [(r.episode_return, r.rates, r.kept_channels) for r in uninterrupted]


# ------------------------------------------------------------------- full disk
@pytest.mark.parametrize("agent, total, file_limit_kb", [("random-search", 300, 24), ("ddpg", 30, 200)])
def test_a_full_disk_fails_in_one_line_keeps_every_finished_episode_and_resumes(tmp_path, agent, total, file_limit_kb):
    """``ulimit -f``: the episodes.csv append (random search) or the agent checkpoint (DDPG's replay buffer) hits the limit."""
    prune_gym.get_task("lenet5-digits").load_model()  # the checkpoint exists: the limit hits the run folder
    run = tmp_path / "run"
    failed = cli(*SEARCH[3:], "--agent", agent, "--episodes", str(total), "--run-dir", str(run), limit=f"-f {file_limit_kb}")
    assert_one_line_error(failed, "resume")
    kept = episodes(run)
    assert kept == list(range(len(kept))) and 0 < len(kept) < total, "every line of episodes.csv is whole"
    assert not list(run.glob(".checkpoint-*")) and not list(run.glob(".*.partial"))
    resumed = cli("search", "--resume", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert episodes(run) == list(range(total))


# ------------------------------------------------------------------------ fork
def test_async_vector_env_works_with_the_default_fork_context():
    code = ("import gymnasium as gym, prune_gym; envs = gym.make_vec('prune_gym:LayerRate-v0', num_envs=2, "
            "vectorization_mode='async', reward_samples=50); envs.reset(seed=0); "
            "[envs.step(envs.action_space.sample()) for _ in range(4)]; envs.close(); print('done')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert result.stdout.strip() == "done", result.stderr


# ------------------------------------------------------------- bad data at the door
def lenet_data(n_train=600, n_test=100, **changes):
    generator = torch.Generator().manual_seed(0)
    data = {"x_train": torch.randn(n_train, 1, 28, 28, generator=generator),
            "y_train": torch.randint(0, 10, (n_train,), generator=generator),
            "x_test": torch.randn(n_test, 1, 28, 28, generator=generator),
            "y_test": torch.randint(0, 10, (n_test,), generator=generator)}
    data.update(changes)
    return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


@pytest.mark.parametrize("changes, words", [
    ({"y_train": torch.randint(0, 10, (500,))}, ["600 train images but 500 labels"]),
    ({"y_train": torch.rand(600) * 10}, ["labels are torch.float32", "integer"]),
    ({"x_train": torch.full((600, 1, 28, 28), float("nan"))}, ["NaN"]),
    ({"y_test": -torch.ones(100, dtype=torch.long)}, ["labels include -1"]),
    ({"x_test": torch.randn(100, 28, 28)}, ["test images have shape (100, 28, 28)"]),
])
def test_register_task_refuses_bad_data_before_any_training(changes, words):
    with pytest.raises(ValueError) as error:
        prune_gym.register_task("test-bad-data", "lenet5", lenet_data(**changes), reward_size=100, overwrite=True)
    for word in words:
        assert word in str(error.value)


def test_register_task_refuses_unprunable_models_before_any_training():
    grouped = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 8, 3, groups=4), nn.Flatten(), nn.Linear(8 * 24 * 24, 10))
    with pytest.raises(ValueError, match="grouped conv"):
        prune_gym.register_task("test-grouped", grouped, lenet_data(), reward_size=100, overwrite=True)
    broken = prune_gym.build_model("lenet5")
    with torch.no_grad():
        broken.features[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        prune_gym.register_task("test-nan-model", broken, lenet_data(), reward_size=100, overwrite=True)


def test_checkpoints_with_non_finite_weights_or_foreign_metadata_are_refused(tmp_path):
    from prune_gym.errors import CheckpointError
    from prune_gym.tasks.training import load_checkpoint, save_checkpoint

    model = prune_gym.build_model("lenet5")
    with torch.no_grad():
        model.features[0].bias.fill_(float("inf"))
    save_checkpoint(tmp_path / "nan.pt", model, {"task": "lenet5-digits"})
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(tmp_path / "nan.pt", prune_gym.build_model("lenet5"), "lenet5-digits")
    torch.save({"state_dict": {}, "metadata": ["not", "a", "dict"]}, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a prune_gym checkpoint"):
        load_checkpoint(tmp_path / "list.pt", prune_gym.build_model("lenet5"), "lenet5-digits")


def tiny_mnist_gz(folder: Path, train: int = 12, test: int = 4) -> list[Path]:
    """MNIST's four .gz files in torchvision's idx format, with ``train`` and ``test`` random images."""
    import gzip

    from torchvision.datasets import MNIST

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for url, _ in MNIST.resources:  # train images, train labels, test images, test labels
        count = train if "train" in url else test
        images = "images" in url
        header = np.array([0x803 if images else 0x801, count, *([28, 28] if images else [])], dtype=">i4").tobytes()
        body = rng.integers(0, 256 if images else 10, size=(count, 28, 28) if images else count, dtype=np.uint8).tobytes()
        paths.append(folder / Path(url).name)
        paths[-1].write_bytes(gzip.compress(header + body))
    return paths


@pytest.mark.data_absent
def test_a_read_only_data_root_is_never_written(tmp_path, monkeypatch):
    """MNIST's .gz files (the shared data's, else tiny ones written here) are unpacked into the cache, never beside them."""
    shared = Path(os.environ.get("PRUNE_GYM_DATA") or tmp_path / "no-data") / "MNIST" / "raw"
    sources = sorted(shared.glob("*.gz")) or tiny_mnist_gz(tmp_path / "tiny")
    train_images = 60000 if sources[0].parent == shared else 12
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for source in sources:
        (root / "MNIST" / "raw" / source.name).symlink_to(source)
    before = sorted(p.name for p in (root / "MNIST" / "raw").iterdir())
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path / "cache"))
    from prune_gym.tasks.data import get_dataset_loader

    arrays = get_dataset_loader("mnist")(root, False)
    assert arrays.x_train.shape == (train_images, 1, 28, 28)
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == before, "nothing unpacked into the data root"
    assert list((tmp_path / "cache" / "data" / "MNIST" / "raw").iterdir())


# ---------------------------------------------------------------- CLI one-liners
@pytest.mark.parametrize("arguments, words", [
    (["--device", "cuda"], ["device", "cuda"]),
    (["--device", "banana"], ["device", "banana"]),
    (["--env-arg", "bogus=1"], ["bogus"]),
    (["--agent-arg", "bogus=1"], ["bogus"]),
    (["--agent", "sb3:SAC", "--env", "FilterSelect-v0", "--env-arg", "action_type=binary"], ["sb3:SAC", "cannot run on"]),
    (["--macs-budget", "1.5"], ["macs_budget", "1.5"]),
    (["--env-arg", "enforce_budget=\"no\""], ["enforce_budget", "True or False"]),
])
def test_bad_search_arguments_are_one_line_and_leave_no_folder(tmp_path, arguments, words):
    run = tmp_path / "run"
    assert_one_line_error(cli(*SEARCH[3:], "--agent", "uniform", "--episodes", "1", "--run-dir", str(run), *arguments), *words)
    assert not run.exists()


def test_bad_folders_and_files_are_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(cli(*SEARCH[3:], "--agent", "uniform", "--run-dir", str(tmp_path / "file" / "run")), "run folder")
    run = tmp_path / "run"
    assert cli(*SEARCH[3:], "--agent", "random-search", "--episodes", "3", "--run-dir", str(run)).returncode == 0
    assert_one_line_error(cli("export", str(run), "--output", "/nonexistent/dir/x.pt"), "/nonexistent/dir")
    assert_one_line_error(cli("recover", str(run), "--epochs", "0"), "epochs=0")
    assert_one_line_error(cli("recover", str(run), "--epochs", "-2"), "epochs=-2")

    np.savez(run / "best_mask.npz", np.ones(3, bool))
    assert_one_line_error(cli("export", str(run)), "best_mask.npz does not fit")
    (run / "best_mask.npz").write_bytes(b"garbage")
    assert_one_line_error(cli("export", str(run)), "best_mask.npz is not a keep-mask file")

    (run / "checkpoint" / "agent").write_bytes(b"\x80\x04 not json")
    assert cli("search", "--resume", str(run), "--quiet").returncode == 0, "a finished run needs no checkpoint to be returned"
    assert_one_line_error(cli("search", "--resume", str(run), "--episodes", "5", "--quiet"), "cannot restore the agent checkpoint")

    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "episodes": "many"}))
    assert_one_line_error(cli("search", "--resume", str(run), "--quiet"), "episodes", "many")
    (run / "config.json").write_text("{not json")
    assert_one_line_error(cli("search", "--resume", str(run), "--quiet"), "config.json")


# ------------------------------------------------------------- silently wrong
def make(**kwargs):
    return gym.make("prune_gym:LayerRate-v0", **{"task": "lenet5-digits", "reward_samples": 100, **kwargs})


@pytest.mark.parametrize("kwargs, words", [
    ({"enforce_budget": "no"}, ["enforce_budget", "True or False"]),
    ({"macs_budget": True}, ["macs_budget", "True"]),
    ({"reward_kwargs": {"bogus": 1}}, ["reward_kwargs", "bogus", "error"]),
    ({"reward": "try-and-learn", "reward_kwargs": {"b": 0.1}}, ["drop_allowance"]),
])
def test_wrong_values_fail_at_make(kwargs, words):
    with pytest.raises(ValueError) as error:
        make(**kwargs)
    for word in words:
        assert word in str(error.value)


def test_numpy_scalars_are_numbers():
    env = make(macs_budget=np.float32(0.5), reward_samples=np.int64(100), enforce_budget=np.bool_(True)).unwrapped
    assert env.macs_budget == 0.5 and len(env.evaluator.x) == 100


@pytest.mark.parametrize("value", [None, "1.0", float("nan"), True])
def test_a_reward_that_returns_no_finite_number_fails_and_changes_nothing(value):
    env = make(reward=lambda state: value if state.group_index == 1 else 0.0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite float"):
        env.step(np.array([0.5], np.float32))
    assert env.unwrapped.state.group_index == 0, "the failed step left the episode where it was"
