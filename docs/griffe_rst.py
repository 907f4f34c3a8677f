"""Griffe extension for the API reference: the reStructuredText bits of prune_gym's docstrings, as markdown.

mkdocs.yml loads this file (``extensions:``). Docstrings keep reading well as plain text (``help()``, an editor), and
the API pages get:

* Sphinx roles (``:func:`run_search```, ``:class:`~prune_gym.state.EpisodeState```, ``:meth:`RunSpec.replace```)
  resolved in the docstring owner's scope (its module's imports and members) as optional autorefs links: a link where
  the target is documented on some page, plain code where it is not;
* simple tables (``=====  =====`` borders; a row whose first cell is empty continues the row above) as markdown tables;
* a paragraph ending in ``::`` (a literal block follows) ending in ``:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):`(?P<short>~?)\.?(?P<name>[\w.]+?)(?:\(\))?`")
BORDER = re.compile(r"( *)=+(?: +=+)+ *")


def _target(owner: Object, name: str) -> str | None:
    """The full path ``name`` means where ``owner`` is documented, or None."""
    head, _, rest = name.partition(".")
    scope = owner if owner.is_module or owner.is_class else owner.parent
    try:
        path = scope.resolve(head) if scope is not None else head
    except Exception:  # griffe's NameResolutionError, or an unresolvable alias on the way
        if head not in owner.modules_collection.members:
            return None
        path = head  # an absolute name: prune_gym.state.EpisodeState
    return f"{path}.{rest}" if rest else path


def _link(owner: Object, role: re.Match) -> str:
    name = role["name"]
    text = name.rsplit(".", 1)[-1] if role["short"] else name
    target = _target(owner, name)
    if target is None:
        return f"`{text}`"
    return f'<autoref identifier="{target}" optional><code>{text}</code></autoref>'


def _table(lines: list[str], start: int) -> tuple[list[str], int]:
    """The markdown table of the simple table whose top border is ``lines[start]``, and the index after its last border."""
    indent = BORDER.fullmatch(lines[start])[1]  # type: ignore[index]
    starts = [column.start() for column in re.finditer(r"=+", lines[start])]
    rows: list[list[str]] = []
    header: list[str] | None = None
    end = start + 1
    while end < len(lines):
        if BORDER.fullmatch(lines[end]):
            if header is not None or len(rows) != 1 or end + 1 == len(lines) or not lines[end + 1].strip():
                break
            header, rows = rows[0], []  # the border under a header row
        else:
            line = lines[end]
            cells = [line[a:b].strip().replace("|", "\\|") for a, b in zip(starts, [*starts[1:], len(line)])]
            if rows and not cells[0]:
                rows[-1] = [f"{above} {below}".strip() for above, below in zip(rows[-1], cells)]
            else:
                rows.append(cells)
        end += 1
    table = [f"{indent}| {' | '.join(header or [''] * len(starts))} |", f"{indent}|{'---|' * len(starts)}"]
    return table + [f"{indent}| {' | '.join(row)} |" for row in rows], end + 1


def markdown(owner: Object, text: str) -> str:
    """``text`` (a docstring of ``owner``) with its roles, simple tables and ``::`` in markdown."""
    lines, converted, index = text.split("\n"), [], 0
    while index < len(lines):
        if BORDER.fullmatch(lines[index]):
            table, index = _table(lines, index)
            converted += table
        else:
            converted.append(re.sub(r"(\S)::$", r"\1:", lines[index]))
            index += 1
    return ROLE.sub(lambda role: _link(owner, role), "\n".join(converted))


def _objects(owner: Object) -> Iterator[Object]:
    yield owner
    for member in owner.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


class RestructuredTextBits(Extension):
    """Rewrite every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: Object, **kwargs: Any) -> None:
        for owner in _objects(pkg):
            if owner.docstring is not None:
                owner.docstring.value = markdown(owner, owner.docstring.value)
