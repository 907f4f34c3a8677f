"""NumPy's legacy ``RandomState`` (what cmaes and Optuna draw from) as JSON, for exact resumes."""

from __future__ import annotations

from typing import Any

import numpy as np


def random_state_to_json(generator: np.random.RandomState) -> dict[str, Any]:
    """The generator's complete MT19937 state, JSON-serialisable."""
    state = generator.get_state(legacy=False)
    return {**state, "state": {"key": state["state"]["key"].tolist(), "pos": int(state["state"]["pos"])}}


def set_random_state_from_json(generator: np.random.RandomState, state: dict[str, Any]) -> None:
    """Restore :func:`random_state_to_json` into ``generator``."""
    generator.set_state({**state, "state": {"key": np.array(state["state"]["key"], dtype=np.uint32), "pos": state["state"]["pos"]}})
