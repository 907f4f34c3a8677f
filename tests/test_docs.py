"""The documentation (mkdocs.yml, docs/): it builds with ``--strict``, every page loads in a real browser (Debian's
chromium) without an error or a request leaving the machine, every internal link and anchor resolves, every code block
is README's (run by tests/test_readme.py) or runs here, and the tutorial notebook runs top to bottom."""

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import unquote, urldefrag, urlsplit
from urllib.request import urlopen

import pytest
from test_readme import GIVEN_PYTHON, PLAY, README, REGISTRIES, _parse, _subprocess_environment

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOK = DOCS / "tutorial.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync"]

README_BLOCKS = _parse(README.read_text())
README_PYTHON = {block.code for block in README_BLOCKS if block.language == "python"}
README_COMMANDS = {command for block in README_BLOCKS if block.language == "bash" for command in block.commands()}
GIVEN = {**GIVEN_PYTHON, "HillClimbAgent": next(block.code for block in README_BLOCKS if "class HillClimbAgent" in block.code)}
"""Placeholders of the docs' python blocks: README's, and README's agent class."""
BLOCKS = [(page, block) for page in sorted(DOCS.rglob("*.md")) for block in _parse(page.read_text())]
OWN_PYTHON = [(page, block) for page, block in BLOCKS if block.language == "python" and block.code not in README_PYTHON]
PLAYED_REGISTRIES = re.compile(r"\b(?:register_(?:reward|observation|importance|model|dataset|task)|gymnasium\.register)\(")


def _where(page: Path, line: int) -> str:
    return f"{page.relative_to(ROOT)}:{line}"


def test_every_code_block_is_the_readmes_or_runs_here():
    """Commands are README's (run or marked there); python blocks are README's or run below; TOML parses."""
    import tomllib

    assert OWN_PYTHON and len(OWN_PYTHON) < sum(block.language == "python" for _, block in BLOCKS), "docs share README's snippets"
    for page, block in BLOCKS:
        where = _where(page, block.line)
        assert set(block.given) <= set(GIVEN), f"{where}: no value for {set(block.given) - set(GIVEN)}: add it to GIVEN"
        if block.language == "bash":
            assert set(block.commands()) <= README_COMMANDS, f"{where}: commands not in README.md (where they are tested): " \
                                                             f"{set(block.commands()) - README_COMMANDS}"
        elif block.language == "toml":
            entry_points = tomllib.loads(block.code)["project"]["entry-points"]
            assert all(re.fullmatch(r"[\w.]+:\w+", value) for group in entry_points.values() for value in group.values()), where
        else:
            assert block.language == "python", f"{where}: a {block.language} block: check it here"


@pytest.mark.parametrize(("page", "block"), OWN_PYTHON, ids=[_where(page, block.line) for page, block in OWN_PYTHON])
def test_python_block_runs(page, block, tmp_path):
    """As tests/test_readme.py runs README's: its placeholders defined first, then one episode with what it registered."""
    setup = "".join(dict.fromkeys(GIVEN[name] for name in block.given))
    plays = PLAYED_REGISTRIES.search(block.code) is not None
    script = tmp_path / "docs_block.py"
    script.write_text(f"{setup}{REGISTRIES if plays else ''}# {_where(page, block.line)}\n{block.code}{PLAY if plays else ''}")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_subprocess_environment(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"{_where(page, block.line)}:\n{block.code}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` (a warning fails the build)."""
    folder = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return folder


def test_the_site_documents_the_whole_public_api(site):
    import prune_gym

    public_api = (site / "api" / "index.html").read_text()
    assert [name for name in prune_gym.__all__ if f'id="prune_gym.{name}"' not in public_api] == [], \
        "docs/api/index.md lists prune_gym.__all__: add the missing names to its members"
    runs = (site / "api" / "runs" / "index.html").read_text()
    assert 'id="prune_gym.runs.RunSpec"' in runs and "<td><code>config.json</code></td>" in runs, "a reST table as a table"
    for page in (site / "api").rglob("*.html"):  # docs/griffe_rst.py turned the docstrings' reST into markdown
        assert not re.search(r":(?:func|class|meth|mod|attr):|={5,}", page.read_text()), f"reST left in {page}"
    assert json.loads((site / "tutorial.ipynb").read_text())["cells"], "the notebook is in the site, for download"
    assert "run_benchmark" in (site / "tutorial" / "index.html").read_text(), "the tutorial page shows the notebook's cells"


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site on a local HTTP server: its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_: object) -> None:
        pass


def _document(url: str, cache: dict[str, tuple[int, str]]) -> tuple[int, str]:
    """Status and text of ``url`` (cached)."""
    if url not in cache:
        try:
            with urlopen(url, timeout=30) as response:
                cache[url] = (response.status, response.read().decode("utf-8", "replace"))
        except HTTPError as error:
            cache[url] = (error.code, "")
    return cache[url]


@pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
def test_every_page_loads_in_a_browser_and_every_internal_link_resolves(site, served):
    from playwright.sync_api import Route, sync_playwright

    pages = sorted(str(path.relative_to(site)).removesuffix("index.html") for path in site.rglob("*.html"))
    assert len(pages) >= 16 and "api/runs/" in pages, pages
    problems: list[str] = []
    outside: list[str] = []
    documents: dict[str, tuple[int, str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGUMENTS)
        tab = browser.new_page()

        def local_only(route: Route) -> None:
            if route.request.url.startswith(served):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        tab.route("**/*", local_only)
        shown = ""
        tab.on("console", lambda message: problems.append(f"{shown}: console {message.type}: {message.text}")
               if message.type in ("error", "warning") else None)
        tab.on("pageerror", lambda error: problems.append(f"{shown}: {error}"))
        links: dict[str, set[str]] = {}
        for shown in pages:
            response = tab.goto(served + shown, wait_until="networkidle")
            assert response is not None and response.status == 200, (shown, response and response.status)
            assert tab.title().strip(), f"{shown}: no title"
            for href in tab.eval_on_selector_all("a[href]", "links => links.map(link => link.href)"):
                if href.startswith(served):
                    links.setdefault(href, set()).add(shown)
        shown = "search.html?q=RunSpec"
        tab.goto(served + shown, wait_until="networkidle")
        tab.wait_for_selector("#mkdocs-search-results a", timeout=30_000)  # lunr's index and worker load from the site
        found = tab.eval_on_selector_all("#mkdocs-search-results a", "links => links.map(link => link.href)")
        browser.close()
    assert problems == [] and outside == [], (problems, outside)
    assert any("api/runs/" in href for href in found), found
    assert len(links) > 100, "the pages link each other and the API reference"
    broken = []
    for href, sources in sorted(links.items()):
        url, fragment = urldefrag(href)
        status, text = _document(url, documents)
        if status != 200:
            broken.append(f"{href} ({status}) from {sorted(sources)}")
        elif fragment and urlsplit(url).path.endswith("/") and not re.search(rf'\b(?:id|name)="{re.escape(unquote(fragment))}"', text):
            broken.append(f"{href}: no anchor {fragment!r} on the page, from {sorted(sources)}")
    assert broken == []


def test_the_notebook_is_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code), \
        "clear the notebook's outputs before committing it (Jupyter: Edit > Clear Outputs of All Cells)"


def test_the_tutorial_notebook_trains_plots_and_benchmarks(tmp_path, monkeypatch):
    """Every cell runs (as ``pytest --nbmake docs/tutorial.ipynb`` runs it); the curves are drawn, the benchmark scored."""
    import nbformat
    from nbclient import NotebookClient

    from prune_gym.runs import RunFolder

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the notebook's tempfile.mkdtemp() puts its runs
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    figures = [output for output in outputs if "image/png" in output.get("data", {})]
    tables = [output["data"]["text/markdown"] for output in outputs if "text/markdown" in output.get("data", {})]
    assert len(figures) == 2, "the per-episode returns and prune_gym.plots' learning curves"
    assert re.search(r"ddpg: best episode \d+: accuracy 0\.\d+ at 0\.\d+ of the MACs", text), text
    assert re.search(r"random-search: best episode \d+", text), text
    assert re.search(r"test accuracy after recovery 0\.\d+ at 0\.\d+ of the MACs: normalised score -?\d", text), text
    assert len(tables) == 1 and "ddpg" in tables[0] and "quick-v1" in tables[0], tables
    (run,) = tmp_path.glob("prune_gym-tutorial-*")
    records, _ = RunFolder(run / "ddpg").episodes()
    assert [record.episode for record in records] == list(range(60))
    assert json.loads((run / "benchmark-ddpg" / "results.json").read_text())["runs"][0]["status"] == "ok"
