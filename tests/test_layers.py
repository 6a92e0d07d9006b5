"""The layers stay layered: every module of ``tradenn`` imports only from the layers below it.

Data flows one way: data -> features -> models/rl -> backtest -> reports/CLI/live. The engine
(``tradenn/backtest``) knows no model, agent, ready strategy or command line: the adapters that
turn a forecaster or an agent into a strategy live in ``strategies/adapters``, above it. The
neural-network library (``tradenn/nn``) stands alone: of the rest of ``tradenn`` it imports only
the two modules every part shares, ``tradenn.errors`` and ``tradenn.checks``, which import
nothing but the standard library (and numpy, for the checks).

Every module is parsed with :mod:`ast`, so imports inside functions count as much as those at
the top, and a finding names the file and the line.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tradenn"

ABOVE_THE_ENGINE = (
    "tradenn.models",
    "tradenn.features",
    "tradenn.rl",
    "tradenn.live",
    "tradenn.cli",
    "strategies",
)
ABOVE_THE_MODELS = ("tradenn.backtest", "tradenn.live", "tradenn.cli", "strategies")

# (folder of tradenn, what its modules must not import, why)
RULES = [
    ("backtest", ABOVE_THE_ENGINE, "the engine knows no model, agent, strategy or CLI"),
    ("models", ABOVE_THE_MODELS, "models sit below the engine"),
    ("rl", ABOVE_THE_MODELS, "agents sit below the engine"),
    ("features", ("tradenn.models", "tradenn.rl", *ABOVE_THE_MODELS), "features feed models"),
    (
        "data",
        ("tradenn.features", "tradenn.models", "tradenn.rl", "tradenn.nn", *ABOVE_THE_MODELS),
        "data is the bottom layer",
    ),
]

# the modules every part of tradenn may import, the neural-network library and the account
# included: they import nothing of tradenn themselves
SHARED = ("tradenn.errors", "tradenn.checks")

DYNAMIC = {"import_module", "__import__"}


def module_name(path: Path, root: Path = ROOT) -> str:
    """The dotted name of the module in ``path`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """Every ``(line, dotted name)`` the module in ``path`` imports, wherever the import is.

    ``from a.b import c`` yields ``a.b.c`` (``c`` may be a module); relative imports are
    resolved against the module's package. ``importlib.import_module("x")`` and
    ``__import__("x")`` yield ``x``; with a name that is not a literal they yield ``"?"``.
    """
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.extend(
                (node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")
                for alias in node.names
            )
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in DYNAMIC and node.args:
                first = node.args[0]
                literal = isinstance(first, ast.Constant) and isinstance(first.value, str)
                found.append((node.lineno, first.value if literal else "?"))
    return sorted(found)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _flagged_imports(folder: Path, root: Path, flagged: Callable[[str], bool]) -> list[str]:
    """``file:line: imports NAME`` for every import by a module in ``folder`` whose name is
    ``flagged``; a dynamic import whose name is not a literal counts too: nobody can check it."""
    problems = []
    for path in sorted(folder.rglob("*.py")):
        for line, name in imported_names(path, root):
            where = f"{path.relative_to(root).as_posix()}:{line}"
            if name == "?":
                problems.append(f"{where}: a dynamic import of a computed name")
            elif flagged(name):
                problems.append(f"{where}: imports {name}")
    return problems


def violations(folder: Path, forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """``file:line: imports NAME`` for every import of ``forbidden`` by a module in ``folder``.

    A dynamic import whose name is not a literal counts too: nobody can check it.
    """
    return _flagged_imports(
        folder, root, lambda name: any(_within(name, prefix) for prefix in forbidden)
    )


def nn_escapes(folder: Path, root: Path = ROOT) -> list[str]:
    """``file:line: imports NAME`` for every import of ``tradenn`` outside ``tradenn.nn``,
    ``tradenn.errors`` (the exceptions every part raises) and ``tradenn.checks`` (the argument
    checks every part uses); both import only the standard library and numpy."""
    return _flagged_imports(
        folder,
        root,
        lambda name: (
            _within(name, "tradenn")
            and not any(_within(name, shared) for shared in ("tradenn.nn", *SHARED))
        ),
    )


# ------------------------------------------------------------------------------- the project


@pytest.mark.parametrize("folder,forbidden,why", RULES, ids=[rule[0] for rule in RULES])
def test_no_layer_imports_from_a_layer_above_it(folder, forbidden, why):
    modules = list((PACKAGE / folder).rglob("*.py"))
    assert len(modules) >= 3, f"tradenn/{folder}: too few modules found ({len(modules)})"
    problems = violations(PACKAGE / folder, forbidden)
    assert not problems, f"{why}:\n" + "\n".join(problems)


def test_the_nn_library_imports_nothing_of_tradenn_outside_nn():
    assert len(list((PACKAGE / "nn").rglob("*.py"))) >= 10
    problems = nn_escapes(PACKAGE / "nn")
    assert not problems, "tradenn.nn stands alone:\n" + "\n".join(problems)


def test_the_errors_module_imports_only_the_standard_library():
    names = [name for _, name in imported_names(PACKAGE / "errors.py")]
    assert "pathlib.Path" in names
    assert not [name for name in names if name.split(".")[0] not in sys.stdlib_module_names]


def test_the_checks_module_imports_only_the_standard_library_and_numpy():
    names = [name for _, name in imported_names(PACKAGE / "checks.py")]
    assert "numpy" in names
    outside = {"numpy"} | set(sys.stdlib_module_names)
    assert not [name for name in names if name.split(".")[0] not in outside]


def test_every_module_of_the_package_parses_and_is_covered():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    for path in modules:
        imported_names(path)  # a syntax error here would hide a module from the rules
    covered = {"nn", *(rule[0] for rule in RULES)}
    subpackages = {p.relative_to(PACKAGE).parts[0] for p in modules if p.parent != PACKAGE}
    # a new subpackage needs a place in the rules; only the top (live) may import anything
    assert subpackages - covered == {"live"}, f"no layering rule for {subpackages - covered}"


def test_the_account_stands_below_every_part_that_moves_money():
    # backtest, live and rl all trade through tradenn.account: it may import only the shared
    # errors and checks and its own loop (tradenn.targets), which imports nothing of tradenn.
    names = [name for _, name in imported_names(PACKAGE / "account.py")]
    ours = sorted(name for name in names if _within(name, "tradenn"))
    allowed = (*SHARED, "tradenn.targets")
    assert ours and all(any(_within(name, a) for a in allowed) for name in ours), ours
    loop = [name for _, name in imported_names(PACKAGE / "targets.py")]
    assert not [name for name in loop if _within(name, "tradenn")], loop


def private_imports(root: Path = ROOT) -> list[str]:
    """``file:line: imports NAME`` for every ``from tradenn... import _name`` (another module's
    private name, or a private module) in the package and the ready strategies."""
    problems = []
    for top in ("tradenn", "strategies"):
        for path in sorted((root / top).rglob("*.py")):
            for line, name in imported_names(path, root):
                if not (_within(name, "tradenn") or _within(name, "strategies")):
                    continue
                private = [part for part in name.split(".") if part.startswith("_")]
                if any(not (p.startswith("__") and p.endswith("__")) for p in private):
                    where = f"{path.relative_to(root).as_posix()}:{line}"
                    problems.append(f"{where}: imports {name}")
    return problems


def test_no_module_imports_another_modules_private_names():
    problems = private_imports()
    # strategies/__init__.py re-exports its own registry module: a package's private part.
    problems = [p for p in problems if not p.startswith("strategies/__init__.py:")]
    assert not problems, "give shared code a public home:\n" + "\n".join(problems)


def test_the_private_import_check_finds_private_names_and_modules(fake, tmp_path):
    fake(
        "tradenn/live/loop.py",
        "from tradenn.backtest.engine import Backtest\n"  # 1: fine
        "from tradenn.backtest.engine import _warmup\n"  # 2
        "from tradenn.cli import UsageError, _parse_params\n"  # 3
        "import tradenn._private\n",  # 4
    )
    fake("strategies/x.py", "from strategies._registry import load_strategy\n")  # 1
    assert private_imports(tmp_path) == [
        "tradenn/live/loop.py:2: imports tradenn.backtest.engine._warmup",
        "tradenn/live/loop.py:3: imports tradenn.cli._parse_params",
        "tradenn/live/loop.py:4: imports tradenn._private",
        "strategies/x.py:1: imports strategies._registry.load_strategy",
    ]


# ------------------------------------------------------------------------- the checker itself


@pytest.fixture
def fake(tmp_path):
    """A fake ``tradenn`` tree under tmp_path: write(relative path, source) -> Path."""

    def write(relative: str, source: str) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        return path

    return write


def test_the_checker_finds_every_kind_of_forbidden_import(fake, tmp_path):
    fake("tradenn/backtest/__init__.py", "from tradenn.backtest.engine import Backtest\n")
    fake(
        "tradenn/backtest/engine.py",
        "import numpy as np\n"  # 1: fine
        "from tradenn.data import load\n"  # 2: fine (a layer below)
        "import tradenn.models.knn\n"  # 3
        "from tradenn import rl\n"  # 4
        "from ..features import build_features\n"  # 5 (relative)
        "\n"
        "def run(name):\n"
        "    from strategies import load_strategy\n"  # 8 (inside a function)
        "    import importlib\n"
        "    importlib.import_module('tradenn.cli')\n"  # 10
        "    return importlib.import_module(name)\n",  # 11 (computed: unreadable)
    )
    fake("tradenn/backtest/sub/__init__.py", "from ...live import loop\n")  # 1 (relative)
    problems = violations(tmp_path / "tradenn" / "backtest", ABOVE_THE_ENGINE, tmp_path)
    assert problems == [
        "tradenn/backtest/engine.py:3: imports tradenn.models.knn",
        "tradenn/backtest/engine.py:4: imports tradenn.rl",
        "tradenn/backtest/engine.py:5: imports tradenn.features.build_features",
        "tradenn/backtest/engine.py:8: imports strategies.load_strategy",
        "tradenn/backtest/engine.py:10: imports tradenn.cli",
        "tradenn/backtest/engine.py:11: a dynamic import of a computed name",
        "tradenn/backtest/sub/__init__.py:1: imports tradenn.live.loop",
    ]


def test_the_checker_keeps_nn_to_itself(fake, tmp_path):
    fake("tradenn/nn/__init__.py", '"""from tradenn import data (a docstring)."""\n')
    fake(
        "tradenn/nn/base.py",
        "from .registry import Registry\n"  # 1: fine, resolves to tradenn.nn.registry
        "from tradenn.nn.ops import softmax\n"  # 2: fine
        "from .. import features\n"  # 3
        "from ..errors import ModelFileError\n"  # 4: fine, shared
        "from tradenn.checks import positive_int\n"  # 5: fine, shared
        "from tradenn.checksum import digest\n"  # 6: a name that only starts like it
        "def f():\n"
        "    from tradenn.data import load\n",  # 8
    )
    assert nn_escapes(tmp_path / "tradenn" / "nn", tmp_path) == [
        "tradenn/nn/base.py:3: imports tradenn.features",
        "tradenn/nn/base.py:6: imports tradenn.checksum.digest",
        "tradenn/nn/base.py:8: imports tradenn.data.load",
    ]
