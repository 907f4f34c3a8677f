"""The process-wide random generators an RL library draws from, as JSON (for exact resumes)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def global_random_state() -> dict[str, Any]:
    """Python's, NumPy's legacy global and torch's CPU generator states (JSON-serialisable)."""
    numpy_state = np.random.get_state(legacy=False)
    python_state = random.getstate()
    return {
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": {**numpy_state, "state": {"key": numpy_state["state"]["key"].tolist(), "pos": int(numpy_state["state"]["pos"])}},
        "torch": torch.get_rng_state().tolist(),
    }


def set_global_random_state(state: dict[str, Any]) -> None:
    """Restore :func:`global_random_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": np.array(numpy_state["state"]["key"], dtype=np.uint32), "pos": numpy_state["state"]["pos"]}
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
