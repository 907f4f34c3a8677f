"""``python -m prune_gym.cli``: the ``prune-gym`` command."""

import sys

from prune_gym.cli import main

sys.exit(main())
