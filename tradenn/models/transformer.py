"""A decoder-only transformer language model (GPT style) built from :mod:`tradenn.nn` layers.

::

    from tradenn.models import TransformerLM

    lm = TransformerLM(vocab_size=64, context_length=128, d_model=128, num_heads=4,
                       num_layers=2, seed=0)
    history = lm.fit(windows, epochs=5)        # windows (N, T + 1) of token ids
    logits = lm.forward(windows[:, :-1])       # (N, T, vocab_size)
    ids = lm.generate(prompt, steps=50, temperature=0.8, top_k=20, seed=1)
    lm.save("lm.npz"); same = TransformerLM.load("lm.npz")

The network (``docs/layers.md``, section 22)::

    h = token_embedding[ids] + position_embedding[0 : T]        (N, T, d_model)
    h = Dropout(h);  h = block_L(... block_1(h))                pre-LN causal blocks
    logits = LayerNorm(h) W_out                                  (N, T, vocab_size)

with ``W_out = token_embedding^T`` when ``tie_weights=True``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from tradenn import checks, nn
from tradenn.nn import initializers as init_lib
from tradenn.nn.base import Shape, child_seeds, format_shape, get_rng
from tradenn.nn.callbacks import Callback, History
from tradenn.nn.serialization import ModelFileError, load_model
from tradenn.nn.training import check_fit_arguments, fit_loop

_LAYER_NORM_EPSILON = 1e-5
_EMBEDDING_STDDEV = 0.02  # GPT-2's initialization of embeddings and the output projection


class TransformerLM(nn.Model):
    """Decoder-only transformer language model: next-token logits for sequences of ids.

    Token and learned position embeddings, ``num_layers`` pre-LayerNorm causal
    :class:`~tradenn.nn.TransformerBlock` s, a final LayerNormalization and a linear
    output projection to ``vocab_size`` logits (no bias). With ``tie_weights=True`` the
    projection is the token embedding matrix transposed, ``logits = h E^T``; ``E`` then
    receives the sum of its two gradients (lookup and projection).

    Training (:meth:`fit`) minimizes the mean next-token cross-entropy with AdamW, a
    linear-warmup + cosine learning-rate schedule and global-norm gradient clipping.
    :meth:`generate` samples continuations with a key/value cache.

    Parameters
    ----------
    vocab_size : int
        Number of token ids; ids lie in ``[0, vocab_size)``.
    context_length : int
        Longest sequence the model reads (the number of learned positions).
    d_model : int
        Width of the residual stream; divisible by ``num_heads``.
    num_heads : int
        Attention heads per block.
    num_layers : int
        Number of transformer blocks.
    mlp_ratio : float
        MLP hidden size as a multiple of ``d_model``.
    dropout : float
        Dropout rate on the embeddings, the attention weights and the residual branches.
    tie_weights : bool
        Use the token embedding matrix as the output projection.
    seed : int, optional
        Makes the initial weights, dropout masks and batch order reproducible; without one
        they come from the package generator (:func:`tradenn.nn.set_seed`).

    Attributes
    ----------
    token_embedding, position_embedding, embedding_dropout, blocks, final_norm, head
        The parts; ``head`` is None with tied weights. All are listed in ``layers``.
    optimizer : AdamW or None
        The optimizer of the last :meth:`fit` (saved with the model).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        mlp_ratio: float = 4,
        dropout: float = 0.0,
        tie_weights: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for argument, value in (
            ("vocab_size", vocab_size),
            ("context_length", context_length),
            ("d_model", d_model),
            ("num_heads", num_heads),
            ("num_layers", num_layers),
        ):
            checks.positive_int(value, argument, "TransformerLM")
        if d_model % num_heads:
            raise ValueError(
                f"TransformerLM: d_model={d_model} must be divisible by num_heads={num_heads}"
            )
        checks.number(dropout, "dropout", "TransformerLM", low=0, high=1, high_open=True)
        self.vocab_size = int(vocab_size)
        self.context_length = int(context_length)
        self.d_model = int(d_model)
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.mlp_ratio = mlp_ratio if isinstance(mlp_ratio, int) else float(mlp_ratio)
        self.dropout = float(dropout)
        self.tie_weights = bool(tie_weights)
        self.seed = checks.seed(seed, "TransformerLM")
        self.loss = nn.SparseCategoricalCrossentropy(from_logits=True)  # fixed: next-token CE
        token_seed, position_seed, dropout_seed, head_seed, batch_seed, *block_seeds = child_seeds(
            seed, num_layers + 5
        )

        def part(name: str) -> dict[str, Any]:
            return {"name": f"{self.name}/{name}", "dtype": self.dtype}

        def normal(s: int | None) -> init_lib.Initializer:
            return init_lib.RandomNormal(0.0, _EMBEDDING_STDDEV, seed=s)

        self.token_embedding = nn.Embedding(
            vocab_size,
            d_model,
            embeddings_initializer=normal(token_seed),
            **part("token_embedding"),
        )
        self.position_embedding = nn.PositionEmbedding(
            context_length,
            embeddings_initializer=normal(position_seed),
            **part("position_embedding"),
        )
        self.embedding_dropout = nn.Dropout(dropout, seed=dropout_seed, **part("embedding_dropout"))
        self.blocks = [
            nn.TransformerBlock(
                d_model,
                num_heads,
                mlp_ratio=mlp_ratio,
                dropout=dropout,
                causal=True,
                epsilon=_LAYER_NORM_EPSILON,
                seed=block_seed,
                **part(f"block_{index}"),
            )
            for index, block_seed in enumerate(block_seeds)
        ]
        self.final_norm = nn.LayerNormalization(_LAYER_NORM_EPSILON, **part("final_norm"))
        self.head = None
        if not self.tie_weights:
            self.head = nn.Dense(
                vocab_size, use_bias=False, kernel_initializer=normal(head_seed), **part("head")
            )
        self.layers = [
            self.token_embedding,
            self.position_embedding,
            self.embedding_dropout,
            *self.blocks,
            self.final_norm,
            *([self.head] if self.head is not None else []),
        ]
        self._batch_rng = np.random.default_rng(batch_seed) if batch_seed is not None else None
        self._hidden_rows: np.ndarray | None = None  # final normalized states, for tied weights
        self.build((None, self.context_length))

    # ------------------------------------------------------------------ the network

    def build(self, input_shape: Shape) -> None:
        hidden = (None, None, self.d_model)
        for layer in self.layers:
            if not layer.built:
                layer.build((None, None) if layer is self.token_embedding else hidden)
        super().build((None, *tuple(input_shape)[1:]))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*tuple(input_shape), self.vocab_size)

    def forward(self, ids: Any, training: bool = False) -> np.ndarray:
        """Next-token logits ``(N, T, vocab_size)`` for ids ``(N, T)``, ``T <= context_length``.

        ``logits[:, t]`` depends on ``ids[:, : t + 1]`` only (causal attention).
        """
        ids = self._check_ids(ids, "ids")
        h = self._embed(ids, 0, training)
        for block in self.blocks:
            h = block.forward(h, training=training)
        return self._logits(self.final_norm.forward(h))

    def backward(self, dlogits: np.ndarray) -> None:
        """Store the gradients of every parameter given ``dL/dlogits`` of the last forward."""
        if self.tie_weights:
            self._require_forward(self._hidden_rows)
            d_rows = nn.ops.as_matrix(np.asarray(dlogits, dtype=self.dtype))
            embeddings = self.token_embedding.params["embeddings"]
            if d_rows.shape != (len(self._hidden_rows), self.vocab_size):
                raise ValueError(
                    f"{self._label()}: backward expected dlogits with "
                    f"{len(self._hidden_rows)} rows of {self.vocab_size}, got "
                    f"{format_shape(np.shape(dlogits))}"
                )
            d_projection = np.matmul(d_rows.T, self._hidden_rows)  # (vocab, d_model)
            dh = np.matmul(d_rows, embeddings).reshape(*np.shape(dlogits)[:-1], self.d_model)
        else:
            dh = self.head.backward(dlogits)
        dh = self.final_norm.backward(dh)
        for block in reversed(self.blocks):
            dh = block.backward(dh)
        dh = self.position_embedding.backward(self.embedding_dropout.backward(dh))
        self.token_embedding.backward(dh)
        if self.tie_weights:
            self.token_embedding.grads["embeddings"] += d_projection

    def _embed(self, ids: np.ndarray, offset: int, training: bool) -> np.ndarray:
        h = self.token_embedding.forward(ids)
        h = self.position_embedding.forward(h, offset=offset)
        return self.embedding_dropout.forward(h, training=training)

    def _logits(self, h: np.ndarray) -> np.ndarray:
        if not self.tie_weights:
            return self.head.forward(h)
        self._hidden_rows = nn.ops.as_matrix(h)
        logits = np.matmul(self._hidden_rows, self.token_embedding.params["embeddings"].T)
        return logits.reshape(*h.shape[:-1], self.vocab_size)

    def _check_ids(
        self, ids: Any, what: str, windows: bool = False, any_length: bool = False
    ) -> np.ndarray:
        """``ids`` as integers ``(N, T)`` (``(N, T + 1)`` for ``windows``), ``T <= context``.

        ``any_length`` lifts the length limit (prompts are cropped by the caller).
        """
        ids = np.asarray(ids)
        if ids.dtype.kind == "f" and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)):
            ids = ids.astype(np.int64)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"TransformerLM: {what} must be integer token ids, got {ids.dtype}")
        extra = 1 if windows else 0
        if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] <= extra:
            shape = "(N, T + 1) with T >= 1" if windows else "(N, T) with T >= 1"
            raise ValueError(
                f"TransformerLM: {what} must have shape {shape}, got {format_shape(ids.shape)}"
            )
        if not any_length and ids.shape[1] - extra > self.context_length:
            raise ValueError(
                f"TransformerLM: {what} has {ids.shape[1] - extra} input positions, more than "
                f"context_length={self.context_length}"
            )
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= self.vocab_size:
            raise ValueError(
                f"TransformerLM: {what} must lie in [0, {self.vocab_size}) "
                f"(vocab_size={self.vocab_size}), got values in [{low}, {high}]"
            )
        return ids

    # ------------------------------------------------------------------ training

    def fit(
        self,
        ids: Any,
        epochs: int = 1,
        batch_size: int = 32,
        learning_rate: float = 3e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 100,
        clipnorm: float | None = 1.0,
        validation_data: Any = None,
        verbose: int = 1,
        callbacks: Iterable[Callback] = (),
    ) -> History:
        """Train on next-token prediction over windows of ids.

        Each row of ``ids (N, T + 1)`` is one window: the model reads ``ids[:, :-1]`` and
        predicts ``ids[:, 1:]``. The loop is :func:`tradenn.nn.training.fit_loop`, as in
        :meth:`tradenn.nn.Model.fit`: every step (:meth:`train_on_batch`) takes
        ``batch_size`` windows (reshuffled every epoch; the orders follow the model's
        ``seed``, or the package generator without one), minimizes the mean sparse
        cross-entropy from logits and updates with AdamW (``weight_decay``) after clipping
        the global gradient norm to ``clipnorm`` (None: no clipping). The learning rate
        rises linearly from 0 to ``learning_rate`` over ``warmup_steps`` updates, then
        follows a cosine down to 0 at the last update of this call (each call starts a new
        optimizer and schedule).

        Parameters
        ----------
        validation_data : array (M, T + 1), optional
            Windows whose mean loss is logged as ``val_loss`` after every epoch.
        verbose : int
            0 silent, 1 a tqdm progress bar per epoch, 2 one line per epoch.
        callbacks : iterable of Callback
            E.g. :class:`~tradenn.nn.callbacks.EarlyStopping`.

        Returns
        -------
        History
            ``history.history["loss"]`` (and ``"val_loss"`` with validation data), one value
            per epoch, as from :meth:`tradenn.nn.Model.fit`.
        """
        windows = self._check_ids(ids, "ids", windows=True)
        validation = None
        if validation_data is not None:
            validation = self._check_ids(validation_data, "validation_data", windows=True)
        check_fit_arguments("TransformerLM.fit", epochs, batch_size, verbose)
        owner = "TransformerLM.fit"
        learning_rate = checks.number(learning_rate, "learning_rate", owner, low=0)
        weight_decay = checks.number(weight_decay, "weight_decay", owner, low=0)
        warmup_steps = checks.non_negative_int(warmup_steps, "warmup_steps", owner)
        steps_per_epoch = math.ceil(len(windows) / batch_size)
        self.optimizer = nn.AdamW(
            _warmup_cosine(learning_rate, int(warmup_steps), int(epochs) * steps_per_epoch),
            weight_decay=weight_decay,
            global_clipnorm=clipnorm,
        )
        return fit_loop(
            self,
            (windows,),
            epochs=epochs,
            batch_size=batch_size,
            validation_data=None if validation is None else (validation,),
            rng=self._batch_rng,
            callbacks=callbacks,
            verbose=verbose,
        )

    def train_on_batch(self, ids: Any) -> float:
        """One update on windows ``ids (N, T + 1)``; returns the loss before the update.

        Uses the optimizer of the last :meth:`fit` (or a loaded one); without one, AdamW
        with ``fit``'s defaults at a constant learning rate.
        """
        windows = self._check_ids(ids, "ids", windows=True)
        if self.optimizer is None:
            self.optimizer = nn.AdamW(3e-4, weight_decay=0.01, global_clipnorm=1.0)
        logits = self.forward(windows[:, :-1], training=True)
        value, dlogits = self.loss.value_and_grad(windows[:, 1:], logits)
        self.backward(dlogits)
        self.optimizer.step(self)
        return value

    def evaluate(self, ids: Any, batch_size: int = 32) -> float:  # type: ignore[override]
        """Mean next-token cross-entropy (nats) over windows ``ids (N, T + 1)``, inference mode."""
        windows = self._check_ids(ids, "ids", windows=True)
        total = 0.0
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            total += self.loss(batch[:, 1:], self.forward(batch[:, :-1])) * len(batch)
        return total / len(windows)

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        prompt_ids: Any,
        steps: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        use_cache: bool = True,
        suppress_tokens: Any = None,
    ) -> np.ndarray:
        """Continue each prompt by ``steps`` sampled tokens.

        Parameters
        ----------
        prompt_ids : array (P,) or (N, P)
            One prompt, or ``N`` prompts of equal length sampled independently (repeat
            a prompt N times for N samples of it). Only the last ``context_length`` tokens
            condition the first new token.
        steps : int
            Tokens to add.
        temperature : float
            Logits are divided by it before the softmax; ``0`` picks the most likely token
            (greedy, ignoring ``top_k`` and ``top_p``).
        top_k : int, optional
            Sample only among the ``top_k`` most likely tokens.
        top_p : float in (0, 1], optional
            Nucleus sampling: only among the most likely tokens whose probabilities add up
            to ``top_p`` (the first token that reaches it included).
        seed : int, optional
            Seeds the sampling; the same seed gives the same tokens. Without one the
            package generator is used.
        use_cache : bool
            Keep each block's keys and values so every new token costs one position.
            Once the sequence is longer than ``context_length`` the window slides and, with
            learned absolute positions, every step recomputes the cache from the last
            ``context_length`` tokens (as costly as ``use_cache=False``). The tokens are
            the same either way (up to floating-point ties).
        suppress_tokens : sequence of int, optional
            Token ids never to generate (their logits are set to -inf), e.g. the special
            tokens of a tokenizer whose values are all that a forecast may contain.

        Returns
        -------
        ndarray (N, P + steps)
            The prompts followed by the generated tokens (int64).
        """
        prompt = np.asarray(prompt_ids)
        if prompt.ndim == 1:
            prompt = prompt[None]
        prompt = self._check_ids(prompt, "prompt_ids", any_length=True)
        owner = "TransformerLM.generate"
        steps = checks.non_negative_int(steps, "steps", owner)
        # temperature 0 is greedy decoding
        temperature = checks.number(temperature, "temperature", owner, low=0)
        top_k = checks.positive_int(top_k, "top_k", owner, allow_none=True)
        top_p = checks.number(top_p, "top_p", owner, low=0, high=1, low_open=True, allow_none=True)
        suppress = self._suppressed(suppress_tokens)
        rng = np.random.default_rng(seed) if seed is not None else get_rng()
        batch, prompt_length = prompt.shape
        tokens = np.empty((batch, prompt_length + int(steps)), dtype=np.int64)
        tokens[:, :prompt_length] = prompt
        caches: list[nn.KVCache] | None = None
        for length in range(prompt_length, prompt_length + int(steps)):
            start = max(0, length - self.context_length)
            if not use_cache:
                logits = self._last_logits(tokens[:, start:length])
            elif caches is not None and start == 0 and caches[0].length == length - 1:
                logits = self._cached_logits(tokens[:, length - 1 : length], caches)
            else:  # first step, or the window slid: (re)fill the caches from the window
                if caches is None:
                    caches = [block.init_cache(batch, self.context_length) for block in self.blocks]
                for cache in caches:
                    cache.reset()
                logits = self._cached_logits(tokens[:, start:length], caches)
            if suppress is not None:
                logits[:, suppress] = -np.inf
            tokens[:, length] = _sample(logits, temperature, top_k, top_p, rng)
        return tokens

    def _suppressed(self, tokens: Any) -> np.ndarray | None:
        if tokens is None:
            return None
        ids = np.unique(np.asarray(tokens, dtype=np.int64).ravel())
        if ids.size and (ids[0] < 0 or ids[-1] >= self.vocab_size):
            raise ValueError(
                f"TransformerLM.generate: suppress_tokens must be ids in [0, {self.vocab_size}), "
                f"got {ids.tolist()}"
            )
        if ids.size >= self.vocab_size:
            raise ValueError("TransformerLM.generate: suppress_tokens leaves no token to sample")
        return ids

    def _last_logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits ``(N, vocab)`` after the last of ``ids``, recomputing every position."""
        h = self._embed(ids, 0, training=False)
        for block in self.blocks:
            h = block.forward(h)
        return self._logits(self.final_norm.forward(h[:, -1:]))[:, -1]

    def _cached_logits(self, ids: np.ndarray, caches: list[nn.KVCache]) -> np.ndarray:
        """Logits after the last of ``ids``, which follow the positions in ``caches``."""
        h = self._embed(ids, caches[0].length, training=False)
        for block, cache in zip(self.blocks, caches, strict=True):
            h, _ = block.forward_cached(h, cache)
        return self._logits(self.final_norm.forward(h[:, -1:]))[:, -1]

    # ------------------------------------------------------------------ persistence

    @classmethod
    def load(cls, path: str | os.PathLike) -> TransformerLM:
        """Rebuild a model written by ``save`` (weights, config, optimizer state): a tradenn.nn
        model file, which ``nn.load`` reads too; refused unless it holds a ``cls``."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise ModelFileError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "context_length": self.context_length,
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "tie_weights": self.tie_weights,
            "seed": self.seed,
        }


# --------------------------------------------------------------------------- helpers


def _warmup_cosine(learning_rate: float, warmup_steps: int, total_steps: int) -> Any:
    """Linear warmup from 0 over ``warmup_steps``, then a cosine to 0 at ``total_steps``."""
    warmup = min(warmup_steps, total_steps)
    decay_steps = max(total_steps - warmup, 1)
    if warmup == 0:
        return nn.CosineDecay(learning_rate, decay_steps)
    return nn.CosineDecay(0.0, decay_steps, warmup_target=learning_rate, warmup_steps=warmup)


def _sample(
    logits: np.ndarray,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """One token per row of ``logits (N, V)``: greedy, or sampled after temperature/top-k/top-p.

    Sampling inverts the cumulative distribution at one uniform draw per row, so a given
    generator state picks the same tokens from (nearly) the same probabilities.
    """
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    z = logits.astype(np.float64) / temperature
    vocab = z.shape[-1]
    if top_k is not None and top_k < vocab:
        kth = np.partition(z, vocab - top_k, axis=-1)[:, vocab - top_k, None]
        z[z < kth] = -np.inf  # ties with the k-th value stay in
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=-1)
        before = np.cumsum(sorted_p, axis=-1) - sorted_p  # mass of the more likely tokens
        keep = np.zeros_like(p, dtype=bool)
        np.put_along_axis(keep, order, before < top_p, axis=-1)
        p[~keep] = 0.0
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), vocab - 1)
