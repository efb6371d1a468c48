"""Imports point down only: shell (redreserve/) → bot → dispatcher → models (with migrations/) → ground.

A lower layer that imports a higher one ties the rules to the surface that shows them (the
dispatcher to Telegram, the tables to the CLI); each later capability — another channel,
several instances, the policy simulator — would have to cross that knot. This reads every
import statement in the project's packages, including those inside functions and under
``TYPE_CHECKING`` (an import hidden there is still a dependency), and fails naming each
upward one. Telegram's library is held to the bot layer and above the same way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module may import its own layer and the ones below it.
LAYERS = ("ground", "models", "dispatcher", "bot", "redreserve")
# The schema's history is the tables' own: models/schema.py runs it, the revisions import only below.
ALSO = {"migrations": "models"}
# Third-party packages that belong to one layer and up: the dispatcher's core speaks no Telegram.
FOREIGN_FLOOR = {"aiogram": "bot"}


def _layer_of(package: str) -> int | None:
    package = ALSO.get(package, package)
    return LAYERS.index(package) if package in LAYERS else None


def _imported(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``tree``; relative imports resolved against ``module``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, module.split(".")[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import in ``root``'s layered packages that points up, as ``path:line: a → b``."""
    offences = []
    for package in (*LAYERS, *ALSO):
        own = _layer_of(package)
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            module = ".".join(relative.with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, target in _imported(tree, module):
                floor = FOREIGN_FLOOR.get(target)
                target_layer = _layer_of(floor or target)
                if target_layer is not None and target_layer > own:
                    offences.append(f"{relative}:{line}: {package} → {target}")
    return offences


def test_every_import_points_down():
    offences = upward_imports(ROOT)
    assert not offences, "imports that point up a layer (ground < models < dispatcher < bot < shell):\n" + "\n".join(offences)


def test_every_layer_exists():
    # A renamed package would make the check above vacuous.
    for package in LAYERS:
        assert (ROOT / package / "__init__.py").is_file(), package


@pytest.mark.parametrize(("where", "source", "expected"), [
    ("models/x.py", "from dispatcher.engine import Engine\n", "models/x.py:1: models → dispatcher"),
    ("ground/x.py", "def f():\n    import models.tables\n", "ground/x.py:2: ground → models"),
    ("dispatcher/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.app import X\n",
     "dispatcher/x.py:3: dispatcher → bot"),
    ("dispatcher/x.py", "from aiogram import Bot\n", "dispatcher/x.py:1: dispatcher → aiogram"),
    ("models/x.py", "from redreserve import cli\n", "models/x.py:1: models → redreserve"),
    ("bot/x.py", "from dispatcher import engine\nfrom ground.clock import now\nimport aiogram\n", None),
    ("migrations/x.py", "from models import tables\n", None),
    ("migrations/x.py", "from dispatcher import engine\n", "migrations/x.py:1: migrations → dispatcher"),
])
def test_the_check_catches_an_upward_import(tmp_path, where, source, expected):
    for package in (*LAYERS, *ALSO):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / where).write_text(source)
    assert upward_imports(tmp_path) == ([expected] if expected else [])


def _geo_cell_writes(path: Path) -> list[int]:
    """Lines of ``path`` that set a donor's grid cell by hand: ``geo_cell=…``, ``x.geo_cell = …``, ``{"geo_cell": …}``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "geo_cell":
            lines.append(node.value.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    if isinstance(part, ast.Attribute) and part.attr == "geo_cell":
                        lines.append(node.lineno)
        elif isinstance(node, ast.Dict):
            lines += [key.lineno for key in node.keys if isinstance(key, ast.Constant) and key.value == "geo_cell"]
    return lines


def test_a_donors_grid_cell_has_one_writer():
    # The dispatcher finds donors by geo_cell: a writer that moved lat/lon and forgot the cell would
    # hide that donor from every search near her new home. models.geo.placed sets them together.
    home = ROOT / "models" / "geo.py"
    offences = [f"{path.relative_to(ROOT)}:{line}"
                 for package in LAYERS for path in sorted((ROOT / package).rglob("*.py")) if path != home
                 for line in _geo_cell_writes(path)]
    assert not offences, "set the location through models.geo.placed, not geo_cell by hand:\n" + "\n".join(offences)
