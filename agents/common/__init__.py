"""What every agent shares: the base class."""

from agents.common.base import BaseAgent

__all__ = ["BaseAgent"]
