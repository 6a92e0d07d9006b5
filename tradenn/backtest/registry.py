"""Find strategies by name (a module in ``strategies/``) or by ``path/to/file.py:ClassName``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from pathlib import Path

from tradenn.backtest.strategy import Strategy
from tradenn.errors import TradennError


class StrategyNotFound(TradennError):
    """No strategy matches the name or path given."""


def _strategy_in(module, origin: str, class_name: str | None = None) -> type[Strategy]:
    classes = {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and obj.__module__ == module.__name__
    }
    if class_name is not None:
        if class_name not in classes:
            found = ", ".join(classes) or "none"
            raise StrategyNotFound(f"{origin}: no Strategy class {class_name!r} (found: {found})")
        return classes[class_name]
    if len(classes) != 1:
        found = ", ".join(classes) or "none"
        raise StrategyNotFound(
            f"{origin}: expected exactly one Strategy class, found {found}; "
            f"name one as {origin}:ClassName"
        )
    return next(iter(classes.values()))


def available() -> dict[str, type[Strategy]]:
    """Every strategy in the ``strategies`` package, by module name."""
    import strategies

    found = {}
    for info in sorted(pkgutil.iter_modules(strategies.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            found[info.name] = load_strategy(info.name)
    return found


def load_strategy(spec: str) -> type[Strategy]:
    """Resolve ``sma_cross``, ``strategies.sma_cross``, ``file.py`` or ``file.py:ClassName``."""
    path_part, _, class_name = spec.partition(":")
    if path_part.endswith(".py"):
        path = Path(path_part)
        if not path.is_file():
            raise StrategyNotFound(f"{path_part}: no such file")
        name = f"_tradenn_user_strategy_{abs(hash(path.resolve()))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)  # the user's own strategy code, run as Python
        return _strategy_in(module, path_part, class_name or None)
    module_name = path_part if path_part.startswith("strategies.") else f"strategies.{path_part}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, "strategies"):
            raise
        names = ", ".join(available())
        raise StrategyNotFound(f"unknown strategy {spec!r}; available: {names}") from None
    return _strategy_in(module, path_part, class_name or None)
