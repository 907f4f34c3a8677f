"""Random generators as JSON, for exact resumes: NumPy ``RandomState`` objects and the process-wide generators."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def random_state_to_json(generator: np.random.RandomState) -> dict[str, Any]:
    """A legacy NumPy generator's complete MT19937 state (what cmaes, Optuna and ``np.random`` draw from), JSON-serialisable."""
    state = generator.get_state(legacy=False)
    return {**state, "state": {"key": state["state"]["key"].tolist(), "pos": int(state["state"]["pos"])}}


def set_random_state_from_json(generator: np.random.RandomState, state: dict[str, Any]) -> None:
    """Restore :func:`random_state_to_json` into ``generator``."""
    generator.set_state({**state, "state": {"key": np.array(state["state"]["key"], dtype=np.uint32), "pos": state["state"]["pos"]}})


def global_random_state() -> dict[str, Any]:
    """Python's, NumPy's global and torch's CPU generator states (JSON-serialisable)."""
    python_state = random.getstate()
    return {
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": random_state_to_json(np.random.mtrand._rand),
        "torch": torch.get_rng_state().tolist(),
    }


def set_global_random_state(state: dict[str, Any]) -> None:
    """Restore :func:`global_random_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    set_random_state_from_json(np.random.mtrand._rand, state["numpy"])
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
