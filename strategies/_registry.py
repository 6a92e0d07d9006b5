"""Find strategies by name (a module in ``strategies/``) or by ``path/to/file.py:ClassName``.

Public as :func:`strategies.load_strategy`, :func:`strategies.available` and
:class:`strategies.StrategyNotFound`. The registry lives with the ready strategies, above the
engine: :mod:`tradenn.backtest` takes strategy classes and never looks a name up.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from pathlib import Path

from tradenn.backtest.portfolio import PortfolioStrategy
from tradenn.backtest.strategy import Strategy, StrategyBase
from tradenn.errors import TradennError, raised_at


class StrategyNotFound(TradennError):
    """No strategy matches the name or path given."""


def _strategy_in(module, origin: str, class_name: str | None = None) -> type[StrategyBase]:
    classes = {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, StrategyBase)
        and obj not in (StrategyBase, Strategy, PortfolioStrategy)
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


def _ready_names() -> list[str]:
    """Module names of the ready strategies: no private module (``_registry``), no subpackage
    (``adapters``)."""
    import strategies

    return sorted(
        info.name
        for info in pkgutil.iter_modules(strategies.__path__)
        if not info.ispkg and not info.name.startswith("_")
    )


def available() -> dict[str, type[StrategyBase]]:
    """Every ready strategy in the ``strategies`` package, by module name.

    Returns
    -------
    dict
        Module name -> Strategy class, sorted by name. Private modules and subpackages
        (:mod:`strategies.adapters`) are not strategies and are skipped.
    """
    return {name: load_strategy(name) for name in _ready_names()}


def _run_file(path: Path, label: str):
    """Run a user's strategy file as a module (their own code, run as Python); what goes wrong
    while it runs is one :class:`StrategyNotFound` naming the file."""
    name = f"_tradenn_user_strategy_{abs(hash(path.resolve()))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except SystemExit as stop:
        sys.modules.pop(name, None)
        raise StrategyNotFound(
            f"{label}: the file called sys.exit({stop.code!r}) while loading"
        ) from None
    except (KeyboardInterrupt, MemoryError):
        sys.modules.pop(name, None)
        raise
    except BaseException as error:
        sys.modules.pop(name, None)
        line = raised_at(error, path)
        where = f" (line {line})" if line is not None else ""
        raise StrategyNotFound(
            f"{label}{where}: loading it failed: {type(error).__name__}: {error}"
        ) from None
    return module


def load_strategy(spec: str) -> type[StrategyBase]:
    """Resolve ``sma_cross``, ``strategies.sma_cross``, ``file.py`` or ``file.py:ClassName``.

    Parameters
    ----------
    spec : str
        A ready strategy's module name (optionally prefixed ``strategies.``), or the path of a
        Python file, optionally followed by ``:ClassName`` when it defines several strategies.
        A file is run as Python: load only code you trust.

    Returns
    -------
    type[Strategy]
        The strategy class.

    Raises
    ------
    StrategyNotFound
        No such file, no such ready strategy, or no single matching Strategy class.
    """
    path_part, _, class_name = spec.partition(":")
    if path_part.endswith(".py"):
        path = Path(path_part)
        if not path.is_file():
            raise StrategyNotFound(f"{path_part}: no such file")
        return _strategy_in(_run_file(path, path_part), path_part, class_name or None)
    if not all(part.isidentifier() for part in path_part.split(".")):
        hint = ""
        if Path(path_part).is_file():
            hint = (
                f"; a data file goes to --data {path_part}" if not path_part.endswith(".py") else ""
            )
        raise StrategyNotFound(
            f"{spec!r} is neither a ready strategy (names: {', '.join(available())}) nor a "
            f"Python file (path.py or path.py:ClassName){hint}"
        )
    module_name = path_part if path_part.startswith("strategies.") else f"strategies.{path_part}"
    name = module_name.removeprefix("strategies.")
    if "." not in name and name not in _ready_names():  # a private module or a subpackage
        names = ", ".join(available())
        raise StrategyNotFound(f"unknown strategy {spec!r}; available: {names}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, "strategies"):
            raise
        names = ", ".join(available())
        raise StrategyNotFound(f"unknown strategy {spec!r}; available: {names}") from None
    return _strategy_in(module, path_part, class_name or None)
