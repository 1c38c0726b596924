"""The layer order, written once: a lower layer never imports a higher one.

Every ``import``/``from … import`` in ``src/intentrank`` — at module level, inside functions and under
``TYPE_CHECKING`` alike — is checked against :data:`LAYERS`. ``intentrank/config.py`` and each part's
``config.py`` form the ``config`` layer: pure pydantic settings that any part may read and that import
nothing above themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "intentrank"

#: Lowest first. A module may import its own layer and the ones before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "runtime"),
    ("config",),
    ("data",),
    ("stats",),
    ("ope",),
    ("clickbait",),
    ("store",),
    ("ranking",),
    ("mitigation",),
    ("serving",),
    ("simulator",),
    ("experiments",),
    ("service",),
    ("cli",),
)
RANK = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def layer_of(module: str) -> str:
    """The layer of a dotted ``intentrank.…`` module name."""
    parts = module.split(".")
    if len(parts) == 1:
        return "errors"  # the package root (__init__, version) sits at the bottom
    if parts[-1] == "config" or (len(parts) > 2 and parts[2] == "config"):
        return "config"
    return parts[1]


def imports_of(path: Path, src: Path = SRC) -> list[tuple[int, str]]:
    """(line, imported intentrank module) for every import in the file, wherever it stands."""
    module = "intentrank." + ".".join(path.relative_to(src).with_suffix("").parts)
    module = module.removesuffix(".__init__")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("intentrank")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("intentrank"):
                # `from intentrank.pkg import x` imports the submodule x when there is one
                pkg_dir = src / Path(*name.split(".")[1:])
                for a in node.names:
                    sub = pkg_dir / a.name
                    is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
                    out.append((node.lineno, f"{name}.{a.name}" if is_module else name))
    return out


def violations(src: Path = SRC) -> list[str]:
    """Every upward import under ``src``, as ``file:line: layer → layer (module)``."""
    bad = []
    for path in sorted(src.rglob("*.py")):
        module = "intentrank." + ".".join(path.relative_to(src).with_suffix("").parts)
        here = layer_of(module.removesuffix(".__init__"))
        for line, target in imports_of(path, src):
            there = layer_of(target)
            if there not in RANK:
                bad.append(f"{path.relative_to(src)}:{line}: unknown layer {there!r} ({target})")
            elif RANK[there] > RANK[here]:
                bad.append(f"{path.relative_to(src)}:{line}: {here} imports higher layer {there} ({target})")
    return bad


def test_every_part_is_in_the_layer_order() -> None:
    parts = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert parts | modules <= set(RANK), f"add to LAYERS: {sorted((parts | modules) - set(RANK))}"


def test_no_lower_layer_imports_a_higher_one() -> None:
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "intentrank"
    (pkg / "store").mkdir(parents=True)
    (pkg / "store" / "x.py").write_text("def f():\n    from intentrank.simulator.engine import Simulator\n")
    (pkg / "ranking").mkdir()
    (pkg / "ranking" / "config.py").write_text("from intentrank.ranking.trainer import Trainer\n")
    found = violations(pkg)
    assert any("store imports higher layer simulator" in v for v in found)
    assert any("config imports higher layer ranking" in v for v in found)


@pytest.mark.parametrize(
    ("module", "layer"),
    [("intentrank.config", "config"), ("intentrank.ranking.config", "config"), ("intentrank.store", "store")],
)
def test_layer_of(module: str, layer: str) -> None:
    assert layer_of(module) == layer
