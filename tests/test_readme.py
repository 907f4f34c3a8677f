"""The README runs: every python block, every bash command that is not marked long-running, and every ``prune_gym.X`` it names.

Markers are HTML comments on the lines right before a fenced block (GitHub does not show them):

* ``<!-- test: given NAME, ... -->``: the block uses placeholders this file fills: ``GIVEN_PYTHON`` code runs
  before a python block, ``GIVEN_SHELL`` values replace those words in a bash block's commands, and a
  ``GIVEN_FILES`` name (``my_agent.py``) is a file written into the bash block's folder, before its commands run,
  from the README block that defines it.
* ``<!-- long-running: WHY -->``: no command of the bash block runs here; ``<!-- long-running "PREFIX" ...: WHY -->``:
  the commands starting with one of the prefixes do not.
* ``<!-- tested-by: tests/FILE.py::TEST -->``: that test runs the bash block's commands.

A python block that registers something then plays one episode with all it registered (``PLAY``). Every
other bash command must be one run of a ``CHEAP`` ``prune-gym`` command and runs here, in README order within
its block, in a fresh folder per block:
``a|b`` words expand to one command per alternative, ``[optional ...]`` parts are dropped, searches get
``FAST_SEARCH`` appended (argparse keeps an option's last value), ``.venv/bin/prune-gym`` runs the
installed script and ``prune-gym`` runs ``prune_gym.cli.main`` in this process. A command that is
neither run nor marked fails ``test_every_bash_command_is_run_here_or_marked``.
"""

import importlib
import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FAST_SEARCH = ["--episodes", "2", "--reward-samples", "100", "--quiet"]
CHEAP = {"search", "list", "recover", "export", "plot", "checkpoint"}  # prune-gym commands that take seconds on lenet5-digits
MANY_RUNS = {"--seeds", "--ray", "--workers"}
QUICKSTART_FILES = ["episodes.csv", "best_mask.npz", "summary.json", "learning_curve.png", "score_vs_macs.png"]

_DIGITS = """
from prune_gym.tasks import load_dataset
_digits = load_dataset("digits")
x_train, y_train, x_test, y_test = _digits.x_train, _digits.y_train, _digits.x_test, _digits.y_test
"""
GIVEN_PYTHON = {
    "my_module": """
import prune_gym
my_module = prune_gym.build_model("lenet5")
""",
    "x_train": _DIGITS, "y_train": _DIGITS, "x_test": _DIGITS, "y_test": _DIGITS,
    "MyNet": """
from torch import nn
class MyNet(nn.Sequential):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__(nn.Conv2d(in_channels, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
""",
    "load_my_data": """
import torch
from prune_gym.tasks import DatasetArrays
def load_my_data(root, download):
    return DatasetArrays(torch.randn(40, 3, 32, 32), torch.arange(40) % 2, torch.randn(10, 3, 32, 32), torch.arange(10) % 2)
""",
    "MyPruningEnv": """
import prune_gym
class MyPruningEnv(prune_gym.LayerRateEnv):
    pass
""",
}
"""Code defining each python placeholder (shared code runs once)."""

REGISTRIES = """
import math

import gymnasium as _gym
import prune_gym as _pg

_REGISTRIES = {"task": _pg.list_tasks, "model": _pg.list_models, "dataset": _pg.list_datasets, "reward": _pg.list_rewards,
               "observation": _pg.list_observations, "criterion": _pg.list_importance_criteria, "env": _pg.list_environments}
_before = {kind: set(names()) for kind, names in _REGISTRIES.items()}
"""
PLAY = """
_new = {kind: sorted(set(names()) - _before[kind]) for kind, names in _REGISTRIES.items()}
assert any(_new.values()), "the block registers nothing"
_task = (_new["task"] or ["lenet5-digits"])[0]
if _new["model"] or _new["dataset"]:
    _task = _pg.register_task("readme-task", (_new["model"] or ["lenet5"])[0], (_new["dataset"] or ["digits"])[0], reward_size=10,
                              epochs=1, auto_pretrain=True).name
_options = {"reward": _new["reward"], "observation": _new["observation"], "criterion": _new["criterion"]}
_env = _gym.make((_new["env"] or ["prune_gym:LayerRate-v0"])[0], task=_task, reward_samples=100,
                 **{option: names[0] for option, names in _options.items() if names})
_env.reset(seed=0)
_done, _returns = False, 0.0
while not _done:
    _, _reward, _done, _, _ = _env.step(_env.action_space.sample())
    _returns += _reward
assert math.isfinite(_returns), _returns
print("played", _task, _options, _new["env"])
"""
"""A registering block runs between these: one episode of the environment it registered (else LayerRate-v0) on the
task it registered (else one of the model and dataset it registered, else lenet5-digits) with its reward, observation
and criterion."""


def _pretrained_task(cwd: Path) -> str:
    import prune_gym

    prune_gym.get_task("lenet5-digits").load_model(progress=False)  # pretrains into the test cache if needed
    return "lenet5-digits"


def _the_run_folder(cwd: Path) -> str:
    (run,) = (cwd / "runs").iterdir()  # made by the block's search (default --run-dir: runs/<task>-<env>-<agent>-s<seed>-<time>)
    return str(run)


GIVEN_SHELL: dict[str, Callable[[Path], str]] = {
    "T": _pretrained_task,
    "TASK": _pretrained_task,
    "RUN": _the_run_folder,
    "FILE": lambda cwd: str(cwd / "checkpoint.pt"),
}
"""The value of each shell placeholder, from the block's working folder (at the command that uses it)."""

GIVEN_FILES = {"my_agent.py": "class HillClimbAgent", "cma-es.yml": "# cma-es.yml\n"}
"""Files a bash block's commands read, and the text that only the README block holding the file's content contains."""


@dataclass
class Block:
    """A fenced block of the README and the markers before it."""

    language: str
    code: str
    line: int
    given: list[str] = field(default_factory=list)
    long_running: list[str] = field(default_factory=list)  # command prefixes; "" marks the whole block
    tested_by: str | None = None
    markers: int = 0

    def commands(self) -> list[str]:
        """The block's shell commands: continuation lines joined, comment and blank lines left out."""
        lines = self.code.replace("\\\n", " ").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]

    def is_long_running(self, command: str) -> bool:
        return any(command.startswith(prefix) for prefix in self.long_running)

    def runnable(self) -> list[str]:
        """The commands this file runs."""
        return [] if self.tested_by else [command for command in self.commands() if not self.is_long_running(command)]


def _parse(text: str) -> list[Block]:
    blocks = []
    for match in re.finditer(r"((?:^<!--[^\n]*-->\n)*)^```(\w+)\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE):
        block = Block(match[2], match[3], text[:match.start(2)].count("\n") + 1)
        for comment in re.findall(r"<!--(.*?)-->", match[1]):
            block.markers += 1
            if given := re.fullmatch(r" test: given ([\w.\-, ]+) ", comment):
                block.given += [name.strip() for name in given[1].split(",")]
            elif long := re.fullmatch(r' long-running((?: "[^"]+")*): \S.* ', comment):
                block.long_running += re.findall(r'"([^"]+)"', long[1]) or [""]
            elif tested := re.fullmatch(r" tested-by: (\S+::\w+) ", comment):
                block.tested_by = tested[1]
            else:
                raise ValueError(f"README.md:{block.line}: unknown marker <!--{comment}--> (see tests/test_readme.py)")
        blocks.append(block)
    return blocks


BLOCKS = _parse(README.read_text())
PYTHON = [block for block in BLOCKS if block.language == "python"]
BASH = [block for block in BLOCKS if block.language == "bash" and block.runnable()]


def _readme_file(name: str) -> str:
    """The content of ``GIVEN_FILES[name]``: the one README block holding its text."""
    (code,) = [block.code for block in BLOCKS if GIVEN_FILES[name] in block.code]
    return code


def _line(block: Block) -> str:
    return f"README.md:{block.line}"


def _expand(command: str) -> list[list[str]]:
    """A command's argument lists: comment dropped, ``[optional ...]`` dropped, one list per ``a|b`` alternative."""
    tokens, optional = [], False
    for token in shlex.split(command, comments=True):
        optional = optional or token.startswith("[")
        if not optional:
            tokens.append(token)
        optional = optional and not token.endswith("]")
    choices = [token.split("|") if "|" in token.strip("|") else [token] for token in tokens]
    return [list(arguments) for arguments in itertools.product(*choices)]


def _subprocess_environment() -> dict[str, str]:
    """This test session's environment (conftest's caches, wandb off), importing prune_gym from this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_every_bash_command_is_run_here_or_marked():
    assert PYTHON and BASH, "the README has python blocks and runnable bash commands"
    markers = re.findall(r"^<!-- (?:test:|long-running|tested-by:)", README.read_text(), flags=re.MULTILINE)
    assert len(markers) == sum(block.markers for block in BLOCKS), "a marker is not on the lines right before a fenced block"
    for block in BLOCKS:
        where = _line(block)
        for name in block.given:
            assert name in (GIVEN_PYTHON if block.language == "python" else {**GIVEN_SHELL, **GIVEN_FILES}), \
                f"{where}: no value for placeholder {name!r}: add it to tests/test_readme.py"
            if name in GIVEN_FILES and block.language == "bash":
                assert sum(GIVEN_FILES[name] in other.code for other in BLOCKS) == 1, f"{where}: not exactly one README block holds {name}"
            assert re.search(rf"\b{re.escape(name)}\b", block.code), f"{where}: placeholder {name!r} is not in the block"
        if block.language != "bash":
            assert not block.long_running and not block.tested_by, f"{where}: only bash blocks are marked long-running or tested-by"
            continue
        for prefix in block.long_running:
            assert any(command.startswith(prefix) for command in block.commands()), f"{where}: no command starts with {prefix!r}"
        if block.tested_by:
            file, test = block.tested_by.split("::")
            assert re.search(rf"^def {test}\(", (ROOT / file).read_text(), flags=re.MULTILINE), f"{where}: no test {block.tested_by}"
        for command in block.runnable():
            for arguments in _expand(command):
                cheap = arguments[1:2] and arguments[1] in CHEAP and not MANY_RUNS & set(arguments)
                assert arguments[0] in ("prune-gym", ".venv/bin/prune-gym") and cheap, (
                    f"{where}: {command!r} is neither run by tests/test_readme.py nor marked; mark it "
                    "<!-- long-running \"PREFIX\": WHY --> or teach tests/test_readme.py to run it")


@pytest.mark.parametrize("block", PYTHON, ids=_line)
def test_python_block_runs(block, tmp_path):
    setup = "".join(dict.fromkeys(GIVEN_PYTHON[name] for name in block.given))
    registers = re.search(r"\bregister\w*\(", block.code) is not None
    script = tmp_path / "readme_block.py"
    script.write_text(f"{setup}{REGISTRIES if registers else ''}# {_line(block)}\n{block.code}{PLAY if registers else ''}")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_subprocess_environment(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{_line(block)}:\n{block.code}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize("block", BASH, ids=_line)
def test_bash_commands_run(block, tmp_path, monkeypatch, capsys):
    from prune_gym.cli import main

    monkeypatch.chdir(tmp_path)
    for name in set(block.given) & set(GIVEN_FILES):
        (tmp_path / name).write_text(_readme_file(name))
    for command in block.runnable():
        for arguments in _expand(command):
            arguments = [GIVEN_SHELL[token](tmp_path) if token in block.given and token in GIVEN_SHELL else token
                         for token in arguments]
            if arguments[1:2] == ["search"] and "--resume" not in arguments:
                arguments += FAST_SEARCH
            shown = f"{_line(block)}: {shlex.join(arguments)}"
            if arguments[0] == ".venv/bin/prune-gym":
                script = Path(sys.executable).parent / "prune-gym"
                assert script.is_file(), f"{shown}: the installed prune-gym script is missing"
                done = subprocess.run([str(script), *arguments[1:]], cwd=tmp_path, env=_subprocess_environment(),
                                      capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, f"{shown}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            else:
                assert main(arguments[1:]) == 0, f"{shown}\n{capsys.readouterr().err[-3000:]}"
            if arguments[:2] == [".venv/bin/prune-gym", "search"]:
                run = Path(_the_run_folder(tmp_path))
                assert all(name in README.read_text() for name in QUICKSTART_FILES)
                assert all((run / name).is_file() for name in QUICKSTART_FILES), sorted(path.name for path in run.iterdir())


def _entry_point_groups() -> set[str]:
    from prune_gym import agent_api, observations, rewards
    from prune_gym.pruning import importance

    return {module.ENTRY_POINT_GROUP for module in (agent_api, rewards, observations, importance)}


def _resolves(dotted: str) -> bool:
    """Whether ``prune_gym.<dotted>`` is a module or an attribute reached from one."""
    parts = dotted.split(".")
    for split in range(len(parts), -1, -1):
        try:
            value = importlib.import_module(".".join(["prune_gym", *parts[:split]]))
        except ModuleNotFoundError:
            continue
        try:
            for part in parts[split:]:
                value = getattr(value, part)
        except AttributeError:
            return False
        return True
    return False


def test_every_prune_gym_name_in_the_readme_resolves():
    names = set(re.findall(r"\bprune_gym\.(\w+(?:\.\w+)*)", README.read_text()))
    assert {"EpisodeState", "register_metric", "list_suites", "register_suite"} <= names
    groups = _entry_point_groups()
    assert [name for name in sorted(names) if f"prune_gym.{name}" not in groups and not _resolves(name)] == []
    import prune_gym

    for name in ("Suite", "Entry", "Recovery", "get_suite", "list_metrics", "get_metric"):  # what Suite(...) takes; the accessors
        assert getattr(prune_gym, name) is not None and name in prune_gym.__all__
