"""tianshou 2.0 algorithms as prune_gym agents (``--agent tianshou:SAC``)."""

from .adapter import TianshouAgent

__all__ = ["TianshouAgent"]
