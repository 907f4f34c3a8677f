"""Datasets, splits, task registry, pretraining, checkpoints and the `prune-gym` CLI."""

import os

import pytest
import torch
from run_cli import assert_one_line_error, cli
from torch import nn

import prune_gym
from prune_gym.cli import main
from prune_gym.errors import CheckpointError, CheckpointMissingError, DatasetUnavailableError
from prune_gym.tasks import evaluate, get_dataset_loader, get_model, load_dataset, make_splits

SHARED = os.environ.get("PRUNE_GYM_DATA")
needs_shared = pytest.mark.skipif(not SHARED or not os.path.isdir(SHARED), reason="../shared/data is not present")


def assert_disjoint(a: torch.Tensor, b: torch.Tensor) -> None:
    rows_a = {bytes(row.numpy().tobytes()) for row in a.flatten(1)}
    assert not any(bytes(row.numpy().tobytes()) in rows_a for row in b.flatten(1))


def test_digits_splits_are_disjoint_fixed_and_sized():
    task = prune_gym.get_task("lenet5-digits")
    splits = task.splits()
    assert (len(splits.train_y), len(splits.reward_y), len(splits.test_y)) == (1137, 300, 360)
    assert splits.train_x.shape[1:] == (1, 28, 28) and splits.train_x.dtype == torch.float32
    assert_disjoint(splits.reward_x, splits.train_x)
    again = make_splits(task.arrays(), 300, seed=0)
    assert torch.equal(again.reward_y, splits.reward_y)
    other = make_splits(task.arrays(), 300, seed=1)
    assert not torch.equal(other.reward_x, splits.reward_x)


@pytest.mark.data_absent
@needs_shared
def test_mnist_and_cifar10_subset_load_from_shared_data():
    mnist = load_dataset("mnist")
    assert (len(mnist.y_train), len(mnist.y_test)) == (60000, 10000) and mnist.input_shape == (1, 28, 28)
    assert abs(float(mnist.x_train[:5000].mean())) < 0.1, "normalised with MNIST's statistics"
    splits = prune_gym.get_task("lenet5-mnist").splits()
    assert (len(splits.train_y), len(splits.reward_y)) == (55000, 5000)
    cifar = load_dataset("cifar10-subset")
    assert (len(cifar.y_train), len(cifar.y_test), cifar.num_classes) == (8068, 1017, 10)
    assert cifar.input_shape == (3, 32, 32)


def test_missing_dataset_offline_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("mnist", root=tmp_path, download=False)
    assert "mnist" in str(error.value) and str(tmp_path) in str(error.value)
    with pytest.raises(DatasetUnavailableError, match="cifar10-subset.npz"):
        load_dataset("cifar10-subset", root=tmp_path)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="lenet5-digits"):
        prune_gym.get_task("lenet5-imagenet")
    with pytest.raises(ValueError, match="cifar10-subset"):
        load_dataset("imagenet")
    assert {"lenet5-digits", "lenet5-mnist", "lenet5-fashion-mnist", "resnet20-cifar10", "resnet56-cifar10",
            "vgg16-cifar10", "resnet20-cifar10-subset", "vgg16-cifar10-subset"} <= set(prune_gym.list_tasks())
    with pytest.raises(ValueError, match="resnet20"):
        get_model("resnet21")
    with pytest.raises(ValueError, match="cifar10-subset"):
        get_dataset_loader("imagenet")


def test_registered_models_and_datasets_are_read_through_public_accessors(tmp_path):
    spec = get_model("lenet5")
    assert spec.name == "lenet5" and spec.input_shape == (1, 28, 28)
    assert isinstance(spec.factory(num_classes=10, in_channels=1), nn.Module)
    arrays = get_dataset_loader("digits")(tmp_path, False)
    assert arrays.input_shape == (1, 28, 28) and len(arrays.y_train) == len(load_dataset("digits").y_train)


def test_lenet5_digits_pretrains_to_97_percent_and_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path))
    task = prune_gym.get_task("lenet5-digits")
    result = task.pretrain(progress=False)
    assert result.test_score >= 0.97
    model = task.load_model()
    splits = task.splits()
    assert evaluate(model, splits.test_x, splits.test_y) == pytest.approx(result.test_score)
    assert not list(tmp_path.rglob("*.partial")), "checkpoints are written atomically"


def test_corrupted_or_mismatching_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path))
    task = prune_gym.get_task("lenet5-digits")
    path = task.checkpoint_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as error:
        task.load_model()
    assert str(path) in str(error.value) and "--retrain" in str(error.value)
    assert path.read_bytes() == b"not a checkpoint", "a bad checkpoint is never silently overwritten"
    other = prune_gym.register_task("test-wide-lenet", nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(2704, 10)),
                                    "digits", reward_size=300, overwrite=True)
    from prune_gym.tasks.training import save_checkpoint
    save_checkpoint(other.checkpoint_path(), task.build_model(), {"task": other.name})
    with pytest.raises(CheckpointError, match="does not match"):
        other.load_model()
    assert main(["pretrain", "lenet5-digits", "--quiet"]) == 2


def test_register_task_with_user_module_and_tensors(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path))
    digits = load_dataset("digits")
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10))
    task = prune_gym.register_task("test-user-task", model, (digits.x_train, digits.y_train, digits.x_test, digits.y_test),
                                   reward_size=200, epochs=2, optimizer="adam", lr=1e-2, overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        prune_gym.register_task("test-user-task", model, "digits")
    with pytest.raises(CheckpointMissingError, match="prune-gym pretrain test-user-task"):
        task.load_model()
    task.pretrain(progress=False)
    assert task.load_model() is not model
    env = prune_gym.LayerRateEnv(task=task, reward_samples=100)
    assert env.network.num_groups == 1
    dataset = torch.utils.data.TensorDataset(digits.x_test, digits.y_test)
    pair = prune_gym.register_task("test-pair-task", "lenet5", (dataset, dataset), reward_size=50, overwrite=True)
    assert pair.splits().train_x.shape == (310, 1, 28, 28)


def test_cli_pretrain_and_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path))
    assert main(["pretrain", "lenet5-digits", "--quiet", "--epochs", "3"]) == 0
    assert "checkpoint" in capsys.readouterr().out
    assert main(["pretrain", "lenet5-digits", "--quiet"]) == 0
    assert "already trained" in capsys.readouterr().out
    assert main(["list", "tasks"]) == 0
    assert "resnet56-cifar10" in capsys.readouterr().out
    assert main(["list", "rewards"]) == 0
    assert "try-and-learn" in capsys.readouterr().out
    assert main(["pretrain", "no-such-task"]) == 2
    assert "lenet5-digits" in capsys.readouterr().err


# ------------------------------------------- bad task names and inputs are one line
@pytest.mark.parametrize("name", ["../../escape", "a/b", "/tmp/x", ".hidden", "..", "", "two words", "x:y", "a" * 201])
def test_task_names_that_are_not_plain_file_names_are_refused(tmp_path, monkeypatch, name):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="invalid task name"):
        prune_gym.register_task(name, "lenet5", "digits", reward_size=300, overwrite=True)
    with pytest.raises(ValueError, match="invalid task name"):
        prune_gym.Task(name, "lenet5", "digits", 300)
    assert name not in prune_gym.list_tasks()


def test_a_task_name_cannot_put_its_checkpoint_outside_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (tmp_path / "escaping_task.py").write_text("import prune_gym\nTASK = prune_gym.Task('../../escape', 'lenet5', 'digits', 300)\n")
    assert_one_line_error(cli("pretrain", "escaping_task:TASK", "--epochs", "1", "--quiet"), "invalid task name", "../../escape")
    assert_one_line_error(cli("pretrain", "../../escape", "--epochs", "1", "--quiet"), "invalid task name")
    (tmp_path / "file.pt").write_bytes(b"x")
    assert_one_line_error(cli("checkpoint", "import", "../../escape", str(tmp_path / "file.pt")), "invalid task name")
    assert not list(tmp_path.rglob("escape*")), "nothing is written outside the cache"
    task = prune_gym.register_task("test-plain_name.v2", "lenet5", "digits", reward_size=300, overwrite=True)
    assert task.checkpoint_path() == tmp_path / "cache" / "checkpoints" / "test-plain_name.v2.pt"


def images(n: int, channels: int = 1, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(n)
    return torch.randn(n, channels, 28, 28, generator=generator), torch.arange(n) % classes


def small_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


@pytest.mark.parametrize("data, options, words", [
    ((torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long), *images(20)), {}, ["train set is empty"]),
    ((*images(200, classes=12), *images(20, classes=12)), {}, ["labels go up to 11", "outputs 10 classes", "12 outputs"]),
    ((*images(200, channels=3), *images(20, channels=3)), {}, ["model fails on the data's images of shape (N, 3, 28, 28)",
                                                             "channels"]),
    ((*images(200), *images(20)), {"epochs": -1}, ["invalid epochs=-1", "positive"]),
    ((*images(200), *images(20)), {"epochs": 0}, ["invalid epochs=0"]),
    ((*images(200), *images(20)), {"lr": float("nan")}, ["invalid lr=nan", "finite"]),
    ((*images(200), *images(20)), {"batch_size": 0}, ["invalid batch_size=0"]),
    ((*images(200), *images(20)), {"optimizer": "rmsprop"}, ["invalid optimizer='rmsprop'"]),
    ((*images(200), *images(20)), {"epoch": 3}, ["unknown training option(s) ['epoch']", "epochs"]),
])
def test_register_task_refuses_bad_inputs_in_one_line_naming_the_task(data, options, words):
    with pytest.raises(ValueError) as error:
        prune_gym.register_task("test-bad-input", small_cnn, data, reward_size=50, overwrite=True, **options)
    message = str(error.value)
    assert "\n" not in message and "'test-bad-input'" in message, message
    for word in words:
        assert word in message, message
    assert "test-bad-input" not in prune_gym.list_tasks(), "nothing is registered"


USER_TASKS = '''
import torch
from torch import nn

import prune_gym
from prune_gym.tasks import DatasetArrays


def model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))


def arrays(channels=1, classes=10, train=200):
    x = torch.randn(train + 20, channels, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(train + 20) % classes
    return DatasetArrays(x[:train], y[:train], x[train:], y[train:])


prune_gym.register_dataset("user-empty", lambda root, download: arrays(train=0))
CHANNELS = prune_gym.register_task("user-channels", model, lambda: arrays(channels=3), reward_size=50)
CLASSES = prune_gym.register_task("user-classes", model, lambda: arrays(classes=12), reward_size=50)
EMPTY = prune_gym.register_task("user-empty", model, lambda: arrays(train=0), reward_size=50)
EMPTY_DATASET = prune_gym.register_task("user-empty-dataset", model, "user-empty", reward_size=50)
EMPTY_PAIR = prune_gym.register_task("user-empty-pair", model, ([], []), reward_size=50)
'''


@pytest.mark.parametrize("attribute, words", [
    ("CHANNELS", ["'user-channels'", "(N, 3, 28, 28)"]),
    ("CLASSES", ["'user-classes'", "labels go up to 11", "outputs 10 classes"]),
    ("EMPTY", ["'user-empty'", "train set is empty"]),
    ("EMPTY_DATASET", ["dataset 'user-empty'", "train set is empty"]),
    ("EMPTY_PAIR", ["'user-empty-pair'", "train dataset is empty"]),
])
def test_data_loaded_on_first_use_is_checked_before_pretraining_writes_anything(tmp_path, monkeypatch, attribute, words):
    """Data given as a loader or a dataset name is known at first load: `prune-gym pretrain` refuses it in one line."""
    monkeypatch.setenv("PRUNE_GYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (tmp_path / "user_tasks.py").write_text(USER_TASKS)
    assert_one_line_error(cli("pretrain", f"user_tasks:{attribute}", "--epochs", "1", "--quiet"), *words)
    assert not (tmp_path / "cache" / "checkpoints").exists() or not any((tmp_path / "cache" / "checkpoints").iterdir())


def test_training_options_given_at_registration_are_checked_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (tmp_path / "user_epochs.py").write_text("import prune_gym\n"
                                             "TASK = prune_gym.register_task('user-epochs', 'lenet5', 'digits', epochs=-1)\n")
    assert_one_line_error(cli("pretrain", "user_epochs:TASK", "--quiet"), "'user-epochs'", "invalid epochs=-1")


def test_two_processes_wanting_the_same_model_pretrain_it_once(tmp_path):
    """Two searches started at once on an empty cache: one trains, the other waits for its checkpoint (a race would
    leave a checkpoint and a SHA-256 record of two different trainings, a 'corrupted' checkpoint ever after)."""
    import os
    import subprocess
    import sys

    code = ("import prune_gym; from prune_gym.tasks.training import recorded_sha256; from prune_gym.storage import file_sha256\n"
            "task = prune_gym.get_task('lenet5-digits'); pretrain = type(task).pretrain\n"
            "type(task).pretrain = lambda *args, **kwargs: (print('trained'), pretrain(*args, **kwargs))[1]\n"
            "task.load_model(progress=False)\n"
            "print(file_sha256(task.checkpoint_path()) == recorded_sha256(task.checkpoint_path()))")
    environment = {**os.environ, "PRUNE_GYM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-c", code], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err[-2000:] for _, err in outputs]
    assert all(out.split()[-1] == "True" for out, _ in outputs), outputs
    assert sum(out.split().count("trained") for out, _ in outputs) == 1, outputs
    assert sorted(path.name for path in (tmp_path / "cache" / "checkpoints").iterdir() if not path.name.endswith(".lock")) \
        == ["lenet5-digits.pt", "lenet5-digits.pt.sha256"]
