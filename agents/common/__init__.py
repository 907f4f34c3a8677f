"""What every agent shares: the base class and random generators as JSON."""

from .base import BaseAgent
from .random_state import (
    global_random_state,
    random_state_to_json,
    set_global_random_state,
    set_random_state_from_json,
)

__all__ = ["BaseAgent", "global_random_state", "random_state_to_json", "set_global_random_state", "set_random_state_from_json"]
