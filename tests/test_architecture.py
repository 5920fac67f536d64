"""The layering DESIGN.md asks for, checked on the source: the core never imports Streamlit, and pages
never talk HTTP themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "cfai").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_never_imports_streamlit(path):
    assert "streamlit" not in _imports(path)


@pytest.mark.parametrize("path", sorted((ROOT / "pages").glob("*.py")), ids=lambda p: p.name)
def test_pages_never_call_http_directly(path):
    assert not _imports(path) & {"requests", "httpx", "urllib3", "http"}
