"""The house tooling passes: ruff lint and format, mypy --strict on app/; test helpers are not
copied."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TESTS = ROOT / "tests"


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "--strict", "app"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_passes(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _helper_bodies(path: Path) -> dict[str, str]:
    """Each module-level helper of `path` (not a test, not a fixture): name -> its body's AST,
    docstring left out, so a copy with another docstring or layout still matches."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("test_"):
            continue
        if any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list):
            continue
        body = node.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        found[node.name] = ast.dump(ast.Module(body=body, type_ignores=[]))
    return found


def test_no_test_module_copies_a_shared_helper():
    shared = _helper_bodies(TESTS / "helpers.py")
    copies = [
        f"{path.name}: {name}"
        for path in sorted(TESTS.glob("*.py"))
        if path.name != "helpers.py"
        for name, body in _helper_bodies(path).items()
        if body in shared.values()
    ]
    assert copies == [], "import these from tests/helpers.py instead"


def test_test_modules_import_helpers_from_helpers_not_from_each_other():
    """Importing a test module (or conftest) from another loads it twice under two names."""
    wrong = [
        f"{path.name}: from {node.module} import ..."
        for path in sorted(TESTS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith(("tests.test_", "tests.conftest"))
    ]
    assert wrong == []
