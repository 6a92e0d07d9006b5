"""The Bidirectional wrapper: a recurrent layer run both ways over the sequence, merged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ... import checks
from ..base import InputSpec, Layer, Shape
from ..serialization import deserialize_layer, serialize_layer
from .base import RecurrentLayer

# --------------------------------------------------------------------------- Bidirectional

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer over the sequence in both directions and merges the outputs.

    ``layer`` is the forward layer; the backward layer is a copy made from its config (new
    name ``backward_<name>``, ``go_backwards`` flipped, its own weights) unless
    ``backward_layer`` is given. Both read the same input; with ``return_sequences`` the
    backward output is flipped back in time, so both outputs at index t belong to input
    step t. Merging (``y_f``, ``y_b`` the two outputs)::

        concat  y = [y_f, y_b] on the last axis      dy_f, dy_b = the two halves of dy
        sum     y = y_f + y_b                        dy_f = dy_b = dy
        mul     y = y_f * y_b                        dy_f = dy * y_b,  dy_b = dy * y_f
        ave     y = (y_f + y_b) / 2                  dy_f = dy_b = dy / 2
        None    y = [y_f, y_b]                       dy = [dy_f, dy_b]

    and ``dx = dx_f + dx_b``. With ``return_state`` the output is ``[y, *forward_states,
    *backward_states]`` (``[y_f, y_b, ...]`` for ``merge_mode=None``) and ``backward``
    takes the matching list (entries may be None). ``initial_state`` is the list of
    forward states followed by the backward states (Keras' half/half split); ``backward``
    then returns ``[dx, *d(forward states), *d(backward states)]``. A ``mask (N, T)`` (in
    input order) goes to both layers.

    Parameters
    ----------
    layer : RNN, LSTM or GRU
        The forward layer.
    merge_mode : {"concat", "sum", "mul", "ave", None}
        How the two outputs are combined.
    backward_layer : RNN, LSTM or GRU, optional
        Explicit backward layer; must have the opposite ``go_backwards`` and the same
        ``return_sequences`` and ``return_state`` as ``layer``.
    """

    def __init__(
        self,
        layer: RecurrentLayer,
        merge_mode: str | None = "concat",
        backward_layer: RecurrentLayer | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", getattr(layer, "dtype", None))
        super().__init__(**kwargs)
        if not isinstance(layer, RecurrentLayer):
            raise ValueError(
                f"{self._label()}: layer must be a recurrent layer (RNN, LSTM, GRU), got {layer!r}"
            )
        checks.choice(merge_mode, "merge_mode", _MERGE_MODES, self._label())
        if backward_layer is None:
            config = layer.get_config()
            config.update(name=f"backward_{layer.name}", go_backwards=not layer.go_backwards)
            backward_layer = type(layer).from_config(config)
        elif not isinstance(backward_layer, RecurrentLayer) or (
            backward_layer.go_backwards == layer.go_backwards
            or backward_layer.return_sequences != layer.return_sequences
            or backward_layer.return_state != layer.return_state
            or backward_layer._state_names != layer._state_names
        ):
            raise ValueError(
                f"{self._label()}: backward_layer must be a recurrent layer of the same kind "
                f"with the opposite go_backwards and the same return_sequences and return_state"
            )
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.layers = [layer, backward_layer]
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._outputs: tuple[np.ndarray, np.ndarray] | None = None
        self._has_initial_state = False

    @property
    def input_spec(self) -> InputSpec | None:
        return self.forward_layer.input_spec

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        for layer in self.layers:
            if layer.built:
                layer._check_input_shape(input_shape)
            else:
                layer.build(input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape | list[Shape]:
        shapes = self.forward_layer.compute_output_shape(input_shape)
        y, states = (shapes[0], shapes[1:]) if self.return_state else (shapes, [])
        if self.merge_mode == "concat":
            y = (*y[:-1], 2 * y[-1])
        outputs = [y, y] if self.merge_mode is None else [y]
        if self.return_state:
            return [*outputs, *states, *states]
        return outputs if self.merge_mode is None else y

    def forward(
        self,
        x: np.ndarray,
        initial_state: Sequence[np.ndarray] | None = None,
        mask: Any = None,
        training: bool = False,
    ) -> np.ndarray | list[np.ndarray]:
        x = self._prepare(x)
        count = len(self.forward_layer._state_names)
        forward_state = backward_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2 * count:
                raise ValueError(
                    f"{self._label()}: initial_state must be a list of {2 * count} arrays "
                    f"(the forward layer's states, then the backward layer's)"
                )
            forward_state, backward_state = list(initial_state[:count]), list(initial_state[count:])
        y_f = self.forward_layer.forward(
            x, initial_state=forward_state, mask=mask, training=training
        )
        y_b = self.backward_layer.forward(
            x, initial_state=backward_state, mask=mask, training=training
        )
        states: list[np.ndarray] = []
        if self.return_state:
            (y_f, *states_f), (y_b, *states_b) = y_f, y_b
            states = [*states_f, *states_b]
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # back to input order
        self._outputs = (y_f, y_b)
        self._has_initial_state = initial_state is not None
        if self.merge_mode is None:
            outputs = [y_f, np.ascontiguousarray(y_b)]
        elif self.merge_mode == "concat":
            outputs = [np.concatenate([y_f, y_b], axis=-1)]
        elif self.merge_mode == "mul":
            outputs = [y_f * y_b]
        else:
            y = y_f + y_b
            if self.merge_mode == "ave":
                y *= 0.5
            outputs = [y]
        if self.return_state:
            return [*outputs, *states]
        return outputs if self.merge_mode is None else outputs[0]

    def compute_mask(self, x: Any, mask: Any = None) -> np.ndarray | None:
        """The input's mask ``(N, T)`` with ``return_sequences`` (input order), else None."""
        if mask is None or not self.return_sequences:
            return None
        return np.asarray(mask, dtype=bool)

    def backward(self, dy: Any) -> np.ndarray | list[np.ndarray]:
        self._require_forward(self._outputs)
        y_f, y_b = self._outputs
        count = len(self.forward_layer._state_names)
        output_count = 2 if self.merge_mode is None else 1
        if self.merge_mode is None or self.return_state:
            expected = output_count + (2 * count if self.return_state else 0)
            if not isinstance(dy, (list, tuple)) or len(dy) != expected:
                raise ValueError(
                    f"{self._label()}: backward expects a list of {expected} gradients "
                    f"(one per output, None for zero), got {type(dy).__name__}"
                )
            output_grads, state_grads = list(dy[:output_count]), list(dy[output_count:])
        else:
            output_grads, state_grads = [dy], []
        dy_f, dy_b = self._split_merge_gradient(output_grads, y_f, y_b)
        if self.return_sequences and dy_b is not None:
            dy_b = dy_b[:, ::-1]  # the backward layer's output order
        grads_f = self._backward_through(self.forward_layer, dy_f, state_grads[:count], y_f)
        grads_b = self._backward_through(self.backward_layer, dy_b, state_grads[count:], y_b)
        if not self._has_initial_state:
            return grads_f + grads_b
        return [grads_f[0] + grads_b[0], *grads_f[1:], *grads_b[1:]]

    def _split_merge_gradient(
        self, output_grads: list[Any], y_f: np.ndarray, y_b: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.merge_mode is None:
            return tuple(
                None if g is None else self._check_gradient_shape(g, y.shape)
                for g, y in zip(output_grads, (y_f, y_b), strict=True)
            )
        if output_grads[0] is None:
            return None, None
        units = y_f.shape[-1]
        if self.merge_mode == "concat":
            dy = self._check_gradient_shape(output_grads[0], (*y_f.shape[:-1], 2 * units))
            return dy[..., :units], dy[..., units:]
        dy = self._check_gradient_shape(output_grads[0], y_f.shape)
        if self.merge_mode == "mul":
            return dy * y_b, dy * y_f
        if self.merge_mode == "ave":
            dy = dy * 0.5
        return dy, dy

    @staticmethod
    def _backward_through(
        layer: RecurrentLayer, dy: np.ndarray | None, state_grads: list[Any], y: np.ndarray
    ) -> Any:
        if layer.return_state:
            return layer.backward([dy, *state_grads])
        return layer.backward(np.zeros_like(y) if dy is None else dy)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": serialize_layer(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": serialize_layer(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        config = dict(config)
        layer = deserialize_layer(config.pop("layer"))
        backward_layer = config.pop("backward_layer", None)
        if backward_layer is not None:
            backward_layer = deserialize_layer(backward_layer)
        return cls(layer, backward_layer=backward_layer, **config)
