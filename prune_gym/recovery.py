"""What happens to a run's result after the search: export the best pruned network, fine-tune it once, measure it.

* :func:`pruned_network`: the physically pruned network of the run's best mask,
  from the weights the search scored it with (the pretrained checkpoint, or the
  weights an agent fine-tuned during the search, kept in ``checkpoint/weights.pt``).
* :func:`export_run` / :func:`load_pruned`: a state dict + mask file (tensors only).
* :func:`recover_run`: one-step recovery (ICTAI 2019): fine-tune once, report
  the test score (the task's metric), MACs, params and latency (``recovery.json``).
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prune_gym.errors import RunError
from prune_gym.pruning import PrunableNetwork, count_macs_params, recalibrate_batchnorm
from prune_gym.runs import RunFolder, check_trusted, load_mask, untrusted_code
from prune_gym.storage import write_atomic
from prune_gym.tasks import evaluate, get_task, recover
from prune_gym.validation import check_device, check_int


def pruned_network(run_dir: str | Path, device: str = "cpu", trust_code: bool = False) -> tuple[nn.Module, nn.Module, list[np.ndarray]]:
    """(original model, physically pruned model, keep-mask) of a run's best episode.

    With ``bn_recalibration`` in the run's environment, the pruned network's
    BatchNorm statistics are recalibrated as in the search. A task named as
    ``module:attribute`` outside prune_gym and the installed plug-ins is imported only with ``trust_code``.

    Raises:
        RunError: no finished episode, a mask that does not fit the task's network, or untrusted code.
    """
    folder = RunFolder(run_dir)
    config = folder.read_spec()
    check_trusted(untrusted_code(task=config.task), folder.config_path, trust_code)
    if not folder.best_mask_path.exists():
        raise RunError(f"{folder.path} has no best_mask.npz: no episode finished yet")
    task = get_task(config.task)
    model = task.load_model(device=device, progress=False)
    searched = model
    checkpoint = folder.current_checkpoint()
    if checkpoint is not None and (checkpoint / "weights.pt").exists():  # the agent fine-tuned the network during the search
        searched = copy.deepcopy(model)
        try:
            with warnings.catch_warnings():  # torch warns about a pickle's protocol before refusing it
                warnings.simplefilter("ignore")
                searched.load_state_dict(torch.load(checkpoint / "weights.pt", map_location=device, weights_only=True))
        except Exception as error:  # a damaged file, or a pickle that is more than weights: refused, never run
            detail = " ".join(str(error).split())[:200]
            raise RunError(f"{checkpoint / 'weights.pt'} is not the network's weights ({type(error).__name__}: {detail}); "
                           "restore it or delete the checkpoint folder") from None
    keep = load_mask(folder.best_mask_path)
    splits = task.splits(device)
    network = PrunableNetwork(searched, splits.reward_x[:1])
    try:
        network.check_mask(keep)
    except ValueError as error:
        raise RunError(f"{folder.best_mask_path} does not fit task {task.name!r}: {error}") from None
    pruned = network.export(keep)
    samples = config.env_kwargs.get("bn_recalibration") or 0
    if samples:  # the statistics the search scored it with
        recalibrate_batchnorm(pruned, splits.train_x[:samples])
    return model, pruned, keep


def _payload(task_name: str, keep: list[np.ndarray], model: nn.Module) -> dict[str, Any]:
    return {"task": task_name, "keep_mask": [torch.from_numpy(np.asarray(m)) for m in keep], "state_dict": model.state_dict()}


def export_run(run_dir: str | Path, output: str | Path | None = None, trust_code: bool = False) -> Path:
    """Write the best pruned network's state dict and mask (``weights_only`` loadable); returns the file."""
    folder = RunFolder(run_dir)
    output = Path(output) if output is not None else folder.path / "pruned.pt"
    if not output.parent.is_dir():
        raise RunError(f"cannot write {output}: folder {output.parent} does not exist")
    _, pruned, keep = pruned_network(folder.path, trust_code=trust_code)
    write_atomic(output, lambda handle: torch.save(_payload(folder.read_spec().task, keep, pruned), handle))
    return output


def load_pruned(path: str | Path, device: str = "cpu", trust_code: bool = False) -> nn.Module:
    """Rebuild a pruned network from a file written by :func:`export_run` or :func:`recover_run` (no code is unpickled;
    a task named as an untrusted ``module:attribute`` is imported only with ``trust_code``)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        task_name, masks, state = payload["task"], payload["keep_mask"], payload["state_dict"]
    except Exception as error:
        raise RunError(f"{path} is not a pruned network written by prune-gym export ({type(error).__name__})") from None
    check_trusted(untrusted_code(task=task_name), path, trust_code)
    task = get_task(task_name)
    model = task.build_model().to(device)
    network = PrunableNetwork(model.eval(), task.splits(device).reward_x[:1])
    pruned = network.export([m.numpy() for m in masks])
    pruned.load_state_dict(state)
    return pruned.eval()


def latency_ms(model: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Median wall time of one batched forward pass, in milliseconds."""
    timings = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


def recover_run(run_dir: str | Path, epochs: int = 5, device: str = "cpu", progress: bool = True,
                trust_code: bool = False) -> dict[str, Any]:
    """One-step recovery (ICTAI 2019): fine-tune the run's best pruned network once; writes ``recovery.json``.

    Reports the test score of the original, the pruned and the fine-tuned
    network, their MACs and params, and CPU/GPU latency of a 100-image batch.
    """
    epochs = check_int("epochs", epochs, 1, "a positive number of fine-tuning epochs")
    device = str(check_device("device", device))
    folder = RunFolder(run_dir)
    original, pruned, keep = pruned_network(folder.path, device, trust_code)
    task = get_task(folder.read_spec().task)
    splits = task.splits(device)
    report: dict[str, Any] = {"metric": task.metric, "test_score_original": evaluate(original, splits.test_x, splits.test_y, task.metric),
                              "test_score_pruned": evaluate(pruned, splits.test_x, splits.test_y, task.metric)}
    stats = recover(pruned, splits, task.training, epochs=epochs, progress=progress, metric=task.metric)
    macs, params = count_macs_params(original, task.input_shape)
    pruned_macs, pruned_params = count_macs_params(pruned, task.input_shape)
    batch = splits.test_x[:100]
    report.update(test_score_recovered=evaluate(pruned, splits.test_x, splits.test_y, task.metric), recovery_epochs=epochs,
                  recovery_seconds=round(stats.seconds, 1), macs_original=macs, macs_pruned=pruned_macs,
                  params_original=params, params_pruned=pruned_params,
                  latency_ms_original=round(latency_ms(original, batch), 2), latency_ms_pruned=round(latency_ms(pruned, batch), 2),
                  device=device)
    write_atomic(folder.path / "recovered.pt", lambda handle: torch.save(_payload(task.name, keep, pruned), handle))
    write_atomic(folder.path / "recovery.json", json.dumps(report, indent=2))
    return report
