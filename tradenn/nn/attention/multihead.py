"""Keras 3's multi-head scaled dot-product attention, with cached decoding."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ... import checks
from .. import initializers as init_lib
from .. import ops
from ..base import Layer, Shape, format_shape, get_rng
from .cache import KVCache
from .inputs import as_sequence, is_shape_list, split_scores_gradient
from .masks import boolean_mask, causal_bias, causal_mask, masked_softmax, softmax_backward

_CAUSAL_BLOCKS = 4  # query blocks of causal self-attention (see MultiHeadAttention._blocks)


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


@dataclass(frozen=True, slots=True)
class _ForwardCache:
    """What :meth:`MultiHeadAttention.backward` needs from the forward pass.

    Shapes with ``N`` batch, ``H`` heads, ``Tq``/``Tk`` query/key steps, ``K = key_dim``,
    ``V = value_dim``.
    """

    input_shapes: list[Shape]  # of query, value, key (those given)
    projections: list[_Projection]
    queries: np.ndarray  # q_h, (N, H, Tq, K), pre-scaled by 1/sqrt(K)
    keys_t: np.ndarray  # k_h, (N, H, Tk, K)
    values_t: np.ndarray  # v_h, (N, H, Tk, V)
    weights: np.ndarray  # P_h = softmax(q_h k_h^T), (N, H, Tq, Tk)
    dropped: np.ndarray  # dropout(P_h); P_h itself without dropout
    keep: np.ndarray | None  # the dropout mask, scaled by 1/(1 - rate); None without dropout
    attended_rows: np.ndarray  # o_h side by side, (N Tq, H V)
    blocks: list[tuple[int, int, int]]  # (first query, end query, visible keys), see _blocks
    scores_returned: bool  # forward returned (y, P): backward takes [dy, dP]
    y_shape: Shape


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
            checks.positive_int(number, argument, label)
        if value_dim is not None:
            checks.positive_int(value_dim, "value_dim", label)
        checks.number(dropout, "dropout", label, low=0, high=1, high_open=True)
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(
                    f"{label}: output_shape must be an int or a 1-tuple, got {output_shape!r}"
                )
            output_shape = output_shape[0]
        if output_shape is not None:
            checks.positive_int(output_shape, "output_shape", label)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = None if output_shape is None else int(output_shape)
        self.kernel_initializer = init_lib.get(kernel_initializer)
        self.bias_initializer = init_lib.get(bias_initializer)
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._cache: _ForwardCache | None = None

    # ------------------------------------------------------------------ building

    def build(self, input_shape: Any) -> None:
        """Create the weights; ``input_shape`` is the query shape or ``[query, value(, key)]``."""
        shapes = [tuple(s) for s in input_shape] if is_shape_list(input_shape) else None
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
        query = tuple(input_shape[0] if is_shape_list(input_shape) else input_shape)
        return (*query[:-1], self.output_dim or query[-1])

    def _contiguous(self, name: str, view: np.ndarray) -> np.ndarray:
        """A C-contiguous copy of ``view`` in workspace ``name``."""
        buffer = self._workspace(name, view.shape)
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
                out=self._workspace(f"projection_{index}", (len(x_rows), weight.shape[1])),
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
        inputs = [as_sequence(query, self.dtype, label, "query")]
        if value is not None:
            inputs.append(as_sequence(value, self.dtype, label, "value"))
        if key is not None:
            inputs.append(as_sequence(key, self.dtype, label, "key"))
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

        weights = self._workspace("weights", (batch, self.num_heads, query_length, key_length))
        allowed, bias = self._score_mask(
            attention_mask, use_causal_mask, batch, query_length, key_length
        )
        blocks = self._blocks(allowed, bias, query_length, key_length)
        for first, end, visible in blocks:
            block = weights[:, :, first:end, :visible]
            np.matmul(queries[:, :, first:end], keys_t[..., :visible], out=block)
            if bias is not None:  # the causal mask, for this block's queries and keys
                bias = causal_bias(end - first, visible, first, self.dtype)
            masked_softmax(block, allowed, bias)
            weights[:, :, first:end, visible:] = 0.0  # keys no query of the block may see
        dropped, keep = weights, None
        if training and self.dropout > 0.0:
            rng = self._rng if self._rng is not None else get_rng()
            keep = self._workspace("dropout_mask", weights.shape)
            np.greater_equal(rng.random(weights.shape, dtype=self.dtype), self.dropout, out=keep)
            keep *= 1.0 / (1.0 - self.dropout)
            dropped = np.multiply(weights, keep, out=self._workspace("dropped", weights.shape))

        value_width = self.num_heads * self.value_dim
        attended = self._workspace(
            "attended", (batch, query_length, self.num_heads, self.value_dim)
        )
        attended_heads = attended.transpose(0, 2, 1, 3)  # (N, H, Tq, V)
        values = values_t.swapaxes(-1, -2)
        for first, end, visible in blocks:
            np.matmul(
                dropped[:, :, first:end, :visible],
                values[:, :, :visible],
                out=attended_heads[:, :, first:end],
            )
        attended_rows = attended.reshape(-1, value_width)
        y = np.matmul(attended_rows, self.params["output_kernel"].reshape(value_width, -1))
        if self.use_bias:
            y += self.params["output_bias"]
        y = y.reshape(batch, query_length, -1)
        self._cache = _ForwardCache(
            input_shapes=[a.shape for a in inputs],
            projections=projections,
            queries=queries,
            keys_t=keys_t,
            values_t=values_t,
            weights=weights,
            dropped=dropped,
            keep=keep,
            attended_rows=attended_rows,
            blocks=blocks,
            scores_returned=return_attention_scores,
            y_shape=y.shape,
        )
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
            mask = boolean_mask(mask, (batch, length), self._label(), name)
            mask = np.broadcast_to(mask, (batch, length))
            mask = mask[:, :, None] if name == "query_mask" else mask[:, None, :]
            combined = mask if combined is None else np.logical_and(combined, mask)
        if combined is None:
            return attention_mask
        if attention_mask is None:
            return combined
        shape = (batch, query_length, key_length)
        allowed = boolean_mask(attention_mask, shape, self._label(), "attention_mask")
        return np.logical_and(allowed, combined)

    def _score_mask(
        self, attention_mask: Any, causal: bool, batch: int, query_length: int, key_length: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(allowed, bias)`` for :func:`masked_softmax`; the causal mask alone is a bias."""
        if attention_mask is None:
            bias = causal_bias(query_length, key_length, 0, self.dtype) if causal else None
            return None, bias
        allowed = boolean_mask(
            attention_mask, (batch, query_length, key_length), self._label(), "attention_mask"
        )
        if allowed.ndim == 3:
            allowed = allowed[:, None]  # the same mask for every head
        if causal:
            allowed = np.logical_and(allowed, causal_mask(query_length, key_length))
        return allowed, None

    def _blocks(
        self,
        allowed: np.ndarray | None,
        bias: np.ndarray | None,
        query_length: int,
        key_length: int,
    ) -> list[tuple[int, int, int]]:
        """Query blocks ``(first, end, visible keys)`` to compute the scores in.

        Under the causal mask alone, queries ``first..end-1`` see keys ``< end`` only, so
        the scores are computed in ``_CAUSAL_BLOCKS`` blocks of queries, each against its
        visible keys: the products and the softmax skip most of the masked half (and
        ``exp(-inf)``, which is slow). Otherwise one block covers everything.
        """
        if allowed is not None or bias is None or query_length < 2 * _CAUSAL_BLOCKS:
            return [(0, query_length, key_length)]
        edges = np.linspace(0, query_length, _CAUSAL_BLOCKS + 1).astype(int)
        return [
            (int(first), int(end), min(int(end), key_length))
            for first, end in itertools.pairwise(edges)
        ]

    @staticmethod
    def _key_blocks(blocks: list[tuple[int, int, int]], key_length: int) -> list[tuple[int, int]]:
        """Key blocks ``(first, end)`` for the key and value gradients.

        With query blocks of causal self-attention, keys ``first..end-1`` of a block are
        seen by the queries from ``first`` on only, so their gradients sum over those rows;
        otherwise one block of all keys is seen by every query (``first = 0``).
        """
        if len(blocks) == 1 or blocks[-1][1] != key_length:
            return [(0, key_length)]
        return [(first, end) for first, end, _ in blocks]

    def backward(self, dy: Any) -> np.ndarray | tuple[np.ndarray, ...] | None:
        self._require_forward(self._cache)
        cache = self._cache
        dy, d_scores = split_scores_gradient(dy, cache.scores_returned, self._label())
        dy_rows = ops.as_matrix(self._check_gradient_shape(dy, cache.y_shape))
        weights, dropped = cache.weights, cache.dropped
        batch, heads, query_length, _ = weights.shape
        value_width = heads * self.value_dim

        output_kernel = self.params["output_kernel"].reshape(value_width, -1)
        np.matmul(
            cache.attended_rows.T,
            dy_rows,
            out=self.grads["output_kernel"].reshape(value_width, -1),
        )
        if self.use_bias:
            ops.sum_rows(dy_rows, out=self.grads["output_bias"])
        d_attended = np.matmul(
            dy_rows, output_kernel.T, out=self._workspace("d_attended", (len(dy_rows), value_width))
        )
        d_attended = self._contiguous(
            "d_attended_heads",
            d_attended.reshape(batch, query_length, heads, -1).transpose(0, 2, 1, 3),
        )

        d_outputs = [
            self._workspace(f"d_projection_{p.input_index}", p.output.shape)
            for p in cache.projections
        ]
        d_views: dict[str, np.ndarray] = {}
        for projection, d_output in zip(cache.projections, d_outputs, strict=True):
            d_heads = self._heads(d_output, batch, projection.roles)
            d_views.update(zip(projection.roles, d_heads, strict=True))

        key_blocks = self._key_blocks(cache.blocks, weights.shape[-1])
        for first, end in key_blocks:  # dv_h = P_h^T do_h over the queries that see the keys
            np.matmul(
                dropped[:, :, first:, first:end].swapaxes(-1, -2),
                d_attended[:, :, first:],
                out=d_views["value"][:, :, first:end],
            )
        if d_scores is not None:
            d_scores = self._check_gradient_shape(d_scores, weights.shape)
        d_weights = self._workspace("d_weights", weights.shape)  # dP, then dS, where visible
        scratch = self._workspace("softmax_scratch", weights.shape)
        keys = cache.keys_t.swapaxes(-1, -2)
        for first, end, visible in cache.blocks:
            block = (slice(None), slice(None), slice(first, end), slice(0, visible))
            d_block = d_weights[block]
            np.matmul(d_attended[:, :, first:end], cache.values_t[..., :visible], out=d_block)
            if cache.keep is not None:
                d_block *= cache.keep[block]
            if d_scores is not None:
                d_block += d_scores[block]
            softmax_backward(weights[block], d_block, scratch[block])
            np.matmul(d_block, keys[:, :, :visible], out=d_views["query"][:, :, first:end])
        for first, end in key_blocks:  # dk_h = dS_h^T q_h, likewise
            np.matmul(
                d_weights[:, :, first:, first:end].swapaxes(-1, -2),
                cache.queries[:, :, first:],
                out=d_views["key"][:, :, first:end],
            )

        input_grads: list[np.ndarray | None] = [None] * len(cache.input_shapes)
        for projection, d_output in zip(cache.projections, d_outputs, strict=True):
            self._projection_grads(projection, d_output)
            if self.needs_input_grad:
                dx = np.matmul(d_output, projection.weight.T)
                input_grads[projection.input_index] = dx.reshape(
                    cache.input_shapes[projection.input_index]
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
            out=self._workspace(
                f"d_weight_{projection.input_index}", (features, d_output.shape[1])
            ),
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
        self._cache = None  # nothing to backpropagate through
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
        causal = causal_bias(steps, offset + steps, offset, self.dtype) if steps > 1 else None
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
