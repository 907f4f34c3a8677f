"""Fault injection on real searches: crash, tear, fill the disk, race; resume; count what was lost.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fault_injection.py [--rounds 3] [--seed 0]

Every round runs each fault on a fresh ``prune-gym search`` (lenet5-digits, 100
reward images, DDPG with 8 warm-up episodes or random search), then resumes the
run until it completes, and checks the run folder: the episode ids must be
exactly 0..N-1 (an episode lost or duplicated counts), and no output of any
command may hold a Python traceback. Faults:

* ``kill -9`` at a random moment of the search,
* ``SIGINT`` (Ctrl-C) at a random moment,
* a torn last record: ``episodes.csv`` cut at a random byte after a finished run,
* a full disk: ``ulimit -f`` so that a write fails mid-search,
* a second writer started on the same run folder while the first runs.

Prints one row per fault and the totals; the goals are 0 episodes lost and 0
tracebacks.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prune_gym.runs import RunFolder  # noqa: E402

EPISODES = 40
SEARCH = [sys.executable, "-m", "prune_gym.cli", "search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet",
          "--episodes", str(EPISODES)]


class Outcome:
    """Counts of one fault over the rounds."""

    def __init__(self) -> None:
        self.injected = self.resumed = self.lost = self.duplicated = self.tracebacks = 0


def recorded(run: Path) -> list[int]:
    if not (run / "episodes.csv").exists():
        return []
    return [record.episode for record in RunFolder(run).episodes()[0]]


def start(run: Path, agent: str, *extra: str, limit: str = "") -> subprocess.Popen:
    command = [*SEARCH, "--agent", agent, "--run-dir", str(run), *extra]
    if agent == "ddpg":
        command += ["--agent-arg", "warmup_episodes=8", "--checkpoint-every", "3"]
    if limit:
        command = ["bash", "-c", f"ulimit {limit}; exec \"$@\"", "bash", *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, outcome: Outcome) -> None:
    out, err = process.communicate(timeout=900)
    outcome.tracebacks += ("Traceback" in out) + ("Traceback" in err)


def wait_for(run: Path, episodes: int, process: subprocess.Popen) -> None:
    while len(recorded(run)) < episodes and process.poll() is None:
        time.sleep(0.02)


def resume_until_done(run: Path, outcome: Outcome) -> None:
    for _ in range(3):
        if len(recorded(run)) >= EPISODES and (run / "summary.json").exists():
            break
        result = subprocess.run([*SEARCH[:3], "search", "--resume", str(run), "--quiet"], capture_output=True, text=True, timeout=900)
        outcome.resumed += 1
        outcome.tracebacks += ("Traceback" in result.stdout) + ("Traceback" in result.stderr)
    ids = recorded(run)
    outcome.lost += len(set(range(EPISODES)) - set(ids))
    outcome.duplicated += len(ids) - len(set(ids))


def inject(fault: str, run: Path, rng: random.Random, outcome: Outcome) -> None:
    outcome.injected += 1
    if fault == "kill -9" or fault == "SIGINT":
        process = start(run, "ddpg")
        wait_for(run, rng.randint(2, EPISODES - 2), process)
        process.send_signal(signal.SIGKILL if fault == "kill -9" else signal.SIGINT)
        finish(process, outcome)
    elif fault == "torn record":
        process = start(run, "random-search")
        finish(process, outcome)
        size = (run / "episodes.csv").stat().st_size
        os.truncate(run / "episodes.csv", size - rng.randint(1, 120))
    elif fault == "full disk":
        process = start(run, "ddpg", limit=f"-f {rng.randint(40, 400)}")
        finish(process, outcome)
    elif fault == "second writer":
        process = start(run, "random-search", "--episodes", "100000")
        wait_for(run, 2, process)
        second = subprocess.run([*SEARCH[:3], "search", "--resume", str(run), "--quiet"], capture_output=True, text=True, timeout=900)
        outcome.tracebacks += "Traceback" in second.stderr
        process.send_signal(signal.SIGINT)
        finish(process, outcome)
        ids = recorded(run)
        outcome.lost += len(set(range(len(ids))) - set(ids))
        outcome.duplicated += len(ids) - len(set(ids))
        return
    resume_until_done(run, outcome)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults = ["kill -9", "SIGINT", "torn record", "full disk", "second writer"]
    outcomes = {fault: Outcome() for fault in faults}
    with tempfile.TemporaryDirectory(prefix="prune_gym-faults-") as folder:
        os.environ.setdefault("PRUNE_GYM_CACHE", str(Path(folder) / "cache"))
        os.environ.setdefault("MPLCONFIGDIR", str(Path(folder) / "matplotlib"))
        subprocess.run([*SEARCH[:3], "pretrain", "lenet5-digits", "--quiet"], check=True, capture_output=True)
        for round_index in range(args.rounds):
            for fault in faults:
                inject(fault, Path(folder) / f"{fault.replace(' ', '-')}-{round_index}", rng, outcomes[fault])
    print(f"{'fault':<15}{'injected':>9}{'resumes':>9}{'lost':>6}{'duplicated':>11}{'tracebacks':>11}")
    for fault, o in outcomes.items():
        print(f"{fault:<15}{o.injected:>9}{o.resumed:>9}{o.lost:>6}{o.duplicated:>11}{o.tracebacks:>11}")
    total = Outcome()
    for o in outcomes.values():
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(o, name))
    print(f"{'total':<15}{total.injected:>9}{total.resumed:>9}{total.lost:>6}{total.duplicated:>11}{total.tracebacks:>11}")


if __name__ == "__main__":
    main()
