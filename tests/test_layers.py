"""Apps import downward only (STYLE.md "Layers"): a walk over every module's imports (ast, no import).

The layers, bottom first: ``revexos`` (tenancy, money, dates, the pure pricing and schedule cores, the
cycle registry) → ``contracts`` → ``discounts`` → ``billing`` → ``renewals`` → ``insights``;
``receivables`` (collections), ``integrations`` and ``audits`` sit above billing — collections below
insights (the dashboards read receivables), integrations above collections (Stripe's keys are
collections'), audits on top. A module may import its own app and the apps below it, nothing else:
neither a higher app nor a peer that is not below it. Every import counts, function-local ones
included: an import hidden inside a function to dodge a cycle is still an upward dependency.

A lower app that must react to something above it offers a registry instead (``revexos/cycle.py``,
``revexos/panels.py``, ``billing/hooks.py``, ``discounts/hooks.py``) and the higher app registers
from its AppConfig.ready() — a downward import.

Not walked, and why:
- ``tests/`` folders and ``conftest.py``: tests exercise the assembled product (a discount test
  bills an invoice); they are not imported by the product.
- ``migrations/``: generated; they name other apps' migrations as dependencies, not imports.
- The project's composition root in ``revexos/`` (COMPOSITION_ROOT below): the URL conf and API
  that mount every app's pages and routers, and the two commands that seed or start the whole
  product. They wire the apps together and hold no rule of their own.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Each app and the apps directly below it; the test closes it transitively.
DIRECTLY_BELOW: dict[str, tuple[str, ...]] = {
    "revexos": (),
    "contracts": ("revexos",),
    "discounts": ("contracts",),
    "billing": ("discounts",),
    "renewals": ("billing",),
    "receivables": ("billing",),
    "insights": ("renewals", "receivables"),
    "integrations": ("receivables",),
    "audits": ("insights", "integrations"),
}

COMPOSITION_ROOT = {
    "revexos/urls.py",
    "revexos/api.py",
    "revexos/devrun.py",
    "revexos/tenancy/management/commands/demo_setup.py",
}


def _below(app: str) -> set[str]:
    seen: set[str] = set()
    stack = list(DIRECTLY_BELOW[app])
    while stack:
        lower = stack.pop()
        if lower not in seen:
            seen.add(lower)
            stack.extend(DIRECTLY_BELOW[lower])
    return seen


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        parts = set(path.relative_to(ROOT).parts)
        if parts & {"tests", "migrations"} or path.name == "conftest.py" or rel in COMPOSITION_ROOT:
            continue
        yield rel, path


def _imported_apps(path: Path):
    """(line, module) of every absolute import of a project app in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in DIRECTLY_BELOW:
                yield node.lineno, name


def upward_imports(app: str) -> list[str]:
    allowed = _below(app) | {app}
    problems = []
    for rel, path in _modules(app):
        for line, module in _imported_apps(path):
            top = module.split(".")[0]
            if top not in allowed:
                problems.append(f"{rel}:{line} imports {module} ({top} is not below {app})")
    return problems


def test_the_layers_form_no_cycle():
    for app in DIRECTLY_BELOW:
        assert app not in _below(app), f"{app} is below itself"


@pytest.mark.parametrize("app", [app for app in DIRECTLY_BELOW if (ROOT / app).is_dir()])
def test_no_app_imports_a_higher_one(app):
    problems = upward_imports(app)
    assert not problems, "\n".join(problems)


def test_every_app_on_disk_has_a_layer():
    """A new app must say where it sits, or the walk above would not look at it."""
    apps = {
        path.parent.name
        for path in ROOT.glob("*/apps.py")
        if path.parent.name not in {".venv", "var", "test-artifacts", "bench", "tests"}
    }
    # The project package keeps its AppConfigs in sub-packages (tenancy, accounts, webhooks).
    assert apps <= set(DIRECTLY_BELOW), f"apps without a layer: {sorted(apps - set(DIRECTLY_BELOW))}"


def test_the_walk_sees_function_local_imports(tmp_path, monkeypatch):
    """The check itself: an upward import hidden in a function is reported."""
    app = tmp_path / "discounts"
    app.mkdir()
    (app / "sneaky.py").write_text("def f():\n    from billing.models import Invoice\n    return Invoice\n")
    (app / "fine.py").write_text("from contracts.models import Contract\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports("discounts") == [
        "discounts/sneaky.py:2 imports billing.models (billing is not below discounts)"
    ]
