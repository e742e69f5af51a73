"""The layout's rules that import-linter cannot see (its contracts, in .importlinter, run in
`make test`): where modules live, why an import sits inside a function, what the API may use."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bankapp"


def _modules(under: Path = PACKAGE) -> list[Path]:
    return sorted(path for path in under.rglob("*.py") if "__pycache__" not in path.parts)


def _function_level_imports(path: Path) -> list[ast.stmt]:
    """Imports that run when a function runs, not when the module loads (an ``if`` or
    ``try`` at module level still counts as module level)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    module_level = set()
    for node in tree.body:
        module_level.update(id(inner) for inner in ast.walk(node)
                            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.ClassDef)))
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in module_level]


def test_the_package_top_level_holds_only_the_factory_and_the_extensions():
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "extensions.py"]


def _says_why(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or just above the run of imports it stands in."""
    if "#" in lines[lineno - 1]:
        return True
    above = lineno - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#")


def _silent_imports(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    return [node.lineno for node in _function_level_imports(path)
            if not _says_why(lines, node.lineno)]


def test_every_import_inside_a_function_says_why():
    silent = [f"{path.relative_to(ROOT)}:{lineno}"
              for path in _modules() for lineno in _silent_imports(path)]
    assert silent == [], "import at the top of the module, or say why not in a comment"


def test_an_import_without_a_comment_inside_a_function_is_found(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\n\ndef f():\n    import json\n    import re\n"
                      "    return json, re\n\n\ndef g():\n    # why\n    import json\n"
                      "    import re\n    return json, re\n")
    assert _silent_imports(sample) == [5, 6]


def test_importing_a_model_loads_no_view():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bankapp.models; "
         "print(sorted(m for m in sys.modules if m.endswith('.routes')))"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("name", ["flash", "redirect"])
def test_the_api_neither_flashes_nor_redirects(name):
    users = []
    for path in _modules(PACKAGE / "api"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and node.module == "flask"
                    and any(alias.name == name for alias in node.names)):
                users.append(str(path.relative_to(ROOT)))
    assert users == []


def test_models_sections_are_named_by_domain_not_by_issue():
    numbered = [f"{path.relative_to(ROOT)}: {line.strip()}"
                for path in _modules(PACKAGE / "models")
                for line in path.read_text().splitlines()
                if re.search(r"#.*\bissue \d+", line, re.IGNORECASE)]
    assert numbered == []


def test_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    broken = [target for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
              if "://" not in target and not (ROOT / target).exists()]
    assert broken == []
