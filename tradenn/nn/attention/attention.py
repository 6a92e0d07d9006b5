"""Keras' dot-product (Luong) attention between a query and a value sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import checks
from ..base import Layer, Shape, format_shape, get_rng
from .inputs import as_sequence, is_shape_list, split_scores_gradient
from .masks import boolean_mask, causal_mask, masked_softmax, softmax_backward


@dataclass(frozen=True, slots=True)
class _ForwardCache:
    """What :meth:`Attention.backward` needs from the forward pass (``Tq``/``Tv`` steps)."""

    q: np.ndarray  # (N, Tq, D)
    v: np.ndarray  # (N, Tv, D)
    k: np.ndarray  # (N, Tv, D), v when no key was given
    separate_key: bool  # a key was given: backward returns (dq, dv, dk)
    weights: np.ndarray  # softmax of the scores, (N, Tq, Tv)
    dropped: np.ndarray  # dropout(weights); weights itself without dropout
    keep: np.ndarray | None  # the dropout mask, scaled by 1/(1 - rate)
    tanh: np.ndarray | None  # "concat" scores: tanh(scale (q_i + k_j)), (N, Tq, Tv, D)
    query_mask: np.ndarray | None  # (N, Tq)
    scores_returned: bool  # forward returned (y, weights): backward takes [dy, dweights]
    y_shape: Shape


class Attention(Layer):
    """Dot-product (Luong) attention between sequences, as Keras' ``Attention`` layer.

    Shapes: ``query (N, Tq, D)``, ``value (N, Tv, Dv)``, ``key (N, Tv, D)`` (the value
    when omitted); output ``(N, Tq, Dv)``. There are no projections: see
    :class:`MultiHeadAttention` for those.

    Forward (``s`` the learned scalar ``scale`` if ``use_scale``, else 1)::

        dot:     S = s q k^T                             (N, Tq, Tv)
        concat:  S = c sum_d tanh(s (q_i + k_j))_d       (c = concat_score_weight)
        P = softmax(S) over keys, masked entries 0       y = P v

    Backward, with ``dS = P * (dP - rowsum(P dP))`` (softmax Jacobian-vector product)::

        dP = dy v^T        dv = P^T dy
        dot:     dq = s dS k      dk = s dS^T q      ds = sum(dS * q k^T)
        concat:  dA = c dS (1 - U^2) with U = tanh(s (q_i + k_j)):
                 dq = s sum_j dA   dk = s sum_i dA   dc = sum(dS * sum_d U)
                 ds = sum(dA * (q_i + k_j))

    Unlike :class:`MultiHeadAttention` the scores are not divided by ``sqrt(D)`` (Keras
    does not either); ``use_scale=True`` learns the factor instead.

    Parameters
    ----------
    use_scale : bool
        Create the trainable scalar ``scale`` (initialized to 1).
    score_mode : {"dot", "concat"}
        Dot product of query and key, or Bahdanau's ``tanh`` of their sum.
    dropout : float
        Fraction of attention weights dropped while training.
    seed : int, optional
        Seeds this layer's dropout generator.
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"{self._label()}: score_mode must be 'dot' or 'concat', got {score_mode!r}"
            )
        checks.number(dropout, "dropout", self._label(), low=0, high=1, high_open=True)
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._cache: _ForwardCache | None = None

    def build(self, input_shape: Any) -> None:
        shapes = [tuple(s) for s in input_shape] if is_shape_list(input_shape) else None
        if shapes is None or not 2 <= len(shapes) <= 3:
            raise ValueError(
                f"{self._label()}: build expects the list of shapes [query, value] or "
                f"[query, value, key], got {input_shape!r}"
            )
        if self.use_scale:
            self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), "ones")
        self.input_shape = [(None, *s[1:]) for s in shapes]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Shape:
        query, value = input_shape[0], input_shape[1]
        return (*tuple(query)[:-1], tuple(value)[-1])

    def forward(
        self,
        query: np.ndarray,
        value: np.ndarray,
        key: np.ndarray | None = None,
        mask: Any = None,
        use_causal_mask: bool = False,
        training: bool = False,
        return_attention_scores: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Attend from ``query`` to ``value`` (keyed by ``key``, default the value).

        ``mask`` is Keras' ``[query_mask, value_mask]`` (booleans ``(N, Tq)`` and
        ``(N, Tv)``, either may be None) or just the value mask: padded values get no
        weight and outputs at padded queries are zeroed. ``use_causal_mask`` lets query
        ``i`` see keys ``j <= i`` only.
        """
        label = self._label()
        q = as_sequence(query, self.dtype, label, "query")
        v = as_sequence(value, self.dtype, label, "value")
        k = v if key is None else as_sequence(key, self.dtype, label, "key")
        if not self.built:
            self.build([q.shape, v.shape] + ([] if key is None else [k.shape]))
        if not (len(q) == len(v) == len(k)) or k.shape[1] != v.shape[1]:
            raise ValueError(
                f"{label}: query, value and key need the same batch size and key and value "
                f"the same length, got {format_shape(q.shape)}, {format_shape(v.shape)} "
                f"and {format_shape(k.shape)}"
            )
        if q.shape[-1] != k.shape[-1]:
            raise ValueError(
                f"{label}: query and key need the same feature size, "
                f"got {q.shape[-1]} and {k.shape[-1]}"
            )
        query_mask, allowed = self._masks(mask, use_causal_mask, q.shape[1], v.shape)
        scale = self.params["scale"] if self.use_scale else None

        if self.score_mode == "dot":
            scores = np.matmul(q, k.swapaxes(1, 2))
            tanh_sum = None
            if scale is not None:
                scores *= scale
        else:
            tanh_sum = q[:, :, None, :] + k[:, None, :, :]  # (N, Tq, Tv, D)
            if scale is not None:
                tanh_sum *= scale
            np.tanh(tanh_sum, out=tanh_sum)
            scores = tanh_sum.sum(axis=-1)
            scores *= self.params["concat_score_weight"]
        weights = masked_softmax(scores, allowed)
        dropped, keep = weights, None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else get_rng()
            keep = rng.random(weights.shape, dtype=self.dtype) >= self.dropout
            keep = np.multiply(keep, 1.0 / (1.0 - self.dropout), dtype=self.dtype)
            dropped = weights * keep
        y = np.matmul(dropped, v)
        if query_mask is not None:
            y *= query_mask[:, :, None]
        self._cache = _ForwardCache(
            q=q,
            v=v,
            k=k,
            separate_key=key is not None,
            weights=weights,
            dropped=dropped,
            keep=keep,
            tanh=tanh_sum,
            query_mask=query_mask,
            scores_returned=return_attention_scores,
            y_shape=y.shape,
        )
        if return_attention_scores:
            return y, weights.copy()
        return y

    def _masks(
        self, mask: Any, causal: bool, query_length: int, value_shape: Shape
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The query mask ``(N, Tq)`` and the allowed-scores mask ``(N, Tq, Tv)`` or None."""
        label = self._label()
        query_mask = value_mask = None
        if isinstance(mask, (list, tuple)):
            if len(mask) != 2:
                raise ValueError(f"{label}: mask must be [query_mask, value_mask], got {mask!r}")
            query_mask, value_mask = mask
        elif mask is not None:
            value_mask = mask
        batch, value_length = value_shape[0], value_shape[1]
        if query_mask is not None:
            query_mask = boolean_mask(query_mask, (batch, query_length), label, "query_mask")
            query_mask = np.broadcast_to(query_mask, (batch, query_length))
        allowed = None
        if value_mask is not None:
            value_mask = boolean_mask(value_mask, (batch, value_length), label, "value_mask")
            allowed = np.broadcast_to(value_mask, (batch, value_length))[:, None, :]
        if causal:
            lower = causal_mask(query_length, value_length)
            allowed = lower if allowed is None else np.logical_and(allowed, lower)
        return query_mask, allowed

    def backward(self, dy: Any) -> tuple[np.ndarray, ...]:
        self._require_forward(self._cache)
        cache = self._cache
        dy, d_scores = split_scores_gradient(dy, cache.scores_returned, self._label())
        dy = self._check_gradient_shape(dy, cache.y_shape)
        q, v, k, weights = cache.q, cache.v, cache.k, cache.weights
        if cache.query_mask is not None:
            dy = dy * cache.query_mask[:, :, None]
        dv = np.matmul(cache.dropped.swapaxes(1, 2), dy)
        d_weights = np.matmul(dy, v.swapaxes(1, 2))
        if cache.keep is not None:
            d_weights *= cache.keep
        if d_scores is not None:
            d_weights += self._check_gradient_shape(d_scores, weights.shape)
        d_scores = softmax_backward(weights, d_weights)

        scale = self.params["scale"] if self.use_scale else None
        if self.score_mode == "dot":
            g = np.matmul(d_scores, k)  # (dS k): dq = s g, ds = sum(g * q)
            dk = np.matmul(d_scores.swapaxes(1, 2), q)
            if scale is not None:
                self.grads["scale"][...] = np.vdot(g, q)
                g *= scale
                dk *= scale
            dq = g
        else:
            tanh_sum = cache.tanh
            c = self.params["concat_score_weight"]
            self.grads["concat_score_weight"][...] = np.vdot(d_scores, tanh_sum.sum(axis=-1))
            d_sum = 1.0 - tanh_sum * tanh_sum
            d_sum *= d_scores[..., None]
            d_sum *= c  # dA, the gradient of the tanh argument
            if scale is not None:
                pair_sum = q[:, :, None, :] + k[:, None, :, :]
                self.grads["scale"][...] = np.vdot(d_sum, pair_sum)
                d_sum *= scale
            dq, dk = d_sum.sum(axis=2), d_sum.sum(axis=1)
        if cache.separate_key:
            return dq, dv, dk
        dv += dk
        return dq, dv

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }
