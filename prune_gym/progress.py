"""The one place that decides how prune_gym shows the progress of a long job, from where its stderr goes.

* a terminal: tqdm's live bar;
* a Jupyter notebook: tqdm's notebook widget (``tqdm.autonotebook``);
* a log file or a pipe (``nohup``, CI, ``2> log``): the bar's text as a whole line, no carriage returns, when the job
  starts, at most every :data:`LOG_INTERVAL_S` seconds, and when it ends;
* ``enabled=False`` (``--quiet``): nothing.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

from tqdm import TqdmExperimentalWarning, tqdm

with warnings.catch_warnings():  # as tqdm.auto does: its notebook detection warns that it is experimental
    warnings.simplefilter("ignore", TqdmExperimentalWarning)
    from tqdm.autonotebook import tqdm as notebook_or_console

LOG_INTERVAL_S = 30.0
"""Seconds between two progress lines in a log or a pipe."""


class LogLines(tqdm):
    """tqdm for logs and pipes: the status as a whole line when the bar starts, at most every :data:`LOG_INTERVAL_S`
    seconds as it moves (``update`` or ``set_postfix``), and when it closes on a count no line showed yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._last_line_at, self._last_line_count = float("-inf"), -1
        super().__init__(*args, mininterval=LOG_INTERVAL_S, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg is not None or time.monotonic() - self._last_line_at < LOG_INTERVAL_S:
            return False  # a clear (nothing to erase in a log), or too soon after the last line
        self._write_line()
        return True

    def _write_line(self) -> None:
        self._last_line_at, self._last_line_count = time.monotonic(), self.n
        self.fp.write(f"{self}\n")
        self.fp.flush()

    def close(self) -> None:
        if not self.disable and self.n != self._last_line_count:
            self._write_line()  # the final count and time
        self.leave = False  # tqdm's own close would redraw the bar and end it with a carriage return
        super().close()


def progress_bar(total: int | None, description: str, unit: str, enabled: bool = True, initial: int = 0) -> tqdm:
    """A progress bar of ``total`` ``unit`` s (from ``initial``), suited to where stderr goes (see the module); a disabled
    one when not ``enabled``. Use it as tqdm: ``update()``, ``set_postfix(...)``, ``close()``."""
    options: dict[str, Any] = {"total": total, "initial": initial, "desc": description, "unit": unit}
    if not enabled:
        return tqdm(**options, disable=True)
    if notebook_or_console is not tqdm:  # a Jupyter kernel
        return notebook_or_console(**options)
    if hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return tqdm(**options, file=sys.stderr)
    return LogLines(**options, file=sys.stderr)
