"""Attention layers, positional encodings and the pre-LayerNorm transformer block.

* :class:`Attention`: Keras' dot-product (Luong) attention between a query and a value
  sequence, without projections.
* :class:`MultiHeadAttention`: Keras 3's multi-head scaled dot-product attention with its
  parameter layout, self- and cross-attention, masks, dropout on the attention weights and
  a key/value cache (:class:`KVCache`) for autoregressive decoding.
* :class:`SinusoidalPositionalEncoding` and :class:`PositionEmbedding`: fixed and learned
  position information, both with an ``offset`` for cached generation.
* :class:`TransformerBlock`: ``x + attention(LN(x))`` then ``h + MLP(LN(h))``, composed
  from the layers above and ``Dense``, ``Dropout``, ``LayerNormalization``.

Calling convention
------------------
Sequences are batch first, ``(N, T, D)``. Multi-input layers return one gradient per
input array they were given: ``MultiHeadAttention.forward(x)`` (self-attention) gives
``dx``; ``forward(query, value)`` gives ``(d_query, d_value)`` (the key is the value, so
``d_value`` holds both contributions); ``forward(query, value, key)`` gives
``(d_query, d_value, d_key)``. With ``return_attention_scores=True`` forward returns
``(output, weights)`` and ``backward`` takes ``dy`` or ``(dy, d_weights)``.

Masks are boolean, ``True`` = may attend. A masked position gets a weight of exactly 0 (its
score is set to ``-inf`` before the softmax). A query row whose keys are *all* masked gets
all-zero weights, so its attention output is 0 and no gradient flows through it (Keras
spreads uniform weights over the masked keys instead, PyTorch returns NaN).

The mathematics is written out in ``docs/layers.md``, section 22.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from . import activations as act_lib
from . import initializers as init_lib
from . import ops
from .base import InputSpec, Layer, Shape, format_shape, get_rng
from .core import Dense, Dropout
from .normalization import LayerNormalization

# --------------------------------------------------------------------------- softmax and masks


@lru_cache(maxsize=16)
def _ones(size: int, dtype: np.dtype) -> np.ndarray:
    ones = np.ones(size, dtype=dtype)
    ones.flags.writeable = False  # shared between callers
    return ones


def _row_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=-1, keepdims=True)``; a matrix-vector product (BLAS) when contiguous.

    numpy reduces short contiguous rows (a row of attention scores) about 8x slower than
    BLAS computes ``a @ ones``.
    """
    if not a.flags.c_contiguous:
        return a.sum(axis=-1, keepdims=True)
    rows = a.reshape(-1, a.shape[-1])
    return np.matmul(rows, _ones(a.shape[-1], a.dtype)).reshape(*a.shape[:-1], 1)


@lru_cache(maxsize=64)
def _causal_bias(query_length: int, key_length: int, offset: int, dtype: np.dtype) -> np.ndarray:
    """Additive mask ``(Tq, Tk)``: 0 where key ``j <= i + offset`` is visible, else ``-inf``.

    ``offset = 0`` is Keras' lower-triangular causal mask; in cached decoding the queries
    are the last ``Tq`` of ``Tk`` positions, ``offset = Tk - Tq``.
    """
    rows = np.arange(query_length)[:, None] + offset
    bias = np.where(np.arange(key_length)[None, :] <= rows, 0.0, -np.inf).astype(dtype)
    bias.flags.writeable = False  # shared between callers
    return bias


def causal_mask(query_length: int, key_length: int, offset: int = 0) -> np.ndarray:
    """Boolean ``(Tq, Tk)`` mask with ``True`` where query ``i`` may see key ``j <= i + offset``."""
    return np.arange(key_length)[None, :] <= np.arange(query_length)[:, None] + offset


def masked_softmax(
    scores: np.ndarray, allowed: np.ndarray | None = None, bias: np.ndarray | None = None
) -> np.ndarray:
    """Softmax over the last axis, **in place**, with masked entries given weight 0.

    ``allowed`` (boolean, broadcast to ``scores``) marks the entries that may receive
    weight; ``bias`` is an additive 0 / -inf mask (the fast path for the causal mask).
    The row maximum is subtracted before ``exp``, so nothing overflows; a masked score is
    ``-inf`` and ``exp(-inf) = 0`` exactly. Rows with no allowed entry come out all zero.
    """
    if bias is not None:
        scores += bias
    if allowed is not None:
        np.copyto(scores, -np.inf, where=np.logical_not(allowed))
    row_max = scores.max(axis=-1, keepdims=True)
    if allowed is not None:
        row_max[np.isneginf(row_max)] = 0.0  # fully masked rows: exp(-inf - 0) = 0
    scores -= row_max
    np.exp(scores, out=scores)
    total = _row_sums(scores)
    if allowed is not None:
        np.divide(1.0, total, out=total, where=total > 0.0)  # a zero total stays 0
    else:
        np.divide(1.0, total, out=total)
    scores *= total
    return scores


def softmax_backward(
    weights: np.ndarray, d_weights: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Softmax Jacobian-vector product along the last axis, **in place** on ``d_weights``.

    With ``P = softmax(S)`` row by row, ``dS = P * (dP - sum_j P_j dP_j)``. Masked entries
    (``P = 0``) get ``dS = 0``.
    """
    product = np.multiply(weights, d_weights, out=scratch)
    d_weights -= _row_sums(product)
    d_weights *= weights
    return d_weights


def _boolean_mask(mask: Any, shape: Shape, owner: str, what: str) -> np.ndarray:
    """``mask`` as a boolean array broadcastable to ``shape``, or a one-line ValueError."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "biuf":
            raise ValueError(f"{owner}: {what} must be boolean (True = attend), got {mask.dtype}")
        mask = mask != 0
    try:
        np.broadcast_shapes(mask.shape, tuple(shape))
    except ValueError:
        raise ValueError(
            f"{owner}: {what} of shape {format_shape(mask.shape)} does not fit "
            f"{format_shape(tuple(shape))}"
        ) from None
    return mask


def _child_seeds(seed: int | None, count: int) -> list[int | None]:
    """``count`` independent integer seeds derived from ``seed`` (all None without one)."""
    if seed is None:
        return [None] * count
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count)]


def _sequence(x: Any, dtype: np.dtype, owner: str, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 3:
        raise ValueError(
            f"{owner}: {what} must have shape (N, T, features), got {format_shape(x.shape)}"
        )
    return x


# --------------------------------------------------------------------------- Attention


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
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{self._label()}: dropout must be in [0, 1), got {dropout}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._ctx: dict[str, Any] | None = None

    def build(self, input_shape: Any) -> None:
        shapes = [tuple(s) for s in input_shape] if _is_shape_list(input_shape) else None
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
        q = _sequence(query, self.dtype, label, "query")
        v = _sequence(value, self.dtype, label, "value")
        k = v if key is None else _sequence(key, self.dtype, label, "key")
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
        self._ctx = {
            "q": q,
            "v": v,
            "k": k,
            "separate_key": key is not None,
            "weights": weights,
            "dropped": dropped,
            "keep": keep,
            "tanh": tanh_sum,
            "query_mask": query_mask,
            "scores_returned": return_attention_scores,
            "y_shape": y.shape,
        }
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
            query_mask = _boolean_mask(query_mask, (batch, query_length), label, "query_mask")
            query_mask = np.broadcast_to(query_mask, (batch, query_length))
        allowed = None
        if value_mask is not None:
            value_mask = _boolean_mask(value_mask, (batch, value_length), label, "value_mask")
            allowed = np.broadcast_to(value_mask, (batch, value_length))[:, None, :]
        if causal:
            lower = causal_mask(query_length, value_length)
            allowed = lower if allowed is None else np.logical_and(allowed, lower)
        return query_mask, allowed

    def backward(self, dy: Any) -> tuple[np.ndarray, ...]:
        self._require_forward(self._ctx)
        ctx = self._ctx
        dy, d_scores = _split_scores_gradient(dy, ctx["scores_returned"], self._label())
        dy = self._check_gradient_shape(dy, ctx["y_shape"])
        q, v, k, weights = ctx["q"], ctx["v"], ctx["k"], ctx["weights"]
        if ctx["query_mask"] is not None:
            dy = dy * ctx["query_mask"][:, :, None]
        dv = np.matmul(ctx["dropped"].swapaxes(1, 2), dy)
        d_weights = np.matmul(dy, v.swapaxes(1, 2))
        if ctx["keep"] is not None:
            d_weights *= ctx["keep"]
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
            tanh_sum = ctx["tanh"]
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
        if ctx["separate_key"]:
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


def _is_shape_list(shape: Any) -> bool:
    """Whether ``shape`` is a list of shapes rather than one shape."""
    return (
        isinstance(shape, (list, tuple))
        and len(shape) > 0
        and all(isinstance(s, (list, tuple)) for s in shape)
    )


def _split_scores_gradient(dy: Any, scores_returned: bool, owner: str) -> tuple[Any, Any]:
    """``(dy, d_weights)`` from a backward argument (``d_weights`` None when absent)."""
    if not scores_returned:
        return dy, None
    if isinstance(dy, (list, tuple)):
        if len(dy) != 2:
            raise ValueError(
                f"{owner}: with return_attention_scores, backward takes dy or (dy, d_weights)"
            )
        return dy[0], dy[1]
    return dy, None


# --------------------------------------------------------------------------- multi-head attention


class KVCache:
    """Keys and values of the positions a :class:`MultiHeadAttention` layer has seen.

    Used by :meth:`MultiHeadAttention.forward_cached` for autoregressive decoding:
    each call appends the keys and values of its new positions, so a new token attends
    to all earlier ones without recomputing their projections. Storage is preallocated
    for ``max_length`` positions and doubles if more are appended.

    A cache belongs to one set of weights: the layer's stacked projection weights are
    taken on first use and kept with it, so do not train while a cache is in use.

    Attributes
    ----------
    keys : ndarray (N, heads, capacity, key_dim)
    values : ndarray (N, heads, capacity, value_dim)
    length : int
        Positions stored so far; ``keys[:, :, :length]`` are valid.
    """

    def __init__(
        self,
        batch_size: int,
        num_heads: int,
        key_dim: int,
        value_dim: int,
        max_length: int,
        dtype: Any = np.float32,
    ) -> None:
        capacity = max(int(max_length), 1)
        self.keys = np.zeros((batch_size, num_heads, capacity, key_dim), dtype=dtype)
        self.values = np.zeros((batch_size, num_heads, capacity, value_dim), dtype=dtype)
        self.length = 0
        self.projection: tuple[np.ndarray, np.ndarray | None] | None = None  # set on first use

    @property
    def batch_size(self) -> int:
        """Number of sequences ``N``."""
        return self.keys.shape[0]

    def append(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store ``keys (N, H, t, K)`` and ``values (N, H, t, V)``; return all stored so far."""
        start, stop = self.length, self.length + keys.shape[2]
        capacity = self.keys.shape[2]
        if stop > capacity:
            grow = max(stop, 2 * capacity) - capacity
            pad = [(0, 0), (0, 0), (0, grow), (0, 0)]
            self.keys, self.values = np.pad(self.keys, pad), np.pad(self.values, pad)
        self.keys[:, :, start:stop] = keys
        self.values[:, :, start:stop] = values
        self.length = stop
        return self.keys[:, :, :stop], self.values[:, :, :stop]

    def reset(self) -> None:
        """Forget all positions (the storage is kept)."""
        self.length = 0

    def __repr__(self) -> str:
        n, heads, capacity, key_dim = self.keys.shape
        return (
            f"KVCache(batch_size={n}, num_heads={heads}, key_dim={key_dim}, "
            f"value_dim={self.values.shape[-1]}, length={self.length}, capacity={capacity})"
        )


class _Projection(NamedTuple):
    """One input's share of the q/k/v projections, computed as a single matrix product.

    ``roles`` names the projections this input feeds (``("query", "key", "value")`` in
    self-attention); ``weight (F, width)`` is their kernels side by side (the query's
    pre-scaled by 1/sqrt(key_dim)); ``output (M, width)`` is ``x_rows @ weight + bias``.
    """

    input_index: int
    roles: tuple[str, ...]
    x_rows: np.ndarray
    weight: np.ndarray
    output: np.ndarray


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017), Keras 3 layout.

    Shapes: ``query (N, Tq, Dq)``, ``value (N, Tk, Dv_in)``, ``key (N, Tk, Dk_in)``
    (value when omitted; ``value=None`` means self-attention on the query); output
    ``(N, Tq, D_out)``, ``D_out = output_shape`` or ``Dq``. Parameters, with ``H`` heads,
    ``K = key_dim``, ``V = value_dim``::

        query_kernel (Dq, H, K)      query_bias (H, K)
        key_kernel (Dk_in, H, K)     key_bias (H, K)
        value_kernel (Dv_in, H, V)   value_bias (H, V)
        output_kernel (H, V, D_out)  output_bias (D_out,)

    Forward, for every head ``h`` at once (batched matrix products)::

        q_h = (query Wq_h + bq_h) / sqrt(K)   k_h = key Wk_h + bk_h   v_h = value Wv_h + bv_h
        P_h = softmax(q_h k_h^T)  over keys, masked entries 0         (N, H, Tq, Tk)
        o_h = dropout(P_h) v_h                                         (N, H, Tq, V)
        y = sum_h o_h Wo_h + bo

    Backward (``dS = P * (dP - rowsum(P dP))``, the softmax Jacobian-vector product)::

        dWo_h = o_h^T dy     do_h = dy Wo_h^T     dv_h = P_h^T do_h     dP_h = do_h v_h^T
        dq_h = dS_h k_h      dk_h = dS_h^T q_h
        dWq_h = query^T dq_h / sqrt(K), dbq_h = sum dq_h / sqrt(K)  (likewise k, v unscaled)
        d_query = sum_h dq_h Wq_h^T / sqrt(K) (+ the key and value terms in self-attention)

    The projections an input feeds are one product with their kernels side by side
    (``x [Wq Wk Wv]`` in self-attention), and all heads run in batched products.

    Parameters
    ----------
    num_heads : int
        Number of attention heads ``H``.
    key_dim : int
        Size ``K`` of each head's query and key.
    value_dim : int, optional
        Size ``V`` of each head's value (default ``key_dim``).
    dropout : float
        Fraction of attention weights dropped while training.
    use_bias : bool
        Whether the four projections have biases.
    output_shape : int, optional
        Output features ``D_out`` (default: the query's feature size).
    kernel_initializer, bias_initializer
        Keras defaults ``glorot_uniform`` and ``zeros``.
    seed : int, optional
        Seeds this layer's dropout generator.

    Padding masks (``query_mask``, ``value_mask``, ``key_mask``) follow Keras 3 (see
    :meth:`forward`); the output keeps the query's mask (``supports_masking``).

    Not implemented: ``attention_axes`` (attention runs over axis 1), regularizers and
    constraints.
    """

    supports_masking = True

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        label = self._label()
        for argument, number in (("num_heads", num_heads), ("key_dim", key_dim)):
            _check_positive_int(number, argument, label)
        if value_dim is not None:
            _check_positive_int(value_dim, "value_dim", label)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{label}: dropout must be in [0, 1), got {dropout}")
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(
                    f"{label}: output_shape must be an int or a 1-tuple, got {output_shape!r}"
                )
            output_shape = output_shape[0]
        if output_shape is not None:
            _check_positive_int(output_shape, "output_shape", label)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = None if output_shape is None else int(output_shape)
        self.kernel_initializer = init_lib.get(kernel_initializer)
        self.bias_initializer = init_lib.get(bias_initializer)
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._buffers: dict[str, np.ndarray] = {}
        self._ctx: dict[str, Any] | None = None

    # ------------------------------------------------------------------ building

    def build(self, input_shape: Any) -> None:
        """Create the weights; ``input_shape`` is the query shape or ``[query, value(, key)]``."""
        shapes = [tuple(s) for s in input_shape] if _is_shape_list(input_shape) else None
        shapes = shapes or [tuple(input_shape)]
        if len(shapes) > 3 or any(len(s) != 3 or s[-1] is None for s in shapes):
            raise ValueError(
                f"{self._label()}: build expects (N, T, features) shapes for query, value and "
                f"key, got {input_shape!r}"
            )
        query_dim, value_dim = shapes[0][-1], shapes[min(1, len(shapes) - 1)][-1]
        key_dim = shapes[2][-1] if len(shapes) == 3 else value_dim
        heads, out = self.num_heads, self.output_dim or query_dim
        for role, features, size in (
            ("query", query_dim, self.key_dim),
            ("key", key_dim, self.key_dim),
            ("value", value_dim, self.value_dim),
        ):
            self.add_weight(f"{role}_kernel", (features, heads, size), self.kernel_initializer)
            if self.use_bias:
                self.add_weight(f"{role}_bias", (heads, size), self.bias_initializer)
        self.add_weight("output_kernel", (heads, self.value_dim, out), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("output_bias", (out,), self.bias_initializer)
        # the shape (or shapes) it was built for; nn.load rebuilds the layer from it
        normalized = [(None, *s[1:]) for s in shapes]
        self.input_shape = normalized[0] if len(normalized) == 1 else normalized
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Shape:
        query = tuple(input_shape[0] if _is_shape_list(input_shape) else input_shape)
        return (*query[:-1], self.output_dim or query[-1])

    def _buffer(self, name: str, shape: Shape) -> np.ndarray:
        """Workspace ``name`` (reused while shape and dtype stay; never handed to callers)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != self.dtype:
            buffer = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buffer

    def _contiguous(self, name: str, view: np.ndarray) -> np.ndarray:
        """A C-contiguous copy of ``view`` in workspace ``name``."""
        buffer = self._buffer(name, view.shape)
        np.copyto(buffer, view)
        return buffer

    # ------------------------------------------------------------------ projections

    def _role_size(self, role: str) -> int:
        return self.value_dim if role == "value" else self.key_dim

    def _stacked_weights(self, roles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        """The kernels (and biases) of ``roles`` side by side, ``(F, width)`` and ``(width,)``.

        The query's are multiplied by 1/sqrt(key_dim), which scales the scores for free.
        Rebuilt on every call: the parameters change in place between calls.
        """
        scale = 1.0 / math.sqrt(self.key_dim)
        kernels, biases = [], []
        for role in roles:
            kernel = self.params[f"{role}_kernel"]
            kernel = kernel.reshape(kernel.shape[0], -1)
            bias = self.params[f"{role}_bias"].reshape(-1) if self.use_bias else None
            if role == "query":
                kernel = kernel * scale
                bias = None if bias is None else bias * scale
            kernels.append(kernel)
            biases.append(bias)
        weight = kernels[0] if len(kernels) == 1 else np.concatenate(kernels, axis=1)
        if not self.use_bias:
            return weight, None
        return weight, biases[0] if len(biases) == 1 else np.concatenate(biases)

    def _heads(self, rows: np.ndarray, batch: int, roles: tuple[str, ...]) -> list[np.ndarray]:
        """Views ``(N, H, T, size)`` of each role's columns of ``rows (N T, width)``."""
        steps = rows.shape[0] // batch
        views, start = [], 0
        for role in roles:
            width = self.num_heads * self._role_size(role)
            block = rows.reshape(batch, steps, -1)[:, :, start : start + width]
            views.append(block.reshape(batch, steps, self.num_heads, -1).transpose(0, 2, 1, 3))
            start += width
        return views

    def _project(self, inputs: list[np.ndarray]) -> list[_Projection]:
        """q, k, v projections: one matrix product per distinct input array."""
        if len(inputs) == 1:
            plan = [(0, ("query", "key", "value"))]
        elif len(inputs) == 2:
            plan = [(0, ("query",)), (1, ("key", "value"))]
        else:
            plan = [(0, ("query",)), (2, ("key",)), (1, ("value",))]
        projections = []
        for index, roles in plan:
            x_rows = ops.as_matrix(inputs[index])
            weight, bias = self._stacked_weights(roles)
            output = np.matmul(
                x_rows,
                weight,
                out=self._buffer(f"projection_{index}", (len(x_rows), weight.shape[1])),
            )
            if bias is not None:
                output += bias
            projections.append(_Projection(index, roles, x_rows, weight, output))
        return projections

    def _split(self, projections: list[_Projection], batch: int) -> dict[str, np.ndarray]:
        views: dict[str, np.ndarray] = {}
        for projection in projections:
            heads = self._heads(projection.output, batch, projection.roles)
            views.update(zip(projection.roles, heads, strict=True))
        return views

    # ------------------------------------------------------------------ forward and backward

    def _inputs(self, query: Any, value: Any, key: Any) -> list[np.ndarray]:
        """Validated inputs ``[query]``, ``[query, value]`` or ``[query, value, key]``."""
        label = self._label()
        if value is None and key is not None:
            raise ValueError(f"{label}: a key needs a value (value=None means self-attention)")
        inputs = [_sequence(query, self.dtype, label, "query")]
        if value is not None:
            inputs.append(_sequence(value, self.dtype, label, "value"))
        if key is not None:
            inputs.append(_sequence(key, self.dtype, label, "key"))
        if not self.built:
            self.build([a.shape for a in inputs] if len(inputs) > 1 else inputs[0].shape)
        expected = (
            self.params["query_kernel"].shape[0],
            self.params["value_kernel"].shape[0],
            self.params["key_kernel"].shape[0],
        )
        names = ("query", "value", "key")
        for name, array, features in zip(names, inputs, expected, strict=False):
            if array.shape[-1] != features:
                raise ValueError(
                    f"{label}: {name} must have {features} features (the layer was built for "
                    f"them), got {format_shape(array.shape)}"
                )
        if len(inputs) == 1 and expected[1:] != (expected[0], expected[0]):
            raise ValueError(f"{label}: built for cross-attention; pass value (and key)")
        if len(inputs) == 2 and expected[2] != expected[1]:
            raise ValueError(f"{label}: built with a separate key of {expected[2]} features")
        if len({a.shape[0] for a in inputs}) > 1 or (
            len(inputs) == 3 and inputs[1].shape[1] != inputs[2].shape[1]
        ):
            raise ValueError(
                f"{label}: query, value and key need the same batch size and value and key "
                f"the same length, got {', '.join(format_shape(a.shape) for a in inputs)}"
            )
        return inputs

    def forward(
        self,
        query: np.ndarray,
        value: np.ndarray | None = None,
        key: np.ndarray | None = None,
        attention_mask: Any = None,
        use_causal_mask: bool = False,
        training: bool = False,
        return_attention_scores: bool = False,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Attend from ``query`` to ``value`` (self-attention when ``value`` is None).

        ``attention_mask`` is boolean ``(N, Tq, Tk)`` (or broadcastable), True = attend;
        ``use_causal_mask`` lets query ``i`` see keys ``j <= i`` only. ``query_mask (N,
        Tq)``, ``value_mask (N, Tk)`` and ``key_mask (N, Tk)`` are Keras 3's padding masks
        (True = real position): query ``i`` may attend key ``j`` only if
        ``query_mask[i] and value_mask[j] and key_mask[j]``. All of these combine by "and".
        A query whose keys are all masked (every padded query, with ``query_mask``) gets
        zero attention weights and the output ``output_bias`` (Keras spreads its weights
        uniformly instead); no gradient flows through its attention. With
        ``return_attention_scores`` the softmax weights ``(N, H, Tq, Tk)`` (before dropout)
        are returned too.
        """
        inputs = self._inputs(query, value, key)
        batch, query_length = inputs[0].shape[:2]
        key_length = inputs[-1].shape[1]
        attention_mask = self._with_padding_masks(
            attention_mask, (query_mask, value_mask, key_mask), batch, query_length, key_length
        )
        projections = self._project(inputs)
        views = self._split(projections, batch)
        # contiguous copies of the per-head views (strided into the projection rows): the
        # batched products below run about 1.5x faster on them, which repays the copies
        queries = self._contiguous("queries", views["query"])
        keys_t = self._contiguous("keys_t", views["key"].swapaxes(-1, -2))
        values_t = self._contiguous("values_t", views["value"].swapaxes(-1, -2))

        weights = self._buffer("weights", (batch, self.num_heads, query_length, key_length))
        np.matmul(queries, keys_t, out=weights)
        allowed, bias = self._score_mask(
            attention_mask, use_causal_mask, batch, query_length, key_length
        )
        masked_softmax(weights, allowed, bias)
        dropped, keep = weights, None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else get_rng()
            keep = self._buffer("dropout_mask", weights.shape)
            np.greater_equal(rng.random(weights.shape, dtype=self.dtype), self.dropout, out=keep)
            keep *= 1.0 / (1.0 - self.dropout)
            dropped = np.multiply(weights, keep, out=self._buffer("dropped", weights.shape))

        value_width = self.num_heads * self.value_dim
        attended = self._buffer("attended", (batch, query_length, self.num_heads, self.value_dim))
        np.matmul(dropped, values_t.swapaxes(-1, -2), out=attended.transpose(0, 2, 1, 3))
        attended_rows = attended.reshape(-1, value_width)
        y = np.matmul(attended_rows, self.params["output_kernel"].reshape(value_width, -1))
        if self.use_bias:
            y += self.params["output_bias"]
        y = y.reshape(batch, query_length, -1)
        self._ctx = {
            "inputs": [a.shape for a in inputs],
            "projections": projections,
            "queries": queries,
            "keys_t": keys_t,
            "values_t": values_t,
            "weights": weights,
            "dropped": dropped,
            "keep": keep,
            "attended_rows": attended_rows,
            "scores_returned": return_attention_scores,
            "y_shape": y.shape,
        }
        if return_attention_scores:
            return y, weights.copy()
        return y

    def _with_padding_masks(
        self,
        attention_mask: Any,
        padding_masks: tuple[Any, Any, Any],
        batch: int,
        query_length: int,
        key_length: int,
    ) -> Any:
        """``attention_mask`` and-ed with the query, value and key masks (Keras 3's rule).

        The query mask becomes ``(N, Tq, 1)`` (rows), the value and key masks ``(N, 1, Tk)``
        (columns); the result is None when no mask is given.
        """
        combined = None
        for name, mask in zip(("query_mask", "value_mask", "key_mask"), padding_masks, strict=True):
            if mask is None:
                continue
            length = query_length if name == "query_mask" else key_length
            mask = _boolean_mask(mask, (batch, length), self._label(), name)
            mask = np.broadcast_to(mask, (batch, length))
            mask = mask[:, :, None] if name == "query_mask" else mask[:, None, :]
            combined = mask if combined is None else np.logical_and(combined, mask)
        if combined is None:
            return attention_mask
        if attention_mask is None:
            return combined
        shape = (batch, query_length, key_length)
        allowed = _boolean_mask(attention_mask, shape, self._label(), "attention_mask")
        return np.logical_and(allowed, combined)

    def _score_mask(
        self, attention_mask: Any, causal: bool, batch: int, query_length: int, key_length: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(allowed, bias)`` for :func:`masked_softmax`; the causal mask alone is a bias."""
        if attention_mask is None:
            bias = _causal_bias(query_length, key_length, 0, self.dtype) if causal else None
            return None, bias
        allowed = _boolean_mask(
            attention_mask, (batch, query_length, key_length), self._label(), "attention_mask"
        )
        if allowed.ndim == 3:
            allowed = allowed[:, None]  # the same mask for every head
        if causal:
            allowed = np.logical_and(allowed, causal_mask(query_length, key_length))
        return allowed, None

    def backward(self, dy: Any) -> np.ndarray | tuple[np.ndarray, ...] | None:
        self._require_forward(self._ctx)
        ctx = self._ctx
        dy, d_scores = _split_scores_gradient(dy, ctx["scores_returned"], self._label())
        dy_rows = ops.as_matrix(self._check_gradient_shape(dy, ctx["y_shape"]))
        weights, dropped = ctx["weights"], ctx["dropped"]
        batch, heads, query_length, _ = weights.shape
        value_width = heads * self.value_dim

        output_kernel = self.params["output_kernel"].reshape(value_width, -1)
        np.matmul(
            ctx["attended_rows"].T,
            dy_rows,
            out=self.grads["output_kernel"].reshape(value_width, -1),
        )
        if self.use_bias:
            ops.sum_rows(dy_rows, out=self.grads["output_bias"])
        d_attended = np.matmul(
            dy_rows, output_kernel.T, out=self._buffer("d_attended", (len(dy_rows), value_width))
        )
        d_attended = self._contiguous(
            "d_attended_heads",
            d_attended.reshape(batch, query_length, heads, -1).transpose(0, 2, 1, 3),
        )

        d_outputs = [
            self._buffer(f"d_projection_{p.input_index}", p.output.shape)
            for p in ctx["projections"]
        ]
        d_views: dict[str, np.ndarray] = {}
        for projection, d_output in zip(ctx["projections"], d_outputs, strict=True):
            d_heads = self._heads(d_output, batch, projection.roles)
            d_views.update(zip(projection.roles, d_heads, strict=True))

        np.matmul(dropped.swapaxes(-1, -2), d_attended, out=d_views["value"])
        d_weights = np.matmul(
            d_attended, ctx["values_t"], out=self._buffer("d_weights", weights.shape)
        )
        if ctx["keep"] is not None:
            d_weights *= ctx["keep"]
        if d_scores is not None:
            d_weights += self._check_gradient_shape(d_scores, weights.shape)
        softmax_backward(weights, d_weights, self._buffer("softmax_scratch", weights.shape))
        np.matmul(d_weights, ctx["keys_t"].swapaxes(-1, -2), out=d_views["query"])
        np.matmul(d_weights.swapaxes(-1, -2), ctx["queries"], out=d_views["key"])

        input_grads: list[np.ndarray | None] = [None] * len(ctx["inputs"])
        for projection, d_output in zip(ctx["projections"], d_outputs, strict=True):
            self._projection_grads(projection, d_output)
            if self.needs_input_grad:
                dx = np.matmul(d_output, projection.weight.T)
                input_grads[projection.input_index] = dx.reshape(
                    ctx["inputs"][projection.input_index]
                )
        if len(input_grads) == 1:
            return input_grads[0]
        return None if not self.needs_input_grad else tuple(input_grads)

    def _projection_grads(self, projection: _Projection, d_output: np.ndarray) -> None:
        """Split ``x^T d_output`` (and the column sums) into the roles' kernel and bias grads."""
        features = projection.x_rows.shape[1]
        d_weight = np.matmul(
            projection.x_rows.T,
            d_output,
            out=self._buffer(f"d_weight_{projection.input_index}", (features, d_output.shape[1])),
        )
        d_bias = ops.sum_rows(d_output) if self.use_bias else None
        scale, start = 1.0 / math.sqrt(self.key_dim), 0
        for role in projection.roles:
            width = self.num_heads * self._role_size(role)
            factor = scale if role == "query" else 1.0  # the query's weights were pre-scaled
            np.multiply(
                d_weight[:, start : start + width],
                factor,
                out=self.grads[f"{role}_kernel"].reshape(features, width),
            )
            if d_bias is not None:
                np.multiply(
                    d_bias[start : start + width],
                    factor,
                    out=self.grads[f"{role}_bias"].reshape(-1),
                )
            start += width

    # ------------------------------------------------------------------ cached decoding

    def init_cache(self, batch_size: int, max_length: int) -> KVCache:
        """An empty :class:`KVCache` for ``batch_size`` sequences of up to ``max_length``."""
        return KVCache(
            batch_size, self.num_heads, self.key_dim, self.value_dim, max_length, self.dtype
        )

    def forward_cached(
        self, query: np.ndarray, cache: KVCache | None = None
    ) -> tuple[np.ndarray, KVCache]:
        """Causal self-attention for new positions, reusing the keys and values in ``cache``.

        Inference only (no dropout, no backward). ``query (N, t, D)`` holds the ``t`` new
        positions that follow the ``L = cache.length`` positions already in the cache;
        their keys and values are appended and position ``L + i`` attends to positions
        ``0 .. L + i``. Feeding a sequence in pieces gives the rows of
        ``forward(x, use_causal_mask=True)`` (up to rounding), at the cost of the new
        positions only. A new cache is made when ``cache`` is None.

        Returns
        -------
        y : ndarray (N, t, D_out)
        cache : KVCache
            The same cache, now holding ``L + t`` positions.
        """
        (x,) = self._inputs(query, None, None)
        self._ctx = None  # nothing to backpropagate through
        batch, steps = x.shape[:2]
        if cache is None:
            cache = self.init_cache(batch, steps)
        if cache.keys.shape[:2] != (batch, self.num_heads) or cache.keys.shape[3] != self.key_dim:
            raise ValueError(
                f"{self._label()}: the cache holds {cache.keys.shape[0]} sequences of "
                f"{cache.keys.shape[1]} heads x {cache.keys.shape[3]}, this call needs {batch} "
                f"of {self.num_heads} x {self.key_dim}"
            )
        if cache.projection is None:
            cache.projection = self._stacked_weights(("query", "key", "value"))
        weight, bias = cache.projection
        rows = np.matmul(ops.as_matrix(x), weight)
        if bias is not None:
            rows += bias
        q, k, v = self._heads(rows, batch, ("query", "key", "value"))
        offset = cache.length
        keys, values = cache.append(k, v)
        scores = np.matmul(q, keys.swapaxes(-1, -2))
        causal = _causal_bias(steps, offset + steps, offset, self.dtype) if steps > 1 else None
        masked_softmax(scores, bias=causal)
        attended = np.matmul(scores, values).transpose(0, 2, 1, 3).reshape(batch * steps, -1)
        y = np.matmul(attended, self.params["output_kernel"].reshape(attended.shape[1], -1))
        if self.use_bias:
            y += self.params["output_bias"]
        return y.reshape(batch, steps, -1), cache

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_dim,
            "kernel_initializer": init_lib.serialize(self.kernel_initializer),
            "bias_initializer": init_lib.serialize(self.bias_initializer),
            "seed": self.seed,
        }


def _check_positive_int(value: Any, argument: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {argument} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- positions

_POSITION_MODES = ("add", "encoding")


class SinusoidalPositionalEncoding(Layer):
    """The fixed sine/cosine position signal of Vaswani et al. (2017); no parameters.

    For position ``p`` and feature ``i`` of ``D`` (wavelengths from 2 pi to
    ``max_wavelength`` 2 pi)::

        PE[p, 2j] = sin(p / w^(2j / D))      PE[p, 2j + 1] = cos(p / w^(2j / D))

    ``mode="add"`` returns ``x + PE[offset : offset + T]`` (backward ``dx = dy``);
    ``mode="encoding"`` returns the table broadcast to ``x``'s shape, as Keras-hub's
    ``SinePositionEncoding`` (``x`` only supplies the shape; ``dx = 0``).

    Parameters
    ----------
    max_wavelength : float
        ``w`` above (10000 in the paper).
    mode : {"add", "encoding"}
        Add the encoding to the input, or return it.
    """

    supports_masking = True

    def __init__(self, max_wavelength: float = 10000.0, mode: str = "add", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_wavelength <= 0:
            raise ValueError(
                f"{self._label()}: max_wavelength must be positive, got {max_wavelength}"
            )
        if mode not in _POSITION_MODES:
            raise ValueError(f"{self._label()}: mode must be 'add' or 'encoding', got {mode!r}")
        self.max_wavelength = float(max_wavelength)
        self.mode = mode
        self.input_spec = InputSpec(ndim=3)
        self._shape: Shape | None = None

    def encoding(self, length: int, features: int, offset: int = 0) -> np.ndarray:
        """The table ``PE[offset : offset + length]``, ``(length, features)``, layer dtype."""
        return _sinusoid_table(offset, length, features, self.max_wavelength, self.dtype)

    def forward(self, x: np.ndarray, offset: int = 0, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        offset = _check_offset(offset, self._label())
        table = self.encoding(x.shape[1], x.shape[2], offset)
        self._shape = x.shape
        if self.mode == "add":
            return x + table
        return np.broadcast_to(table, x.shape).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, self._shape)
        if not self.needs_input_grad:
            return None
        return dy if self.mode == "add" else np.zeros_like(dy)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_wavelength": self.max_wavelength, "mode": self.mode}


@lru_cache(maxsize=16)
def _sinusoid_table(
    offset: int, length: int, features: int, max_wavelength: float, dtype: np.dtype
) -> np.ndarray:
    positions = np.arange(offset, offset + length, dtype=np.float64)[:, None]
    exponent = 2.0 * (np.arange(features) // 2) / features
    angles = positions / max_wavelength**exponent
    table = np.where(np.arange(features) % 2 == 0, np.sin(angles), np.cos(angles)).astype(dtype)
    table.flags.writeable = False  # shared between callers
    return table


def _check_offset(offset: Any, owner: str) -> int:
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"{owner}: offset must be a non-negative integer, got {offset!r}")
    return int(offset)


class PositionEmbedding(Layer):
    """Learned position vectors: one trainable row per position (GPT-style).

    Shapes: ``x (N, T, D)``, ``embeddings (max_length, D)``. With ``E_t =
    embeddings[offset + t]``::

        mode="add":       y = x + E           dx = dy
        mode="encoding":  y = E (broadcast)   dx = 0      (Keras-hub's PositionEmbedding)
        dE[offset + t] = sum_n dy[n, t]       (other rows 0)

    ``offset`` is the position of ``x[:, 0]``: 0 for whole sequences, the number of
    tokens already processed during cached generation.

    Parameters
    ----------
    max_length : int
        Number of positions (the context length).
    embeddings_initializer
        Keras-hub default ``glorot_uniform``.
    mode : {"add", "encoding"}
        Add the embeddings to the input, or return them.
    """

    supports_masking = True

    def __init__(
        self,
        max_length: int,
        embeddings_initializer: Any = "glorot_uniform",
        mode: str = "add",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_positive_int(max_length, "max_length", self._label())
        if mode not in _POSITION_MODES:
            raise ValueError(f"{self._label()}: mode must be 'add' or 'encoding', got {mode!r}")
        self.max_length = int(max_length)
        self.embeddings_initializer = init_lib.get(embeddings_initializer)
        self.mode = mode
        self.input_spec = InputSpec(ndim=3)
        self._window: tuple[int, Shape] | None = None  # (offset, shape) of the last forward

    def build(self, input_shape: Shape) -> None:
        features = input_shape[-1]
        self.add_weight("embeddings", (self.max_length, features), self.embeddings_initializer)
        self.input_spec = InputSpec(ndim=3, axes={-1: features})
        super().build(input_shape)

    def forward(self, x: np.ndarray, offset: int = 0, training: bool = False) -> np.ndarray:
        x = self._prepare(x)
        offset = _check_offset(offset, self._label())
        length = x.shape[1]
        if offset + length > self.max_length:
            raise ValueError(
                f"{self._label()}: positions {offset}..{offset + length - 1} exceed "
                f"max_length={self.max_length}"
            )
        rows = self.params["embeddings"][offset : offset + length]
        self._window = (offset, x.shape)
        if self.mode == "add":
            return x + rows
        return np.broadcast_to(rows, x.shape).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._window)
        offset, shape = self._window
        dy = self._check_gradient_shape(dy, shape)
        grad = self.grads["embeddings"]
        grad.fill(0.0)
        batch, length, features = shape
        ops.sum_rows(  # sum over the batch, as a (N, T D) column sum
            dy.reshape(batch, length * features),
            out=grad[offset : offset + length].reshape(-1),
        )
        if not self.needs_input_grad:
            return None
        return dy if self.mode == "add" else np.zeros_like(dy)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "embeddings_initializer": init_lib.serialize(self.embeddings_initializer),
            "mode": self.mode,
        }


# --------------------------------------------------------------------------- transformer block


class TransformerBlock(Layer):
    """Pre-LayerNorm transformer block (GPT-2 layout): attention and MLP, each residual.

    Shapes: ``x (N, T, d_model)`` -> ``y (N, T, d_model)``. Forward::

        h = x + Dropout(MHA(LN_1(x)))                      causal self-attention
        y = h + Dropout(W_2 act(W_1 LN_2(h) + b_1) + b_2)  MLP, hidden = mlp_ratio d_model

    Backward runs the parts in reverse; a residual passes its gradient on unchanged and
    adds the branch's::

        dh = dy + LN_2.backward(W_1.backward(W_2.backward(Dropout.backward(dy))))
        dx = dh + LN_1.backward(MHA.backward(Dropout.backward(dh)))

    Sub-layers (``self.layers``, named ``<block>/<part>``): ``ln_1``, ``attention``
    (``MultiHeadAttention`` with ``key_dim = d_model / num_heads``), ``attention_dropout``,
    ``ln_2``, ``mlp_hidden`` (``Dense`` with the activation), ``mlp_output``,
    ``mlp_dropout``.

    Parameters
    ----------
    d_model : int
        Feature size of the input and output; divisible by ``num_heads``.
    num_heads : int
        Attention heads.
    mlp_ratio : float
        Hidden size of the MLP as a multiple of ``d_model``.
    dropout : float
        Rate for the attention weights and both residual branches (while training).
    causal : bool
        Each position attends only to itself and earlier ones.
    epsilon : float
        LayerNormalization epsilon.
    activation : str
        MLP activation; the default ``gelu_tanh`` is GPT-2's tanh approximation of GELU
        (exact ``"gelu"`` works too but costs far more here: numpy has no erf).
    seed : int, optional
        Seeds the weight initializers and dropout masks of all sub-layers.
    """

    supports_masking = True

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        mlp_ratio: float = 4,
        dropout: float = 0.0,
        causal: bool = True,
        epsilon: float = 1e-5,
        activation: Any = "gelu_tanh",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        label = self._label()
        _check_positive_int(d_model, "d_model", label)
        _check_positive_int(num_heads, "num_heads", label)
        if d_model % num_heads:
            raise ValueError(
                f"{label}: d_model={d_model} must be divisible by num_heads={num_heads}"
            )
        hidden = round(mlp_ratio * d_model)
        if mlp_ratio <= 0 or hidden <= 0:
            raise ValueError(f"{label}: mlp_ratio must be positive, got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{label}: dropout must be in [0, 1), got {dropout}")
        self.d_model, self.num_heads = int(d_model), int(num_heads)
        self.mlp_ratio = mlp_ratio if isinstance(mlp_ratio, int) else float(mlp_ratio)
        self.dropout = float(dropout)
        self.causal, self.epsilon = bool(causal), float(epsilon)
        self.activation = act_lib.get(activation)
        self.seed = None if seed is None else int(seed)
        seeds = _child_seeds(seed, 6)

        def part(name: str) -> dict[str, Any]:
            return {"name": f"{self.name}/{name}", "dtype": self.dtype}

        def kernel_init(s: int | None) -> init_lib.Initializer:
            return init_lib.GlorotUniform(seed=s)

        self.ln_1 = LayerNormalization(epsilon, **part("ln_1"))
        self.attention = MultiHeadAttention(
            num_heads,
            d_model // num_heads,
            dropout=dropout,
            kernel_initializer=kernel_init(seeds[0]),
            seed=seeds[1],
            **part("attention"),
        )
        self.attention_dropout = Dropout(dropout, seed=seeds[2], **part("attention_dropout"))
        self.ln_2 = LayerNormalization(epsilon, **part("ln_2"))
        self.mlp_hidden = Dense(
            hidden, self.activation, kernel_initializer=kernel_init(seeds[3]), **part("mlp_hidden")
        )
        self.mlp_output = Dense(
            d_model, kernel_initializer=kernel_init(seeds[4]), **part("mlp_output")
        )
        self.mlp_dropout = Dropout(dropout, seed=seeds[5], **part("mlp_dropout"))
        self.layers = [
            self.ln_1,
            self.attention,
            self.attention_dropout,
            self.ln_2,
            self.mlp_hidden,
            self.mlp_output,
            self.mlp_dropout,
        ]
        self.input_spec = InputSpec(ndim=3, axes={-1: self.d_model})
        self._shape: Shape | None = None

    def build(self, input_shape: Shape) -> None:
        input_shape = (None, *tuple(input_shape)[1:])
        self._check_input_shape(input_shape)
        hidden_shape = (*input_shape[:-1], self.mlp_hidden.units)
        for layer, shape in (
            (self.ln_1, input_shape),
            (self.attention, input_shape),
            (self.attention_dropout, input_shape),
            (self.ln_2, input_shape),
            (self.mlp_hidden, input_shape),
            (self.mlp_output, hidden_shape),
            (self.mlp_dropout, input_shape),
        ):
            if not layer.built:
                layer.build(shape)
        super().build(input_shape)

    def forward(
        self,
        x: np.ndarray,
        training: bool = False,
        attention_mask: Any = None,
        mask: Any = None,
    ) -> np.ndarray:
        """``x (N, T, d_model)``; ``attention_mask`` (boolean ``(N, T, T)``) and/or ``mask``.

        ``mask (N, T)`` marks the real (not padded) positions, e.g. from
        ``Embedding(mask_zero=True)``; it is the attention's ``query_mask`` and
        ``value_mask``, so no position attends to padding (see
        :meth:`MultiHeadAttention.forward` for what a padded position's output is).
        """
        x = self._prepare(x)
        a = self.ln_1.forward(x)
        a = self.attention.forward(
            a,
            attention_mask=attention_mask,
            use_causal_mask=self.causal,
            training=training,
            query_mask=mask,
            value_mask=mask,
        )
        h = x + self.attention_dropout.forward(a, training=training)
        m = self.mlp_hidden.forward(self.ln_2.forward(h))
        m = self.mlp_dropout.forward(self.mlp_output.forward(m), training=training)
        self._shape = x.shape
        return h + m

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        self._require_forward(self._shape)
        dy = self._check_gradient_shape(dy, self._shape)
        dm = self.mlp_output.backward(self.mlp_dropout.backward(dy))
        dh = dy + self.ln_2.backward(self.mlp_hidden.backward(dm))
        da = self.attention.backward(self.attention_dropout.backward(dh))
        da = self.ln_1.backward(da)
        if not self.needs_input_grad:
            return None
        da += dh  # da is LayerNormalization's fresh output
        return da

    def init_cache(self, batch_size: int, max_length: int) -> KVCache:
        """An empty key/value cache for :meth:`forward_cached`."""
        return self.attention.init_cache(batch_size, max_length)

    def forward_cached(
        self, x: np.ndarray, cache: KVCache | None = None
    ) -> tuple[np.ndarray, KVCache]:
        """The block on new positions ``x (N, t, d_model)`` after those in ``cache``.

        Inference only; see :meth:`MultiHeadAttention.forward_cached`. Requires a causal
        block (a non-causal one would need the future positions).
        """
        if not self.causal:
            raise ValueError(f"{self._label()}: cached decoding needs a causal block")
        x = self._prepare(x)
        a, cache = self.attention.forward_cached(self.ln_1.forward(x), cache)
        h = x + a
        m = self.mlp_output.forward(self.mlp_hidden.forward(self.ln_2.forward(h)))
        self._shape = None  # nothing to backpropagate through
        return h + m, cache

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "causal": self.causal,
            "epsilon": self.epsilon,
            "activation": act_lib.serialize(self.activation),
            "seed": self.seed,
        }
