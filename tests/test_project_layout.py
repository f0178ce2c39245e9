"""The README's "Project layout" table matches the tree: it names every module and package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Project layout\n")
    return readme[start : readme.index("\n## ", start + 1)]


def test_the_layout_names_every_module_of_the_app():
    section = _layout_section()
    named = set(re.findall(r"`([^`]+)`", section))
    words = {part for name in named for part in re.split(r"[/.\s()]+", name) if part}
    missing = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT)
        if "data" in relative.parts or path.stem == "__init__" and path.parent.name != "app":
            continue
        if str(relative) not in named and path.stem not in words:
            missing.append(str(relative))
    for package in sorted(p for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()):
        if f"app/{package.name}/" not in named and package.name not in words:
            missing.append(f"app/{package.name}/")
    assert not missing, f"not in the README's Project layout: {missing}"


def test_every_path_the_layout_names_exists():
    named = re.findall(r"`((?:app|tests|bench|docker|sql)/[^`]*)`", _layout_section())
    assert named
    gone = [name for name in named if not (ROOT / name.split("<")[0]).exists()]
    assert not gone, f"the README's Project layout names paths that do not exist: {gone}"


def test_the_wheel_ships_every_package_of_the_app():
    """A package missing from pyproject's list works in a checkout but not once installed."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "app").rglob("__init__.py")
    }
    assert found - listed == set()
