"""The layer contract: :class:`Layer`, dtype policy, random seeding and module traversal.

A layer is an object with

* ``forward(x, training=False) -> y`` which stores what ``backward`` needs,
* ``backward(dy) -> dx`` which writes dL/dparam into ``grads`` and returns dL/dx,
* ``params`` and ``grads``: dicts with the same keys; ``params`` holds the live arrays that
  ``forward`` reads, so an optimizer updates them in place,
* ``state``: arrays that are saved with the model but not trained (e.g. moving averages).

Anything that composes layers (``Sequential``, a hand-written transformer) exposes them as
``layers``; :func:`walk` and :func:`parameters` traverse such objects, which is all the
optimizers, ``gradcheck`` and serialization rely on.

Writing a layer
---------------
Subclass :class:`Layer` (the subclass joins the layer registry under its class name, so
saved models find it), create weights in ``build`` with :meth:`Layer.add_weight`, start
``forward`` with ``x = self._prepare(x)`` (lazy build, dtype cast, shape check), overwrite
``self.grads[...]`` in ``backward`` (never accumulate) and finish it with
``self._add_regularization_gradients()`` if the layer takes regularizers. Never write into
``x`` or ``dy``: they belong to the caller. Return constructor arguments from ``get_config``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import initializers as init_lib
from . import regularizers as reg_lib
from .registry import Registry

Shape = tuple  # a shape; None stands for an unknown size (the batch axis)

# values that layers built in this context may still allocate (None: no limit); see weight_budget
_budget: ContextVar[list[int] | None] = ContextVar("tradenn_nn_weight_budget", default=None)


class WeightBudgetError(ValueError):
    """A layer built inside :func:`weight_budget` asked for more values than the budget left."""


@contextmanager
def weight_budget(values: int) -> Iterator[None]:
    """Within the block, the layers built may allocate at most ``values`` parameter and state
    values in all; one that asks for more raises :class:`WeightBudgetError` *before* allocating.

    Loading a model builds it from its config under a budget of the values its file holds, so a
    config declaring a layer of 10**12 units is refused instead of exhausting memory.
    """
    token = _budget.set([int(values)])
    try:
        yield
    finally:
        _budget.reset(token)


def _spend(layer: Layer, name: str, shape: tuple) -> None:
    """Charge ``shape``'s values to the active budget (if any)."""
    left = _budget.get()
    if left is None:
        return
    count = math.prod(int(size) for size in shape)
    if count > left[0]:
        raise WeightBudgetError(
            f"{layer.name}'s {name!r} of shape {shape} is {count} values, more than the "
            f"{left[0]} left"
        )
    left[0] -= count


LAYERS = Registry("layer")

# --------------------------------------------------------------------------- dtype policy

_default_dtype = np.dtype(np.float32)
_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype: Any, owner: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"{owner}: dtype must be float32 or float64, got {dtype}")
    return dtype


def set_dtype(dtype: Any) -> None:
    """Set the dtype (float32 or float64) that layers created from now on compute in.

    float32 is the default (fast); float64 is for gradient checks.
    """
    global _default_dtype
    _default_dtype = _float_dtype(dtype, "set_dtype")


def get_dtype() -> np.dtype:
    """The floating dtype new layers default to (``float32`` unless :func:`set_dtype` ran)."""
    return _default_dtype


# --------------------------------------------------------------------------- randomness

_rng = np.random.default_rng()


def set_seed(seed: int | None) -> None:
    """Reseed the generator behind weight initialization, dropout and batch shuffling.

    With the same seed, models built and trained afterwards get the same weights, dropout
    masks, batch order and therefore losses.
    """
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """The generator used wherever no explicit ``seed`` was given."""
    return _rng


def child_seeds(seed: int | None, count: int) -> list[int | None]:
    """``count`` independent integer seeds derived from ``seed`` (all None without one), for
    the parts of a composite layer or model."""
    if seed is None:
        return [None] * count
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


# --------------------------------------------------------------------------- input specs


@dataclass(frozen=True)
class InputSpec:
    """What a layer accepts: an exact or minimum rank and fixed sizes on some axes.

    Parameters
    ----------
    ndim : int, optional
        Exact number of dimensions, batch axis included.
    min_ndim : int, optional
        Minimum number of dimensions.
    axes : dict[int, int]
        Required sizes of given axes, e.g. ``{-1: 64}`` for 64 features in the last axis.
    """

    ndim: int | None = None
    min_ndim: int | None = None
    axes: dict[int, int] = field(default_factory=dict)

    def accepts(self, shape: Shape) -> bool:
        """Whether an input of ``shape`` (batch axis included) satisfies the spec."""
        rank = len(shape)
        if self.ndim is not None and rank != self.ndim:
            return False
        if self.min_ndim is not None and rank < self.min_ndim:
            return False
        for axis, size in self.axes.items():
            if not -rank <= axis < rank or shape[axis] not in (size, None):
                return False
        return True

    def describe(self) -> str:
        """The accepted shapes written like a shape: ``(None, ..., 64)``."""
        rank = (
            self.ndim or self.min_ndim or max([a + 1 if a >= 0 else -a for a in self.axes] or [1])
        )
        dims: list[str] = ["None"] * rank
        for axis, size in self.axes.items():
            dims[axis] = str(size)
        if self.ndim is None:
            dims.insert(1 if rank > 1 else 0, "...")
        return "(" + ", ".join(dims) + ")"


def format_shape(shape: Shape) -> str:
    """``(None, 64)`` style rendering used in messages and summaries."""
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


# --------------------------------------------------------------------------- naming

_name_counters: defaultdict[str, itertools.count] = defaultdict(itertools.count)


def _snake_case(name: str) -> str:
    name = re.sub(r"(\d)D$", r"\1d", name)  # Conv2D -> conv2d, as Keras names it
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def _unique_name(cls_name: str) -> str:
    base = _snake_case(cls_name)
    index = next(_name_counters[base])
    return base if index == 0 else f"{base}_{index}"


# --------------------------------------------------------------------------- the base class


def extends_constructor(consumed: int = 0):
    """Class decorator for a layer whose ``__init__`` takes its own arguments and passes the
    rest (``*args``, ``**kwargs``) on to its base's ``__init__``.

    It gives the constructor its whole signature, as ``help()``, ``inspect.signature`` and
    notebooks show it: the layer's own positional arguments, then the base's that ``*args``
    reaches (after the first ``consumed``, which the layer passes itself, e.g. ``units``),
    then the keyword-only ones of both. Too many positional arguments are an error that names
    the layer (not the base class Python would name).
    """
    kind = inspect.Parameter

    def decorate(cls: type) -> type:
        init = cls.__dict__["__init__"]
        self_param, *own = inspect.signature(init).parameters.values()
        _, *base = inspect.signature(super(cls, cls).__init__).parameters.values()
        own_names = {p.name for p in own}
        own_positional = [p for p in own if p.kind is kind.POSITIONAL_OR_KEYWORD]
        base_positional = [p for p in base if p.kind is kind.POSITIONAL_OR_KEYWORD][consumed:]
        base_keyword = [p for p in base if p.kind is kind.KEYWORD_ONLY]
        if not any(p.kind is kind.VAR_POSITIONAL for p in own):  # reached by keyword only
            base_keyword = [p.replace(kind=kind.KEYWORD_ONLY) for p in base_positional]
            base_keyword += [p for p in base if p.kind is kind.KEYWORD_ONLY]
            base_positional = []
        signature = inspect.Signature(
            [
                self_param,
                *own_positional,
                *base_positional,
                *(p for p in own if p.kind is kind.KEYWORD_ONLY),
                *(p for p in base_keyword if p.name not in own_names),
                *(p for p in base if p.kind is kind.VAR_KEYWORD),
            ]
        )
        limit = len(own_positional) + len(base_positional)

        @functools.wraps(init)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if len(args) > limit:
                raise TypeError(
                    f"{type(self).__name__}: takes at most {limit} positional arguments, "
                    f"got {len(args)}"
                )
            init(self, *args, **kwargs)

        __init__.__signature__ = signature
        cls.__init__ = __init__
        return cls

    return decorate


class Layer:
    """Base class of all layers: lazy build, parameter bookkeeping, configuration.

    Parameters
    ----------
    name : str, optional
        Unique, human-readable name; defaults to the snake-cased class name plus a counter.
    trainable : bool
        If False, optimizers leave this layer's parameters alone (and normalization layers
        run on their moving statistics).
    dtype : numpy dtype, optional
        float32 or float64, for parameters and computations; :func:`get_dtype` if omitted.

    Any other keyword (one a subclass did not take) is a TypeError naming the layer's class.

    Attributes
    ----------
    params, grads : dict[str, ndarray]
        Trainable arrays and their gradients, same keys, same shapes.
    state : dict[str, ndarray]
        Non-trainable arrays saved with the model (moving averages).
    regularizers : dict[str, Regularizer]
        Penalties on some params, added to the loss and to ``grads``.
    input_spec : InputSpec or None
        Accepted input shapes, checked on every ``forward``.
    """

    input_spec: InputSpec | None = None

    #: False while a training step runs ``backward`` on the first layer of a model: nothing
    #: consumes dL/dx there, so a layer may skip computing it and return None. The caller
    #: sets it for the duration of one ``backward`` call (see :func:`backward_without_input_grad`).
    needs_input_grad: bool = True

    #: Whether the layer passes an incoming mask on unchanged (Keras' ``supports_masking``):
    #: true of layers that work on each time step alone (Dense, Dropout, ...). See
    #: :meth:`compute_mask`.
    supports_masking: bool = False

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register:
            LAYERS.add(cls)

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        **unknown: Any,
    ) -> None:
        if unknown:  # subclasses pass on what they do not take: a misspelt keyword ends here
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument {next(iter(unknown))!r}"
            )
        self.name = name if name is not None else _unique_name(type(self).__name__)
        self.trainable = trainable
        self.dtype = _float_dtype(dtype, self._label()) if dtype is not None else get_dtype()
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.regularizers: dict[str, reg_lib.Regularizer] = {}
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self._workspaces: dict[str, np.ndarray] = {}  # see _workspace

    # ------------------------------------------------------------------ building

    def build(self, input_shape: Shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis included).

        Subclasses create their weights and then call ``super().build(input_shape)``.
        """
        input_shape = tuple(input_shape)
        self.input_shape = (None, *input_shape[1:])
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for inputs of ``input_shape``; identity unless overridden."""
        return tuple(input_shape)

    def add_weight(
        self,
        name: str,
        shape: Shape,
        initializer: Any = "zeros",
        regularizer: Any = None,
    ) -> np.ndarray:
        """Create trainable parameter ``name`` and its (zeroed) gradient buffer."""
        _spend(self, name, tuple(shape))
        value = init_lib.get(initializer)(tuple(shape), self.dtype)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        regularizer = reg_lib.get(regularizer)
        if regularizer is not None:
            self.regularizers[name] = regularizer
        return value

    def add_state(self, name: str, shape: Shape, initializer: Any = "zeros") -> np.ndarray:
        """Create non-trainable array ``name`` (saved with the model, not optimized)."""
        _spend(self, name, tuple(shape))
        value = init_lib.get(initializer)(tuple(shape), self.dtype)
        self.state[name] = value
        return value

    # ------------------------------------------------------------------ the contract

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for ``x``; keep what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """Given dL/dy of the last ``forward``, store dL/dparams in ``grads``; return dL/dx."""
        raise NotImplementedError

    def compute_mask(self, x: Any, mask: Any = None) -> np.ndarray | None:
        """The mask of the output for input ``x`` carrying ``mask`` (Keras' ``compute_mask``).

        Masks are boolean ``(N, T)``, True at the time steps that hold data. By default a
        layer that ``supports_masking`` passes ``mask`` on and any other layer drops it;
        :class:`~tradenn.nn.core.Embedding` creates one, recurrent layers keep it only
        with ``return_sequences``. :class:`~tradenn.nn.model.Sequential` chains them.
        """
        return mask if self.supports_masking else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ helpers for subclasses

    def _workspace(self, name: str, shape: Shape) -> np.ndarray:
        """Scratch array ``name`` of ``shape`` in the layer dtype, reused while both stay.

        A workspace holds one call's intermediate values and is never handed to a caller
        (outputs and gradients are fresh arrays), so reusing it is invisible outside; it
        saves the allocation (and, for large arrays, the page faults) on every step.
        """
        buffer = self._workspaces.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != self.dtype:
            buffer = self._workspaces[name] = np.empty(shape, dtype=self.dtype)
        return buffer

    def _prepare(self, x: Any) -> np.ndarray:
        """Cast ``x`` to the layer dtype, build on first use and check the input spec."""
        x = np.asarray(x, dtype=self.dtype)
        if not self.built:
            self.build(x.shape)
        self._check_input_shape(x.shape)
        return x

    def _check_input_shape(self, shape: Shape) -> None:
        spec = self.input_spec
        if spec is not None and not spec.accepts(shape):
            raise ValueError(
                f"{self._label()}: expected input of shape {spec.describe()}, "
                f"got {format_shape(shape)}"
            )

    def _check_gradient_shape(self, dy: np.ndarray, expected: Shape) -> np.ndarray:
        """Cast ``dy`` to the layer dtype and check it matches the last output's shape."""
        dy = np.asarray(dy, dtype=self.dtype)
        if dy.shape != tuple(expected):
            raise ValueError(
                f"{self._label()}: backward expected dy of shape {format_shape(expected)} "
                f"(the shape of the last output), got {format_shape(dy.shape)}"
            )
        return dy

    def _require_forward(self, cached: Any) -> None:
        if cached is None:
            raise RuntimeError(f"{self._label()}: backward called before forward")

    def _add_regularization_gradients(self) -> None:
        for key, regularizer in self.regularizers.items():
            regularizer.add_gradient(self.params[key], self.grads[key])

    def _label(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    # ------------------------------------------------------------------ introspection

    def regularization_loss(self) -> float:
        """Sum of this layer's own weight penalties."""
        return float(sum(r(self.params[k]) for k, r in self.regularizers.items()))

    def count_params(self) -> int:
        """Scalars in ``params`` and ``state`` of this layer and any sub-layers (0 unbuilt)."""
        return int(
            sum(
                a.size
                for layer in walk(self)
                for a in (*layer.params.values(), *layer.state.values())
            )
        )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that recreate this layer (without its weights)."""
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Recreate a layer from :meth:`get_config` output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def backward_without_input_grad(layer: Any, dy: Any) -> Any:
    """``layer.backward(dy)`` with ``needs_input_grad`` off: parameter gradients only.

    Layers that honour the flag return None instead of dL/dx (for the first layer of a
    network that is the largest product of the backward pass, wasted work); the others
    return dL/dx as usual.
    """
    layer.needs_input_grad = False
    try:
        return layer.backward(dy)
    finally:
        layer.needs_input_grad = True


# --------------------------------------------------------------------------- traversal


def walk(module: Any) -> Iterator[Any]:
    """Yield ``module`` and, depth first, every layer it contains through ``layers``.

    A layer used in several places is yielded once, so its parameters are updated once.
    """
    seen: set[int] = set()

    def visit(node: Any) -> Iterator[Any]:
        if id(node) in seen:
            return
        seen.add(id(node))
        yield node
        for child in getattr(node, "layers", ()):
            yield from visit(child)

    return visit(module)


def parameters(module: Any) -> list[tuple[Any, str, bool]]:
    """Every parameter of ``module`` as ``(layer, key, trainable)``, in a stable order.

    The order (depth-first over ``layers``, then dict order of ``params``) is what
    optimizer state and saved weights are keyed by. A parameter is trainable when its
    layer and every container above it are.
    """
    found: list[tuple[Any, str, bool]] = []
    seen: set[int] = set()

    def visit(node: Any, trainable: bool) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        trainable = trainable and getattr(node, "trainable", True)
        for key in getattr(node, "params", {}):
            found.append((node, key, trainable))
        for child in getattr(node, "layers", ()):
            visit(child, trainable)

    visit(module, True)
    return found


def regularization_loss(module: Any) -> float:
    """Sum of the weight penalties of every layer in ``module``."""
    return float(
        sum(
            layer.regularization_loss()
            for layer in walk(module)
            if hasattr(layer, "regularization_loss")
        )
    )
