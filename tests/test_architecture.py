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


# --- one definition per shared thing (DESIGN.md: import it, never restate it) ------------------------------
# The emulator is a program of its own (it also runs as `python -m cfai.emulator`); its server thread and its
# names are its own, so these checks cover the app: the core, the components, the pages and app.py.
APP_SOURCES = sorted(
    [p for p in (ROOT / "cfai").rglob("*.py") if "emulator" not in p.relative_to(ROOT).parts]
    + list((ROOT / "components").glob("*.py")) + list((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
)


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _assigned_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign | ast.AugAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _defined_functions(tree: ast.AST) -> set[str]:
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _string_constants(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_threads_are_started_only_by_cfai_jobs():
    starters = {"Thread", "ThreadPoolExecutor", "Timer", "ProcessPoolExecutor", "start_new_thread"}
    offenders = []
    for path in APP_SOURCES:
        if _where(path) == "cfai/jobs.py":
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name in starters:
                    offenders.append(f"{_where(path)}:{node.lineno} {name}(...)")
    assert not offenders, "start background work with cfai.jobs instead: " + ", ".join(offenders)


@pytest.mark.parametrize(("names", "owner"), [
    ({"ROUTES", "ROUTE_ORDER", "GATEWAY_ROUTES", "COMPARE_ROUTES"}, "cfai/routes.py"),
    ({"DEFAULT_MODEL", "DEFAULT_TEXT_GENERATION_MODEL", "DEFAULT_CLASSIFICATION_MODEL", "DEFAULT_TEXTGEN_MODEL",
      "DEFAULT_CLASSIFY_MODEL"}, "cfai/catalog.py"),
    ({"MISSING"}, "cfai/format.py"),
    ({"RECORD_DTYPES", "RECORD_COLUMNS"}, "cfai/records.py"),
])
def test_shared_constants_are_defined_once(names, owner):
    redefined = [f"{_where(p)}: {', '.join(sorted(_assigned_names(_tree(p)) & names))}" for p in APP_SOURCES
                 if _where(p) != owner and _assigned_names(_tree(p)) & names]
    assert not redefined, f"import these from {owner}: {redefined}"


@pytest.mark.parametrize(("functions", "owner"), [
    ({"route_sort_key", "_route_sort_key"}, "cfai/routes.py"),
    ({"measured"}, "cfai/records.py"),
    ({"format_ms", "format_ratio", "format_speedup", "format_rate", "format_percent", "_fmt", "_fmt_ms",
      "_fmt_pct"}, "cfai/format.py"),
    ({"scrub_secrets", "_scrub"}, "cfai/errors.py"),
])
def test_shared_functions_are_defined_once(functions, owner):
    redefined = [f"{_where(p)}: {', '.join(sorted(_defined_functions(_tree(p)) & functions))}" for p in APP_SOURCES
                 if _where(p) != owner and _defined_functions(_tree(p)) & functions]
    assert not redefined, f"import these from {owner}: {redefined}"


def test_route_names_and_default_model_ids_are_not_restated():
    literals = {
        "gateway-skip": "cfai/routes.py",  # the one route name only the comparison knows
        "@cf/huggingface/distilbert-sst-2-int8": "cfai/catalog.py",
    }
    # Per-model data tables name every model, the default among them: that is data, not a restated default.
    model_tables = {"cfai/pricing.py"}
    restated = [f"{_where(p)}: {text!r}" for p in APP_SOURCES for text, owner in literals.items()
                if _where(p) not in {owner, *model_tables} and text in _string_constants(_tree(p))]
    assert not restated, restated


def test_one_missing_value_glyph():
    """'n/a' was the other glyph for a missing number; `cfai.format.MISSING` ("–") is the one."""
    assert not [_where(p) for p in APP_SOURCES if "n/a" in _string_constants(_tree(p))]
