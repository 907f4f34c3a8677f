"""The ``prune-gym`` command: ``pretrain``, ``search``, ``benchmark``, ``tune``, ``fidelity``, ``leaderboard``,
``fine-tune``, ``export``, ``plot``, ``checkpoint`` and ``list``.

The parser lives in :mod:`~prune_gym.cli.parser`, the handlers in :mod:`~prune_gym.cli.commands`, the options they turn
into the API's objects in :mod:`~prune_gym.cli.options`, the printed tables in :mod:`~prune_gym.cli.tables` and the
listings with their cache in :mod:`~prune_gym.cli.listings`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from prune_gym.cli.parser import build_parser
from prune_gym.errors import PruneGymError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``prune-gym``: every expected failure prints one line on stderr and returns 2 (130 when interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (PruneGymError, ValueError, TypeError) as error:
        print(f"prune-gym {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk, a read-only folder, a missing file
        where = f" ({error.filename})" if error.filename else ""
        print(f"prune-gym {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"prune-gym {args.command}: interrupted", file=sys.stderr)
        return 130

