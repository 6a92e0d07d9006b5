"""The pre-LayerNorm (GPT-2) transformer block."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import checks
from .. import activations as act_lib
from .. import initializers as init_lib
from ..base import InputSpec, Layer, Shape, child_seeds
from ..core import Dense, Dropout
from ..normalization import LayerNormalization
from .cache import KVCache
from .multihead import MultiHeadAttention


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
        checks.positive_int(d_model, "d_model", label)
        checks.positive_int(num_heads, "num_heads", label)
        if d_model % num_heads:
            raise ValueError(
                f"{label}: d_model={d_model} must be divisible by num_heads={num_heads}"
            )
        hidden = round(mlp_ratio * d_model)
        if mlp_ratio <= 0 or hidden <= 0:
            raise ValueError(f"{label}: mlp_ratio must be positive, got {mlp_ratio}")
        checks.number(dropout, "dropout", label, low=0, high=1, high_open=True)
        self.d_model, self.num_heads = int(d_model), int(num_heads)
        self.mlp_ratio = mlp_ratio if isinstance(mlp_ratio, int) else float(mlp_ratio)
        self.dropout = float(dropout)
        self.causal, self.epsilon = bool(causal), float(epsilon)
        self.activation = act_lib.get(activation)
        self.seed = None if seed is None else int(seed)
        seeds = child_seeds(seed, 6)

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
