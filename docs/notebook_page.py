"""mkdocs hook: ``<!-- notebook: FILE.ipynb -->`` in a page becomes the notebook's cells (mkdocs.yml loads it, ``hooks:``).

Markdown cells are inserted as they are, code cells as python blocks. Outputs are not shown: notebooks are stored
without them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

NOTEBOOK = re.compile(r"^<!-- notebook: (\S+\.ipynb) -->$", flags=re.MULTILINE)


def _cells(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    return "\n\n".join(source if cell["cell_type"] == "markdown" else f"```python\n{source}\n```"
                       for cell, source in zip(cells, sources))


def on_page_markdown(markdown: str, page: Any, config: Any, **kwargs: Any) -> str:
    folder = Path(page.file.abs_src_path).parent
    return NOTEBOOK.sub(lambda match: _cells(folder / match[1]), markdown)
