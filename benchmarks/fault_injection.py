"""Fault injection on real searches: crash, tear, fill the disk, race, flip bits, plant code; count what went wrong.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fault_injection.py [--rounds 3] [--seed 0]

Every round runs each fault on a fresh ``prune-gym search`` (lenet5-digits, 100
reward images, DDPG with 8 warm-up episodes or random search). Crash faults are
resumed until the run completes, and the run folder's episode ids must be
exactly 0..N-1 (an episode lost or duplicated counts). Every command has a time
limit (one past it is a hang), and no output may hold a Python traceback.
Faults:

* ``kill -9`` at a random moment of the search,
* ``SIGINT`` (Ctrl-C) at a random moment,
* a torn last record: ``episodes.csv`` cut at a random byte after a finished run,
* a full disk: ``ulimit -f`` so that a write fails mid-search,
* a second writer: the same command, then ``--resume``, on a folder another process writes (both refused, the holder's
  lock file intact, the holder's episodes whole),
* a foreign folder: another agent or budget into a run folder, ``--resume`` with other options, and a benchmark over
  another agent's ``seed-N`` folder (refused, nothing credited: an exit code 0 is silently wrong),
* a bit flip in the cached task checkpoint (a search must refuse it, not run on a broken network) and in a complete
  record of ``episodes.csv`` (refused, the file untouched),
* hostile names in a run folder's ``config.json`` (task, reward or environment as ``module:attribute`` of a module
  that leaves a marker when imported): resume, export and recovery must refuse without ``--trust-code`` (an import
  counts),
* hangs: ``episodes.csv`` replaced by a FIFO, ``--seeds 0-300000``, an unreachable ``--ray`` address.

Prints one row per fault and the totals; the goals are 0 in every column.
"""

from __future__ import annotations

import argparse
import json
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
LIMIT = 120  # seconds a refusal may take before it counts as a hang
SEARCH = [sys.executable, "-m", "prune_gym.cli", "search", "--task", "lenet5-digits", "--reward-samples", "100", "--quiet",
          "--episodes", str(EPISODES)]


class Outcome:
    """Counts of one fault over the rounds."""

    def __init__(self) -> None:
        self.injected = self.resumed = self.lost = self.duplicated = self.tracebacks = 0
        self.hangs = self.wrong = self.imports = 0

    def refused(self, *arguments: str, env: dict[str, str] | None = None, expect: str = "") -> None:
        """Run ``prune-gym ARGUMENTS``: it must exit 2 with one line (containing ``expect``) within :data:`LIMIT`."""
        try:
            result = subprocess.run([*SEARCH[:3], *arguments], capture_output=True, text=True, timeout=LIMIT, env=env)
        except subprocess.TimeoutExpired:
            self.hangs += 1
            return
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        self.tracebacks += "Traceback" in result.stderr
        self.wrong += result.returncode != 2 or len(lines) != 1 or expect not in (lines or [""])[0]


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
    elif fault in EXTRA:
        EXTRA[fault](run, rng, outcome)
        return
    resume_until_done(run, outcome)


def finished(run: Path, agent: str = "random-search", episodes: int = 6) -> None:
    subprocess.run([*SEARCH[:-1], str(episodes), "--agent", agent, "--run-dir", str(run)], check=True, capture_output=True,
                   timeout=900)


def second_writer_starting(run: Path, rng: random.Random, outcome: Outcome) -> None:
    """A writer holds the lock of a folder it is starting (nothing written yet); the same command and a resume are refused,
    and the holder's lock file survives them."""
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys
from prune_gym.runs import RunFolder
with RunFolder({str(run)!r}).writing(create=True):
    print("holding", flush=True)
    sys.stdin.readline()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    outcome.refused("search", *SEARCH[4:], "--agent", "random-search", "--run-dir", str(run), expect=f"process {holder.pid}")
    outcome.refused("search", *SEARCH[4:], "--agent", "random-search", "--run-dir", str(run), expect=f"process {holder.pid}")
    outcome.wrong += not (run / ".lock").exists()
    holder.communicate("\n", timeout=60)


def foreign_folder(run: Path, rng: random.Random, outcome: Outcome) -> None:
    finished(run)
    before = (run / "episodes.csv").read_bytes()
    outcome.refused("search", *SEARCH[4:], "--agent", "cma-es", "--run-dir", str(run), expect="holds another run")
    outcome.refused("search", *SEARCH[4:], "--agent", "random-search", "--macs-budget", "0.3", "--run-dir", str(run),
                    expect="env_kwargs.macs_budget")
    outcome.refused("search", "--resume", str(run), "--agent", "cma-es", "--seed", "9", expect="cannot change")
    entry = run.parent / f"{run.name}-bench" / "lenet5-digits_LayerRate-0.5" / "seed-1"
    entry.parent.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(run), str(entry)], check=True)
    outcome.refused("benchmark", "--agent", "cma-es", "--suite", "quick-v0", "--seeds", "1", "--out", str(entry.parent.parent),
                    "--quiet", expect="failed: lenet5-digits/LayerRate-0.5 seed 1")
    outcome.wrong += (run / "episodes.csv").read_bytes() != before or (entry / "score.json").exists()


def bit_flips(run: Path, rng: random.Random, outcome: Outcome) -> None:
    from prune_gym.tasks import get_task

    checkpoint = get_task("lenet5-digits").checkpoint_path()
    original = checkpoint.read_bytes()
    data = bytearray(original)
    data[len(data) // 2 + rng.randint(0, 200)] ^= 0x40
    try:
        checkpoint.write_bytes(bytes(data))
        outcome.refused("search", *SEARCH[4:], "--agent", "random-search", "--run-dir", str(run.parent / f"{run.name}-flipped"),
                        expect=checkpoint.name)
    finally:
        checkpoint.write_bytes(original)
    finished(run)
    lines = (run / "episodes.csv").read_bytes().split(b"\n")
    row = rng.randint(1, len(lines) - 2)
    lines[row] = bytes([lines[row][0] ^ 0x01]) + lines[row][1:]
    damaged = b"\n".join(lines)
    (run / "episodes.csv").write_bytes(damaged)
    outcome.refused("search", "--resume", str(run), "--episodes", "8", "--quiet", expect="checksum mismatch")
    outcome.wrong += (run / "episodes.csv").read_bytes() != damaged


def hostile_names(run: Path, rng: random.Random, outcome: Outcome) -> None:
    finished(run)
    plant = run.parent / f"{run.name}-code"
    plant.mkdir()
    marker = plant / "imported"
    (plant / "pwnmod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nf = None\n")
    config = json.loads((run / "config.json").read_text())
    field = rng.choice(["task", "reward", "env"])
    if field == "reward":
        config["env_kwargs"]["reward"] = "pwnmod:f"
    else:
        config[field] = "pwnmod:f" if field == "task" else "pwnmod:X-v0"
    (run / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(plant)}
    outcome.refused("search", "--resume", str(run), "--episodes", "8", "--quiet", env=env, expect="--trust-code")
    if field == "task":
        outcome.refused("export", str(run), env=env, expect="--trust-code")
        outcome.refused("recover", str(run), env=env, expect="--trust-code")
    outcome.imports += marker.exists()


def hangs(run: Path, rng: random.Random, outcome: Outcome) -> None:
    finished(run)
    (run / "episodes.csv").unlink()
    os.mkfifo(run / "episodes.csv")
    outcome.refused("search", "--resume", str(run), "--quiet", expect="not a regular file")
    outcome.refused("search", *SEARCH[4:], "--seeds", "0-300000", "--run-dir", str(run.parent / f"{run.name}-seeds"),
                    expect="more than")
    outcome.refused("search", *SEARCH[4:], "--agent", "uniform", "--seeds", "0", "--ray", "127.0.0.1:1",
                    "--run-dir", str(run.parent / f"{run.name}-ray"), expect="no Ray cluster answers")


EXTRA = {"second writer, starting": second_writer_starting, "foreign folder": foreign_folder, "bit flips": bit_flips,
         "hostile names": hostile_names, "hangs": hangs}
COLUMNS = ("injected", "resumed", "lost", "duplicated", "hangs", "tracebacks", "wrong", "imports")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    faults = ["kill -9", "SIGINT", "torn record", "full disk", "second writer", *EXTRA]
    outcomes = {fault: Outcome() for fault in faults}
    with tempfile.TemporaryDirectory(prefix="prune_gym-faults-") as folder:
        os.environ.setdefault("PRUNE_GYM_CACHE", str(Path(folder) / "cache"))
        os.environ.setdefault("MPLCONFIGDIR", str(Path(folder) / "matplotlib"))
        subprocess.run([*SEARCH[:3], "pretrain", "lenet5-digits", "--quiet"], check=True, capture_output=True)
        for round_index in range(args.rounds):
            for fault in faults:
                inject(fault, Path(folder) / f"{fault.replace(' ', '-')}-{round_index}", rng, outcomes[fault])
    print(f"{'fault':<24}" + "".join(f"{column:>11}" for column in COLUMNS))
    total = Outcome()
    for fault, outcome in outcomes.items():
        print(f"{fault:<24}" + "".join(f"{getattr(outcome, column):>11}" for column in COLUMNS))
        for column in COLUMNS:
            setattr(total, column, getattr(total, column) + getattr(outcome, column))
    print(f"{'total':<24}" + "".join(f"{getattr(total, column):>11}" for column in COLUMNS))


if __name__ == "__main__":
    main()
