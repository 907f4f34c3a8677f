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


def module_imports(package: str) -> dict[str, set[str]]:
    """The module-level imports (not those inside functions or under ``TYPE_CHECKING``) of every module of ``package``,
    between modules of the repository: ``from a import b`` counts as importing ``a.b`` when that is a module."""
    import ast

    files = {".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
             for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        graph[module] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in files else node.module
                         for alias in node.names]
            else:
                continue
            graph[module] |= {name for name in names if name in files and name != module}
    return graph


def test_the_import_graph_is_layered():
    """No import circles among prune_gym's modules (``graphlib`` finds one if it exists); prune_gym never imports the
    agents, which use prune_gym's public API like a third party."""
    import graphlib

    graph = module_imports("prune_gym")
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the circle
    sources = "\n".join(path.read_text() for path in (ROOT / "prune_gym").rglob("*.py"))
    assert not any(f"{word} {package}" in sources for word in ("import", "from") for package in ("agents", "prune_gym_agents"))


def test_the_package_list_names_every_package_folder():
    """pyproject lists the packages (the agents/ folder installs as prune_gym_agents): none may be left out."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(path.parent.relative_to(ROOT).parts).replace("agents", "prune_gym_agents", 1)
               for root in ("prune_gym", "agents") for path in (ROOT / root).rglob("__init__.py")}
    assert listed == folders
