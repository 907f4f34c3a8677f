"""What the tests share to run ``prune-gym`` as a user does: a real subprocess, and the one-line error it must give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli(*arguments: str, limit: str = "", cwd: Path | None = None, env: dict[str, str] | None = None,
        pythonpath: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``prune-gym ARGUMENTS`` in a fresh interpreter (this process's environment, or ``env``), with ``ulimit LIMIT``
    first and ``pythonpath`` first on ``PYTHONPATH`` when given."""
    command = [sys.executable, "-m", "prune_gym.cli", *arguments]
    if limit:
        command = ["bash", "-c", f"ulimit {limit}; exec \"$@\"", "bash", *command]
    environment = dict(os.environ if env is None else env)
    if pythonpath is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environment.get("PYTHONPATH")]))
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, no traceback, one line on stderr starting with ``prune-gym`` and holding every one of ``words``."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("prune-gym"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
