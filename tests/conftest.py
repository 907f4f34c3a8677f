"""Test environment: real data from ../shared/data when present, every side file in a temp dir.

``PRUNE_GYM_NO_SHARED=1`` is newcomer mode, a fresh clone's view: ../shared is ignored, ``$PRUNE_GYM_DATA``
unset and the cache empty, so only the data prune_gym ships is there. ``.ci/run`` runs the ``data_absent``
tests (those that behave differently without the data) again in this mode.
"""

import os
import tempfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NEWCOMER = os.environ.get("PRUNE_GYM_NO_SHARED") == "1"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="prune_gym-tests-"))

if NEWCOMER:
    os.environ.pop("PRUNE_GYM_DATA", None)
    os.environ["PRUNE_GYM_CACHE"] = str(_SESSION_DIR / "cache")  # the data root falls back to the cache: it starts empty
elif SHARED_DATA.is_dir():
    os.environ.setdefault("PRUNE_GYM_DATA", str(SHARED_DATA))
for variable, folder in [("PRUNE_GYM_CACHE", "cache"), ("MPLCONFIGDIR", "matplotlib"), ("WANDB_DIR", "wandb"),
                         ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_CONFIG_DIR", "wandb-config"),
                         ("WANDB_DATA_DIR", "wandb-data"), ("SB3_LOGDIR", "sb3")]:
    os.environ.setdefault(variable, str(_SESSION_DIR / folder))
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one torch thread per worker (and its subprocesses) per core
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


DATA_FIXTURES = ("resnet20_subset_checkpoint", "fcn_scenes_checkpoint", "images")  # images: test_pruning's real images


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a fixture that skips without its data are ``data_absent`` tests (others are marked where they are defined)."""
    for item in items:
        if set(DATA_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data_absent)


def _task_checkpoint(name: str, epochs: int):
    """The task's cached checkpoint, else one trained for ``epochs`` real epochs; skips when its dataset is unavailable."""
    import prune_gym
    from prune_gym.errors import DatasetUnavailableError

    task = prune_gym.get_task(name)
    try:
        task.splits()
    except DatasetUnavailableError as error:
        pytest.skip(str(error))
    if not task.checkpoint_path().exists():
        task.pretrain(epochs=epochs, progress=False)
    return task.checkpoint_path()


@pytest.fixture(scope="session")
def resnet20_subset_checkpoint():
    """A ResNet-20 checkpoint on the CIFAR-10 subset: the cached one, else one real training epoch (~30 s)."""
    return _task_checkpoint("resnet20-cifar10-subset", epochs=1)


@pytest.fixture(scope="session")
def fcn_scenes_checkpoint():
    """The segmentation task's checkpoint: the cached one, else two real training epochs on MNIST scenes (~30 s)."""
    return _task_checkpoint("fcn-mnist-scenes", epochs=2)
