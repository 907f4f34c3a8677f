"""Progress suits where it goes: a live bar on a terminal; in a log or a pipe, whole lines and few of them."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from run_cli import cli

import prune_gym
from prune_gym import progress
from prune_gym.progress import progress_bar

ROOT = Path(__file__).resolve().parents[1]


def on_a_terminal(*arguments: str) -> tuple[int, str]:
    """``prune-gym ARGUMENTS`` with stdout and stderr on a 100-column pseudo-terminal; its exit code and all it wrote."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "prune_gym.cli", *arguments], stdin=subprocess.DEVNULL, stdout=terminal,
                               stderr=terminal, cwd=ROOT)
    os.close(terminal)
    written = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        written += chunk
    os.close(controller)
    return process.wait(timeout=600), written.decode(errors="replace")


def test_a_search_shows_a_live_bar_on_a_terminal_and_a_few_whole_lines_in_a_log(tmp_path):
    prune_gym.get_task("lenet5-digits").load_model()  # pretrains into the test cache if needed: only the search's bar below
    arguments = ["search", "--agent", "uniform", "--episodes", "3", "--reward-samples", "100"]
    started = time.perf_counter()
    logged = cli(*arguments, "--run-dir", str(tmp_path / "logged"))  # stdout and stderr are pipes, as under nohup or CI
    seconds = time.perf_counter() - started
    assert logged.returncode == 0, logged.stderr
    assert "\r" not in logged.stderr + logged.stdout, "no carriage-return bar redraws in a log"
    lines = [line for line in logged.stderr.splitlines() if line.startswith("search:")]
    assert " 0/3 " in lines[0] and " 3/3 " in lines[-1] and "best=" in lines[-1]
    assert len(lines) <= 2 + seconds / progress.LOG_INTERVAL_S, lines

    code, shown = on_a_terminal(*arguments, "--run-dir", str(tmp_path / "terminal"))
    assert code == 0, shown
    redraws = [part for part in shown.split("\r") if part.startswith("search:")]
    assert len(redraws) >= 3 and " 3/3 " in redraws[-1], "a live bar, redrawn in place as the episodes finish"


def test_in_a_log_a_bar_writes_a_line_when_it_starts_at_most_every_interval_and_when_it_ends(capsys, monkeypatch):
    bar = progress_bar(100, "demo", "step")
    for step in range(100):
        bar.set_postfix(step=step)
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.split("\n")
    assert len(lines) == 3 and lines[2] == "", lines
    assert lines[0].startswith("demo:   0%|") and " 0/100 " in lines[0]
    assert lines[1].startswith("demo: 100%|") and " 100/100 " in lines[1] and "step=99" in lines[1]

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.5)
    bar = progress_bar(3, "slow", "step")
    for _ in range(3):
        time.sleep(0.6)
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("|")[2].split()[0] for line in lines] == ["0/3", "1/3", "2/3", "3/3"], "one line per interval, none twice"

    quiet = progress_bar(3, "quiet", "step", enabled=False)
    quiet.update(3)
    quiet.close()
    assert capsys.readouterr().err == ""
