"""The code passes its linter (ruff) and type checker (mypy), configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MYPY_CACHE_DIR": str(tmp_path / "mypy")})


def test_ruff_finds_nothing(tmp_path):
    result = run("ruff", "check", "--no-cache", ".", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing(tmp_path):
    result = run("mypy", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
