"""Write experiments/README.md from each reproduction's docstring and its measured tables (``results/<name>.md``).

Usage (from the repository root, after running the scripts)::

    .venv/bin/python experiments/report.py

Nothing in the README is typed by hand: the claim and set-up come from the
script's docstring, the tables, verdicts, command and machine from the results
the script wrote. A script not yet run is listed with the command that runs it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from prune_gym.storage import write_atomic

HERE = Path(__file__).resolve().parent
SCRIPTS = {  # script: the paper it reproduces
    "vcip2019": "Importance-aware filter selection with DDPG (VCIP 2019)",
    "try_and_learn": "Learning to prune filters, try-and-learn (arXiv 1801.07365)",
    "ictai2019": "One-step pruning-recovery (ICTAI 2019)",
    "cisai2022": "Structural redundancy by clustering (CISAI 2022)",
    "zhejiang2019": "Filter standard deviation as importance (Zhejiang Univ. 2019)",
}
INTRO = """# Reproducing the seed papers at CPU scale

One script per paper. Each prints tables that put the paper's claim beside what
prune_gym measures on the same kind of experiment at CPU scale (Fashion-MNIST,
MNIST, the CIFAR-10 subset, MNIST scenes), with a verdict per claim
(reproduced, partly, not reproduced), and writes its numbers to
`results/<name>.json` (with the machine, the thread count and the command) and
its tables to `results/<name>.md`. Accuracies are on the test split after the
same recovery fine-tune for every method (mean +- std over seeds; the CIFAR-10
subset's 1,017 test images carry a binomial standard error of about 1.4
points), MACs are multiply-accumulates, latency is the median CPU time of a
forward pass over 100 test images. `--quick` runs a tiny version (the test
suite runs every script that way, `tests/test_experiments.py`); `--seeds`,
`--out` and `--device` are common to all.

This file is written by `.venv/bin/python experiments/report.py` from the
scripts' docstrings and results; each section ends with how it was measured.
The results dated 2026-11-25 were measured with one torch thread each while the
leaderboard ran on the same two cores: accuracies are unaffected, but wall
times and the latency/speed-up columns are pessimistic and noisy (speed-ups
below 1 are contention, not slower networks). Later results record the load
average when the script ended (near the core count: the script had the machine
to itself; above it: other jobs shared it) and the SHA-256 of every checkpoint
they were measured on (a seeded pretrain on another machine is not
bit-identical).
"""


def docstring(name: str) -> str:
    return ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text())) or ""


def section(name: str, title: str) -> str:
    text = docstring(name).split("\n\n")
    body = "\n\n".join(part for part in text[1:] if not part.lstrip().startswith(".venv/bin/python"))
    results = HERE / "results" / f"{name}.json"
    lines = [f"## {title}: `{name}.py`", "", body, ""]
    if results.exists():
        record = json.loads(results.read_text())
        machine = record["machine"]
        lines += [(HERE / "results" / f"{name}.md").read_text().strip(), "",
                  f"Measured with `{record['command']}` (OMP_NUM_THREADS={record.get('omp_num_threads')}, "
                  f"{record.get('threads')} torch threads) on {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, "
                  f"{machine['date']}" + (f", {record['seconds'] / 60:.0f} minutes" if "seconds" in record else "")
                  + (", load average {:.1f} / {:.1f} / {:.1f} (1 / 5 / 15 minutes) at the end".format(*record["load_average"])
                     if "load_average" in record else "") + "."
                  + (" Checkpoints (SHA-256): " + ", ".join(f"`{task}` {digest[:16]}" for task, digest in
                                                            sorted(record["checkpoints"].items())) + "."
                     if record.get("checkpoints") else ""), ""]
    else:
        lines += [f"Not measured yet: `.venv/bin/python experiments/{name}.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    text = "\n".join([INTRO, *(section(name, title) for name, title in SCRIPTS.items())])
    write_atomic(HERE / "README.md", text)
    print(text)


if __name__ == "__main__":
    main()
