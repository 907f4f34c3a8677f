"""Every paper reproduction under experiments/ runs end to end in its quick mode, as a user runs it, and records its numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prune_gym.tasks.checkpoints import task_checkpoint_sha256

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["zhejiang2019", "ictai2019", "cisai2022", "vcip2019", "try_and_learn"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_quick_reproduction_prints_its_table_and_writes_results_with_the_command_and_machine(name, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, f"experiments/{name}.py", "--quick", "--seeds", "0", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Verdict" in done.stdout or "verdict" in done.stdout, done.stdout
    record = json.loads((tmp_path / f"{name}-quick.json").read_text())
    assert record["experiment"] == f"{name}-quick" and "--quick" in record["command"] and record["machine"]["cores"] >= 1
    assert record["checkpoints"] == {"lenet5-digits": task_checkpoint_sha256("lenet5-digits")} and len(record["load_average"]) == 3
    table = (tmp_path / f"{name}-quick.md").read_text()
    assert table.startswith("|") or "\n|" in table
    scores = [value for value in _numbers(record) if isinstance(value, float)]
    assert scores and all(value == value for value in scores), "every recorded number is finite"


def _numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield float(value)
