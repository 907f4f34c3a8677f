"""Cached checkpoints are verified: a changed bit is refused in one line, an untrained network is never cached, the
published (digest-less) checkpoints keep working, and a ``module:attribute`` task must be a Task. Real subprocesses."""

import hashlib
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from run_cli import assert_one_line_error, cli

import prune_gym
from prune_gym.errors import CheckpointError

REPOSITORY = Path(__file__).resolve().parents[1]
PUBLISHED = REPOSITORY / "leaderboard" / "checkpoints" / "resnet20-slim-fashion-mnist.pt"


def digest_path(checkpoint: Path) -> Path:
    """Where a checkpoint's SHA-256 is recorded: ``<file>.sha256``, in ``sha256sum`` format."""
    return checkpoint.with_name(checkpoint.name + ".sha256")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_exponent_bits(path: Path, count: int = 10) -> None:
    """Flip one exponent bit of ``count`` float32 weights in place, in the file's largest tensor (as bit rot would)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        largest = max(archive.infolist(), key=lambda info: info.file_size)
    assert largest.compress_type == zipfile.ZIP_STORED and largest.file_size >= 28 * count
    name_length, extra_length = struct.unpack("<HH", data[largest.header_offset + 26:largest.header_offset + 30])
    start = largest.header_offset + 30 + name_length + extra_length
    for k in range(count):
        data[start + 28 * k + 3] ^= 0x40  # the high byte of a little-endian float32: sign and exponent
    path.write_bytes(bytes(data))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache of this test's own (subprocesses inherit it)."""
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_checkpoint_with_flipped_bits_is_refused_in_one_line_naming_the_file(cache, tmp_path):
    assert cli("pretrain", "lenet5-digits", "--epochs", "2", "--quiet").returncode == 0
    checkpoint = cache / "checkpoints" / "lenet5-digits.pt"
    intact = checkpoint.read_bytes()
    flip_exponent_bits(checkpoint)
    torch.load(checkpoint, weights_only=True)  # the defect: torch itself loads the damaged file silently
    fix = "prune-gym pretrain lenet5-digits --retrain"
    run = tmp_path / "run"
    assert_one_line_error(cli("search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet", "--agent", "uniform",
                              "--episodes", "1", "--run-dir", str(run)), str(checkpoint), "modified or corrupted", fix)
    assert_one_line_error(cli("pretrain", "lenet5-digits", "--quiet"), str(checkpoint), fix)
    assert_one_line_error(cli("checkpoint", "sha256", "lenet5-digits"), str(checkpoint), fix)
    assert_one_line_error(cli("checkpoint", "export", "lenet5-digits", str(tmp_path / "copy.pt")), str(checkpoint))
    assert not (tmp_path / "copy.pt").exists(), "a damaged checkpoint is never exported"

    digest_path(checkpoint).unlink()  # the digest file lost too: the weights' digest inside the file still catches it
    assert_one_line_error(cli("pretrain", "lenet5-digits", "--quiet"), str(checkpoint), "weights do not match", fix)
    assert not digest_path(checkpoint).exists(), "a damaged checkpoint's digest is never recorded"

    checkpoint.write_bytes(intact)  # the intact file: its digest is recorded again on load (its metadata vouches for it)
    assert cli("pretrain", "lenet5-digits", "--quiet").returncode == 0
    assert digest_path(checkpoint).read_text() == f"{sha256(checkpoint)}  lenet5-digits.pt\n"
    assert cli("checkpoint", "sha256", "lenet5-digits").stdout.split()[0] == sha256(checkpoint)
    assert cli("pretrain", "lenet5-digits", "--retrain", "--epochs", "2", "--quiet").returncode == 0
    assert digest_path(checkpoint).read_text().split()[0] == sha256(checkpoint), "recorded as it is written"


def test_import_records_the_digest_and_refuses_a_damaged_copy(cache, tmp_path):
    task = prune_gym.get_task("lenet5-digits")
    task.pretrain(epochs=1, progress=False)
    exported, damaged = tmp_path / "exported.pt", tmp_path / "damaged.pt"
    assert cli("checkpoint", "export", "lenet5-digits", str(exported)).returncode == 0
    shutil.copy(exported, damaged)
    flip_exponent_bits(damaged)
    assert_one_line_error(cli("checkpoint", "import", "lenet5-digits", str(damaged)), str(damaged), "weights do not match",
                          "not imported")
    installed = task.checkpoint_path()
    assert installed.read_bytes() == exported.read_bytes(), "the intact installed checkpoint is kept"

    shutil.rmtree(cache / "checkpoints")
    result = cli("checkpoint", "import", "lenet5-digits", str(exported))
    assert result.returncode == 0 and sha256(exported) in result.stdout, result.stderr
    assert installed.read_bytes() == exported.read_bytes() and digest_path(installed).read_text().split()[0] == sha256(exported)
    task.load_model()


def test_a_checkpoint_written_by_an_older_version_gets_its_digest_on_first_load(cache):
    """Older checkpoints carry no digest: the first load records the file's (with a note), later changes are refused."""
    task = prune_gym.get_task("lenet5-digits")
    model = task.build_model()
    checkpoint = task.checkpoint_path()
    checkpoint.parent.mkdir(parents=True)
    torch.save({"format": 1, "state_dict": model.state_dict(), "metadata": {"task": task.name, "test_score": 0.5}}, checkpoint)
    before = checkpoint.read_bytes()

    first = cli("pretrain", "lenet5-digits", "--quiet")
    assert first.returncode == 0 and "already trained" in first.stdout, first.stderr
    assert "note:" in first.stderr and "no recorded SHA-256" in first.stderr and str(checkpoint) in first.stderr
    assert checkpoint.read_bytes() == before, "the file itself is never rewritten (its SHA-256 is what results record)"
    assert digest_path(checkpoint).read_text().split()[0] == sha256(checkpoint)
    second = cli("pretrain", "lenet5-digits", "--quiet")
    assert second.returncode == 0 and second.stderr == "", second.stderr

    flip_exponent_bits(checkpoint)
    with pytest.raises(CheckpointError, match="modified or corrupted"):
        task.load_model()


@pytest.mark.data_absent
def test_the_published_leaderboard_checkpoints_import_and_verify(cache):
    """leaderboard/checkpoints/*.pt predate digests: they import unchanged (same SHA-256), and are verified from then on."""
    task = "resnet20-slim-fashion-mnist"
    result = cli("checkpoint", "import", task, str(PUBLISHED))
    if result.returncode != 0 and "could not be downloaded" in result.stderr:
        pytest.skip("Fashion-MNIST is not available here")
    assert result.returncode == 0, result.stderr
    installed = cache / "checkpoints" / f"{task}.pt"
    assert sha256(installed) == sha256(PUBLISHED) and sha256(PUBLISHED) in result.stdout
    assert digest_path(installed).read_text().split()[0] == sha256(PUBLISHED)
    loaded = cli("pretrain", task, "--quiet")
    assert loaded.returncode == 0 and "already trained" in loaded.stdout and loaded.stderr == "", loaded.stderr
    flip_exponent_bits(installed)
    assert_one_line_error(cli("pretrain", task, "--quiet"), str(installed), "modified or corrupted")


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_pretrain_refuses_non_positive_epochs_before_writing_anything(cache, epochs):
    assert_one_line_error(cli("pretrain", "lenet5-digits", "--epochs", epochs, "--quiet"), f"epochs={epochs}", "positive")
    assert not (cache / "checkpoints").exists() or not any((cache / "checkpoints").iterdir())
    task = prune_gym.get_task("lenet5-digits")
    task.pretrain(epochs=1, progress=False)
    before = task.checkpoint_path().read_bytes(), digest_path(task.checkpoint_path()).read_bytes()
    assert_one_line_error(cli("pretrain", "lenet5-digits", "--retrain", "--epochs", epochs, "--quiet"), f"epochs={epochs}")
    assert (task.checkpoint_path().read_bytes(), digest_path(task.checkpoint_path()).read_bytes()) == before
    with pytest.raises(ValueError, match=f"epochs={epochs}"):
        task.pretrain(epochs=int(epochs), progress=False)


def test_a_module_attribute_task_that_is_not_a_task_is_one_line(cache, tmp_path):
    file = tmp_path / "file.pt"
    file.write_bytes(b"anything")
    assert_one_line_error(cli("checkpoint", "import", "os:getcwd", str(file)), "os:getcwd", "not a prune_gym Task")
    assert_one_line_error(cli("checkpoint", "sha256", "os:getcwd"), "os:getcwd", "not a prune_gym Task")
    assert_one_line_error(cli("pretrain", "os:getcwd"), "os:getcwd", "not a prune_gym Task")
    run = tmp_path / "run"
    assert_one_line_error(cli("search", "--task", "os:getcwd", "--agent", "uniform", "--episodes", "1", "--run-dir", str(run)),
                          "os:getcwd", "not a prune_gym Task")
    assert not run.exists()
    with pytest.raises(ValueError, match="not a prune_gym Task"):
        prune_gym.get_task("os:sep")
