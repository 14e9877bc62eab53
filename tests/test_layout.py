"""The layout's rules, checked: each room imports only what it may, and the docs name only paths that exist.

Rooms (docs/ARCHITECTURE.md): ``core`` uses torch and never bpy; ``retarget`` uses numpy and never torch or bpy;
``blender`` is the only room that imports bpy. Import checks run in a fresh interpreter, so nothing this test
session already imported can hide an import.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "temos_blender"

_IMPORT_PROBE = """
import importlib, json, pkgutil, sys
for name in {blocked!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError

def walk(package_name):
    package = importlib.import_module(package_name)
    yield package_name
    for info in pkgutil.iter_modules(getattr(package, "__path__", []), package_name + "."):
        if info.name.rpartition(".")[2] == "__main__" or info.name in {skip!r}:
            continue
        if info.ispkg:
            yield from walk(info.name)
        else:
            importlib.import_module(info.name)
            yield info.name

imported = [name for root in {roots!r} for name in walk(root)]
loaded = sorted(name for name in {watched!r} if sys.modules.get(name) is not None)
print(json.dumps({{"imported": imported, "loaded": loaded}}))
"""


def import_in_fresh_python(roots, *, watched=("bpy", "torch"), blocked=(), skip=()) -> dict:
    """Import ``roots`` and all their submodules in a new interpreter; report which of ``watched`` got loaded."""
    code = _IMPORT_PROBE.format(roots=list(roots), watched=list(watched), blocked=list(blocked), skip=list(skip))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, f"importing {roots} failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_core_and_retarget_leaves_bpy_out():
    code = "import sys, temos_blender.core, temos_blender.retarget; print('bpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_every_module_outside_blender_imports_without_bpy_installed():
    report = import_in_fresh_python(["temos_blender"], blocked=["bpy"], skip=["temos_blender.blender"])

    assert "temos_blender.core.model" in report["imported"]
    assert "temos_blender.retarget.transfer" in report["imported"]
    assert not [name for name in report["imported"] if name.startswith("temos_blender.blender")]


def test_retarget_and_the_take_import_without_torch_or_bpy():
    report = import_in_fresh_python(["temos_blender.retarget", "temos_blender.take"])

    assert "temos_blender.retarget.transfer" in report["imported"]
    assert report["loaded"] == []


def _imported_top_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports anywhere (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("core", {"bpy", "addon_utils", "mathutils"}),
        ("data", {"bpy", "addon_utils", "mathutils"}),
        ("evaluate", {"bpy", "addon_utils", "mathutils"}),
        ("retarget", {"bpy", "addon_utils", "mathutils", "torch"}),
    ],
)
def test_room_never_imports_what_it_must_not(room, forbidden):
    files = sorted((PACKAGE_DIR / room).rglob("*.py"))
    offending = {str(f.relative_to(REPO_ROOT)): sorted(_imported_top_modules(f) & forbidden) for f in files}

    assert files
    assert {f: names for f, names in offending.items() if names} == {}


# The command line drives Blender headless through the bpy module, importing it inside its command functions only.
BPY_ENTRY_POINTS = {"cli.py"}


def test_package_modules_outside_blender_never_import_bpy():
    files = [
        f
        for f in PACKAGE_DIR.rglob("*.py")
        if "blender" not in f.relative_to(PACKAGE_DIR).parts[:-1] and f.relative_to(PACKAGE_DIR).as_posix() not in BPY_ENTRY_POINTS
    ]
    offending = [str(f.relative_to(REPO_ROOT)) for f in files if _imported_top_modules(f) & {"bpy", "addon_utils"}]

    assert offending == []


def test_command_line_imports_bpy_only_inside_functions():
    import ast

    tree = ast.parse((PACKAGE_DIR / "cli.py").read_text(encoding="utf-8"))
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name.split(".")[0] for n in top_level for a in n.names} | {
        (n.module or "").split(".")[0] for n in top_level if isinstance(n, ast.ImportFrom)
    }
    assert "bpy" not in names


# -- paths named in the docs -------------------------------------------------------------------------------------

REPO_FOLDERS = ("temos_blender/", "tests/", "docs/", "vendor_models/", "benchmarks/", "configs/", "scripts/", ".ci/")
"""A backticked name starting with one of these is a path in the repository."""
REPO_FILES = frozenset({"build.py", "Makefile", "pyproject.toml", "blender_manifest.toml", "README.md", ".gitignore"})
"""Top-level files that are repository paths when named alone."""
NOT_DOCS = frozenset({".git", ".venv", "dist", "build", "wheels", "runs", "out", "node_modules"})


def repo_paths_named_in(markdown: str) -> list[str]:
    """Repository paths written in `backticks` in ``markdown``, outside fenced code blocks.

    A name counts as a path when it starts with a repository folder (``REPO_FOLDERS``) or is a top-level file
    (``REPO_FILES``); ``path::name`` counts as ``path``. Commands (with spaces), patterns and placeholders (``*``,
    ``<…>``, ``{…}``, ``$``) and names followed by "(planned)" are not checked.
    """
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.DOTALL | re.MULTILINE)
    paths = []
    for match in re.finditer(r"`([^`\n]+)`(\s*\(planned)?", prose):
        name, planned = match.group(1).strip(), match.group(2)
        if planned or re.search(r"[\s*<>{}$]", name):
            continue
        path = name.partition("::")[0].removeprefix("./")
        if path.startswith(REPO_FOLDERS) or path in REPO_FILES:
            paths.append(path)
    return paths


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in REPO_ROOT.rglob("*.md")
        if not NOT_DOCS.intersection(path.relative_to(REPO_ROOT).parts)
        and not any(part.endswith(".egg-info") or part.startswith(".") for part in path.relative_to(REPO_ROOT).parts)
    )


def test_doc_path_finder_checks_repo_paths_and_skips_commands_patterns_and_planned_files():
    text = (
        "See `build.py`, `temos_blender/take.py::Take`, `tests/blender/` and `Makefile`.\n"
        "Run `make test` or `python build.py`; zips land in `dist/temos_blender-<version>.zip`;\n"
        "`temos_blender/blender/bake.py` (planned) and `temos_blender/*/README.md` and `torch==2.13.0` are skipped.\n"
        "```\ncat temos_blender/nothing.py `docs/nothing.md`\n```\n"
    )

    assert repo_paths_named_in(text) == ["build.py", "temos_blender/take.py", "tests/blender/", "Makefile"]


def test_every_repo_path_named_in_the_docs_exists():
    docs = markdown_files()
    named = {str(doc.relative_to(REPO_ROOT)): repo_paths_named_in(doc.read_text(encoding="utf-8")) for doc in docs}
    missing = {doc: [p for p in paths if not (REPO_ROOT / p).exists()] for doc, paths in named.items()}

    assert REPO_ROOT / "README.md" in docs and REPO_ROOT / "docs" / "ARCHITECTURE.md" in docs
    assert named["README.md"], "README.md should name the files it talks about in backticks"
    assert {doc: paths for doc, paths in missing.items() if paths} == {}
