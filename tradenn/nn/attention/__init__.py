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

Modules: :mod:`.masks` (masked softmax and its backward), :mod:`.attention`,
:mod:`.cache` (:class:`KVCache`), :mod:`.multihead`, :mod:`.positional`,
:mod:`.transformer`, and :mod:`.inputs` (input checks they share).

The mathematics is written out in ``docs/layers.md``, section 22.
"""

from .attention import Attention
from .cache import KVCache
from .masks import causal_mask, masked_softmax, softmax_backward
from .multihead import MultiHeadAttention
from .positional import PositionEmbedding, SinusoidalPositionalEncoding
from .transformer import TransformerBlock

__all__ = [
    "Attention",
    "KVCache",
    "MultiHeadAttention",
    "PositionEmbedding",
    "SinusoidalPositionalEncoding",
    "TransformerBlock",
    "causal_mask",
    "masked_softmax",
    "softmax_backward",
]
