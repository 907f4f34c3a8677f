"""What every agent shares: the base class and the random-state snapshot."""

from agents.common.base import BaseAgent
from agents.common.random_state import global_random_state, set_global_random_state

__all__ = ["BaseAgent", "global_random_state", "set_global_random_state"]
