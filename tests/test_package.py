"""The distribution: ``python -m build`` makes an sdist and, from it, a wheel; ``twine check`` passes (the README renders
as the long description); the sdist holds the package and nothing else; the wheel holds prune_gym, prune_gym_agents,
their files and the entry points, and works installed into a fresh virtual environment."""

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {"prune_gym": ROOT / "prune_gym", "prune_gym_agents": ROOT / "agents"}  # import package: its folder
LARGEST_SDIST = 2_000_000  # bytes: sources and the README, no data, results or caches


def pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def package_files() -> set[str]:
    """Every file of the import packages as installed (``prune_gym_agents/ddpg/amc.py``), data files included."""
    return {f"{package}/{path.relative_to(folder).as_posix()}" for package, folder in PACKAGE_FOLDERS.items()
            for path in folder.rglob("*") if path.is_file() and "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel built from it, as a release builds them (in an isolated environment)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_twine_accepts_the_distributions(dist):
    files = sorted(str(path) for path in dist.iterdir())
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.count("PASSED") == 2, done.stdout + done.stderr


def test_the_sdist_holds_the_package_and_nothing_else(dist):
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.stat().st_size < LARGEST_SDIST, f"{sdist.name}: {sdist.stat().st_size} bytes"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE"} <= names
    sources = {name.replace("prune_gym_agents/", "agents/", 1) for name in package_files()}
    assert sources - names == set(), "package files missing from the sdist"
    stray = {name for name in names if any(part in name.split("/") for part in ("__pycache__", "runs", "results", "wandb", "tests"))
             or name.endswith((".pyc", ".pt", ".npz", ".csv"))}
    assert stray == set(), "caches, results or half a test suite in the sdist (MANIFEST.in prunes them)"


def test_the_wheel_holds_both_packages_and_the_entry_points(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        declared = archive.read(entry_points).decode()
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        description = archive.read(metadata).decode()
    packaged = {name for name in names if ".dist-info/" not in name}
    assert packaged == package_files(), (package_files() - packaged, packaged - package_files())
    assert "prune-gym = prune_gym.cli:main" in declared
    for name, target in pyproject()["project"]["entry-points"]["prune_gym.agents"].items():
        assert f"{name} = {target}" in declared
    assert "Description-Content-Type: text/markdown" in description and "## Layout" in description


def test_the_wheel_works_installed_alone_in_a_fresh_environment(dist, tmp_path):
    """The wheel without its dependencies (6 GB of torch) into a new venv that reads them from this one: a ``.pth`` line
    puts this environment's site-packages after the venv's own (PYTHONPATH would put them first, and with them this
    checkout's editable install's metadata). prune_gym, its agents and the entry points come from the wheel."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                                "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)

    where = run(str(python), "-c", "import json, importlib.metadata as metadata, prune_gym, prune_gym_agents; print(json.dumps("
                "[prune_gym.__file__, prune_gym_agents.__file__, str(metadata.distribution('prune_gym').locate_file('')), "
                "sorted(entry.name for entry in metadata.entry_points(group='prune_gym.agents'))]))")
    assert where.returncode == 0, where.stderr
    *files, agents = json.loads(where.stdout)
    assert all(Path(file).is_relative_to(site_packages) for file in files), files
    assert agents == sorted(pyproject()["project"]["entry-points"]["prune_gym.agents"])
    script = venv / "bin" / "prune-gym"
    helped = run(str(script), "--help")
    assert helped.returncode == 0 and "search" in helped.stdout and "benchmark" in helped.stdout, helped.stderr
    listed = run(str(script), "list", "agents")
    assert listed.returncode == 0, listed.stderr
    assert all(f"\n{name} " in listed.stdout for name in ("ddpg", "random-search", "try-and-learn", "uniform")), listed.stdout
