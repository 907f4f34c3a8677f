"""tianshou 2.0 algorithms as prune_gym agents (``--agent tianshou:SAC``)."""

from agents.tianshou.adapter import TianshouAgent

__all__ = ["TianshouAgent"]
