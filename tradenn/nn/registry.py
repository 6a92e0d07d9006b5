"""Name registries that turn configuration (strings or dicts) back into objects.

Every family of configurable objects in :mod:`tradenn.nn` (layers, activations, losses,
initializers, regularizers, optimizers, learning-rate schedules) has one :class:`Registry`.
A registry maps a class name (``"Dense"``) and its short aliases (``"dense"``) to the class,
so that a model written to disk as JSON can be rebuilt without pickle.

Serialized form
---------------
An object whose ``get_config()`` is empty serializes to its short name (``"relu"``);
otherwise to ``{"class_name": "LeakyReLU", "config": {"negative_slope": 0.1}}``.
Both forms, and ready-made instances, are accepted wherever an identifier is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """A mapping from names to classes of one kind (``"activation"``, ``"loss"``, ...).

    Parameters
    ----------
    kind : str
        What the registry holds; used in error messages ("Unknown loss 'msee'").
    base : type, optional
        The class everything :meth:`get` returns must be an instance of (None included);
        without it anything goes and None stays None.
    """

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type] = {}

    def register(self, *aliases: str) -> Callable[[type[T]], type[T]]:
        """Class decorator registering a class under its class name and ``aliases``.

        The first alias becomes the class's short ``name`` (used when serializing).
        """

        def decorate(cls: type[T]) -> type[T]:
            self.add(cls, aliases)
            return cls

        return decorate

    def add(self, cls: type, aliases: tuple[str, ...] | list[str] = ()) -> None:
        """Register ``cls`` under ``cls.__name__`` and every alias.

        Re-registering the same class (same module and qualified name, as happens when a
        module is reloaded) replaces the entry; a different class under a taken name is an
        error, because loading a saved model would silently pick one of the two.
        """
        if aliases:
            cls.name = aliases[0]
        for key in (cls.__name__, *aliases):
            known = self._classes.get(key)
            if known is not None and _qualified(known) != _qualified(cls):
                raise ValueError(
                    f"Cannot register {self.kind} {_qualified(cls)} as '{key}': "
                    f"the name is taken by {_qualified(known)}"
                )
            self._classes[key] = cls

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def get_class(self, name: str) -> type:
        """The class registered under ``name``; ``ValueError`` listing the known names if none."""
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ValueError(f"Unknown {self.kind} '{name}'. Known: {known}") from None

    def get(self, identifier: Any) -> Any:
        """Resolve a name, a serialized dict or an instance to an instance.

        Without a ``base``, ``None`` is returned unchanged so that optional arguments stay
        optional; with one, anything that is not an instance of it is a TypeError.
        """
        resolved = self._resolve(identifier)
        if self.base is not None and not isinstance(resolved, self.base):
            article = "an" if self.kind[0] in "aeiou" else "a"
            raise TypeError(
                f"Expected {article} {self.kind} name or {self.base.__name__} instance, "
                f"got {identifier!r}"
            )
        return resolved

    def _resolve(self, identifier: Any) -> Any:
        if identifier is None:
            return None
        if isinstance(identifier, str):
            return self.get_class(identifier)()
        if isinstance(identifier, dict):
            try:
                class_name = identifier["class_name"]
                config = identifier.get("config", {})
            except (KeyError, AttributeError):
                raise ValueError(
                    f"A serialized {self.kind} must look like "
                    f"{{'class_name': ..., 'config': {{...}}}}; got {identifier!r}"
                ) from None
            cls = self.get_class(class_name)
            from_config = getattr(cls, "from_config", None)
            return from_config(config) if from_config is not None else cls(**config)
        if isinstance(identifier, type):
            raise TypeError(
                f"Pass a {self.kind} instance or name, not the class {identifier.__name__}"
            )
        return identifier

    @staticmethod
    def serialize(obj: Any) -> Any:
        """The JSON-ready form of ``obj`` (``None`` stays ``None``)."""
        if obj is None:
            return None
        config = obj.get_config()
        short = getattr(type(obj), "name", None)
        if not config and isinstance(short, str):
            return short
        return {"class_name": type(obj).__name__, "config": config}


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
