"""Price series to tokens and back: the vocabulary of a language model of prices.

In the spirit of Chronos (Ansari et al., 2024, "Chronos: Learning the Language of Time Series",
arXiv:2403.07815): a real-valued series is scaled, clipped to a fixed range and quantized into
uniform bins; each bin is a token, and a few special tokens are added. Decoding maps a token to its
bin centre, so a value inside the range comes back within half a bin width.

Two modes:

* ``"log_return"`` (default): prices become log returns ``r[t] = log(p[t] / p[t-1])``, which are
  already scale-free, and are quantized over ``[-limit, limit]`` (default ``limit=0.1``: a 10%
  daily move; larger moves land in the edge bins).
* ``"mean_scaled"`` (Chronos' scheme): each context window is divided by its mean absolute value
  and quantized over ``[-limit, limit]`` (default ``limit=15``, as in Chronos).

Vocabulary (default ``n_bins=253``, ``vocab_size=256``)::

    0 PAD    1 BOS    2 EOS    3 ... n_bins + 2   value bins, lowest first

``n_bins`` is odd by default so one bin is centred on zero: a flat bar is encoded exactly.

The range never comes from the data being encoded: it is an argument, or :meth:`PriceTokenizer.fit`
picks ``limit`` once from training data. Mean scaling uses the context window itself, which is
the past at forecast time.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from tradenn import checks
from tradenn.nn.serialization import (
    format_name,
    invalid_content,
    read_file,
    write_file,
)

__all__ = ["PriceTokenizer", "volatility_scaled"]

Mode = Literal["log_return", "mean_scaled"]
Kind = Literal["prices", "returns"]

_DEFAULT_LIMIT = {"log_return": 0.1, "mean_scaled": 15.0}


class PriceTokenizer:
    """Uniform-bin tokenizer for price series, with PAD, BOS and EOS special tokens.

    Parameters
    ----------
    n_bins : int, default 253
        Number of value tokens (uniform bins over ``[-limit, limit]``); the vocabulary adds the
        three special tokens, so the default vocabulary has 256 ids.
    limit : float, optional
        Half-width of the quantization range. Defaults to 0.1 in ``"log_return"`` mode and 15.0
        in ``"mean_scaled"`` mode. Values beyond it are clipped to the edge bins.
    mode : {"log_return", "mean_scaled"}, default "log_return"
        What is quantized: log returns of the prices, or the series divided by the mean absolute
        value of its context window.

    Examples
    --------
    ::

        tok = PriceTokenizer()
        ids = tok.encode([100.0, 101.0, 99.5], bos=True)  # [1, 142, 110]: BOS, one per return
        tok.decode(ids[1:])                               # [0.0103, -0.0150]: within half a bin
    """

    PAD: ClassVar[int] = 0
    BOS: ClassVar[int] = 1
    EOS: ClassVar[int] = 2
    num_special_tokens: ClassVar[int] = 3

    def __init__(self, n_bins: int = 253, limit: float | None = None, mode: Mode = "log_return"):
        if mode not in _DEFAULT_LIMIT:
            raise ValueError(f"mode must be 'log_return' or 'mean_scaled', got {mode!r}")
        checks.integer(n_bins, "n_bins", low=2)
        limit = _DEFAULT_LIMIT[mode] if limit is None else limit
        _check_limit(limit)
        self.mode: Mode = mode
        self.n_bins = int(n_bins)
        self.limit = float(limit)

    # ------------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        """Number of token ids: the special tokens plus ``n_bins``."""
        return self.num_special_tokens + self.n_bins

    @property
    def bin_width(self) -> float:
        """Width of one bin, ``2 * limit / n_bins`` (in log-return or scaled units)."""
        return 2.0 * self.limit / self.n_bins

    @property
    def bin_edges(self) -> np.ndarray:
        """The ``n_bins + 1`` edges, from ``-limit`` to ``limit``."""
        return np.linspace(-self.limit, self.limit, self.n_bins + 1)

    @property
    def bin_centers(self) -> np.ndarray:
        """The value of each value token: ``bin_centers[i]`` is token ``i + num_special_tokens``."""
        return -self.limit + (np.arange(self.n_bins) + 0.5) * self.bin_width

    # ------------------------------------------------------------------------ transform
    def scale_of(self, context: Any, *, kind: Kind = "prices") -> float | np.ndarray:
        """Chronos' mean scale of a context: the mean absolute value (1.0 where that is 0).

        Parameters
        ----------
        context : array-like, shape (T,) or (batch, T)
        kind : {"prices", "returns"}
            What ``context`` holds (prices must be positive).

        Returns
        -------
        float, or an array of shape (batch,) for a 2-D context.
        """
        x = _series(context, "context", kind)
        scale = np.abs(x).mean(axis=-1)
        scale = np.where(scale > 0, scale, 1.0)
        return float(scale) if scale.ndim == 0 else scale

    def values(
        self, series: Any, *, kind: Kind = "prices", scale: float | np.ndarray | None = None
    ) -> np.ndarray:
        """The real values that get quantized, before clipping.

        ``"log_return"`` mode: the log returns of ``series`` (one fewer than the prices), or
        ``series`` itself when ``kind="returns"``. ``"mean_scaled"`` mode: ``series / scale``,
        where ``scale`` defaults to :meth:`scale_of` of ``series`` (pass the context's scale to
        encode its continuation on the same scale). The last axis is time.
        """
        x = _series(series, "series", kind)
        if self.mode == "log_return":
            if scale is not None:
                raise ValueError("scale applies to mode='mean_scaled' only")
            return np.diff(np.log(x), axis=-1) if kind == "prices" else x
        if scale is None:
            scale = self.scale_of(x, kind=kind)
        scale = _check_scale(scale, x.shape[:-1])
        return x / scale[..., None]

    # ------------------------------------------------------------------------ encode / decode
    def quantize(self, values: Any) -> np.ndarray:
        """Token ids of real values (any shape): the bin each value falls in, clipped to the edges.

        Bin ``i`` is ``[bin_edges[i], bin_edges[i + 1])`` with ``bin_edges[i] = -limit + i w``,
        ``w = bin_width``; values below ``-limit`` go to the lowest bin, values at or above
        ``limit`` to the highest.
        """
        v = np.asarray(values, dtype=np.float64)
        if not np.isfinite(v).all():
            raise ValueError("values must be finite (no NaN or inf)")
        # Counting the interior edges at or below v gives the half-open bin [e_i, e_i+1) and
        # clips both tails in one step.
        bins = np.searchsorted(self.bin_edges[1:-1], v, side="right")
        return bins.astype(np.int64) + self.num_special_tokens

    def dequantize(self, ids: Any) -> np.ndarray:
        """Bin centres of value-token ids (any shape); special tokens are a ``ValueError``."""
        ids = _check_ids(ids, self.vocab_size, self.num_special_tokens)
        return self.bin_centers[ids - self.num_special_tokens]

    def encode(
        self,
        series: Any,
        *,
        kind: Kind = "prices",
        scale: float | np.ndarray | None = None,
        bos: bool = False,
        eos: bool = False,
    ) -> np.ndarray:
        """Token ids of a series (1-D) or of a batch of series (2-D, time on the last axis).

        Parameters
        ----------
        series : array-like or Series, shape (T,) or (batch, T)
            Prices (positive) or, with ``kind="returns"``, log returns.
        kind : {"prices", "returns"}
        scale : float or array of shape (batch,), optional
            ``"mean_scaled"`` mode only: the scale to divide by (default: the series' own).
        bos, eos : bool
            Prepend ``BOS`` / append ``EOS`` to each sequence.

        Returns
        -------
        ndarray of int64, shape (..., T') with ``T' = T - 1`` for prices in ``"log_return"`` mode
        and ``T`` otherwise, plus one for each of ``bos`` and ``eos``.
        """
        ids = self.quantize(self.values(series, kind=kind, scale=scale))
        batch = ids.shape[:-1]
        parts = [ids]
        if bos:
            parts.insert(0, np.full((*batch, 1), self.BOS, dtype=np.int64))
        if eos:
            parts.append(np.full((*batch, 1), self.EOS, dtype=np.int64))
        return np.concatenate(parts, axis=-1)

    def decode(self, ids: Any, *, scale: float | np.ndarray | None = None) -> np.ndarray:
        """Values of value-token ids: log returns, or (``"mean_scaled"``) bin centres times scale.

        Parameters
        ----------
        ids : array-like of int, any shape
            Value tokens only: strip ``BOS``/``EOS``/``PAD`` first (a ``ValueError`` otherwise).
        scale : float or array of shape ``ids.shape[:-1]``
            Required in ``"mean_scaled"`` mode: the scale the context was encoded with
            (:meth:`scale_of`); not allowed in ``"log_return"`` mode.
        """
        centres = self.dequantize(ids)
        if self.mode == "log_return":
            if scale is not None:
                raise ValueError("scale applies to mode='mean_scaled' only")
            return centres
        if scale is None:
            raise ValueError("scale is required to decode in mode='mean_scaled' (see scale_of)")
        return centres * _check_scale(scale, centres.shape[:-1])[..., None]

    # ------------------------------------------------------------------------ fitting
    def fit(self, train: Any, *, kind: Kind = "prices", quantile: float = 0.999) -> PriceTokenizer:
        """Choose ``limit`` from training data only: the ``quantile`` of ``|values(train)|``.

        The new ``limit`` is then fixed; :meth:`encode` never looks at data to set its range, so
        test data cannot leak into the vocabulary. In ``"mean_scaled"`` mode, pass training
        windows as the rows of a 2-D array so each is scaled by its own mean, as at forecast time.

        Returns
        -------
        self
        """
        if not 0 < quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
        magnitudes = np.abs(self.values(train, kind=kind, scale=None))
        if magnitudes.size == 0:
            raise ValueError("train is too short to give any values")
        limit = float(np.quantile(magnitudes, quantile))
        if not limit > 0:
            raise ValueError(f"train gives limit {limit!r} at quantile {quantile}; need > 0")
        self.limit = limit
        return self

    # ------------------------------------------------------------------------ configuration
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict; ``from_config`` rebuilds the tokenizer."""
        return {"n_bins": self.n_bins, "limit": self.limit, "mode": self.mode}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PriceTokenizer:
        """The tokenizer described by :meth:`get_config` output."""
        return cls(**config)

    def save(self, path: str | os.PathLike) -> None:
        """Write the configuration to one file (tradenn's one format, no arrays, no pickle)."""
        write_file(path, format_name(type(self)), self.get_config(), {})

    @classmethod
    def load(cls, path: str | os.PathLike) -> PriceTokenizer:
        """Read a tokenizer written by :meth:`save` (:class:`ModelFileError` naming the file
        when it is not one)."""
        saved = read_file(path, format_name(cls), cls.__name__)
        with invalid_content(path, cls.__name__):
            return cls.from_config(saved.config)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceTokenizer):
            return NotImplemented
        return self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash(tuple(self.get_config().items()))

    def __repr__(self) -> str:
        return f"PriceTokenizer(n_bins={self.n_bins}, limit={self.limit!r}, mode={self.mode!r})"


# ---------------------------------------------------------------------------- volatility scaling
def volatility_scaled(
    returns: Any, *, decay: float = 0.94, warmup: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Returns divided by a causal EWMA volatility (RiskMetrics), and the next bar's volatility.

    With ``r`` the returns of a row (time on the last axis, ``T > warmup``)::

        v[warmup] = mean(r[0 : warmup]^2)
        v[t + 1]  = decay v[t] + (1 - decay) r[t]^2            t = warmup .. T - 1
        z[t]      = r[t] / sqrt(v[t])                          t = warmup .. T - 1

    so ``z[t]`` uses returns before ``t`` only: a model of ``z`` forecasts the next return in
    units of ``sqrt(v[T])``, the volatility known at the forecast origin, and the tokens of a
    calm and of a turbulent year mean the same thing (how many "usual" moves a bar is).

    Returns
    -------
    z : ndarray, shape (..., T - warmup)
    scale : ndarray, shape (...)
        ``sqrt(v[T])``: the volatility that scales the return after the last one.
    """
    r = np.asarray(returns, dtype=np.float64)
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay!r}")
    if r.ndim not in (1, 2) or r.shape[-1] <= warmup or warmup < 1:
        raise ValueError(
            f"volatility_scaled needs more than warmup={warmup} returns per row, got shape "
            f"{r.shape}"
        )
    variance = np.empty((*r.shape[:-1], r.shape[-1] - warmup + 1))
    variance[..., 0] = np.mean(r[..., :warmup] ** 2, axis=-1)
    # a loop over time (the recursion is sequential), vectorised over rows
    for k, t in enumerate(range(warmup, r.shape[-1])):
        variance[..., k + 1] = decay * variance[..., k] + (1.0 - decay) * r[..., t] ** 2
    sigma = np.sqrt(np.maximum(variance, _VARIANCE_FLOOR))
    return r[..., warmup:] / sigma[..., :-1], sigma[..., -1]


_VARIANCE_FLOOR = 1e-16  # a flat series (all returns 0) gets tokens 0, not 0 / 0


# ---------------------------------------------------------------------------- validation
def _check_limit(limit: float) -> None:
    checks.positive_number(limit, "limit")


def _series(x: Any, name: str, kind: Kind) -> np.ndarray:
    """``x`` as a 1-D or 2-D float64 array of finite values (positive ones for prices)."""
    if kind not in ("prices", "returns"):
        raise ValueError(f"kind must be 'prices' or 'returns', got {kind!r}")
    if isinstance(x, pd.Series):
        x = x.to_numpy(dtype=np.float64, na_value=np.nan)
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2) or a.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array, got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains NaN or inf at {_position(position)}")
    if kind == "prices" and not (a > 0).all():
        position = tuple(int(i) for i in np.argwhere(a <= 0)[0])
        value = float(a[position])
        raise ValueError(f"{name} must hold positive prices; got {value} at {_position(position)}")
    return a


def _position(index: tuple[int, ...]) -> str:
    return f"position {index[0]}" if len(index) == 1 else f"row {index[0]}, position {index[1]}"


def _check_scale(scale: float | np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    if s.shape not in ((), batch) or not (np.isfinite(s) & (s > 0)).all():
        raise ValueError(f"scale must be finite and > 0, one per sequence (shape {batch})")
    return np.broadcast_to(s, batch)


def _check_ids(ids: Any, vocab_size: int, num_special: int) -> np.ndarray:
    a = np.asarray(ids)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= vocab_size):
        raise ValueError(f"ids must be in [0, {vocab_size}), got {a.min()} .. {a.max()}")
    if (a < num_special).any():
        raise ValueError("ids contains special tokens (PAD, BOS or EOS); decode value tokens only")
    return a
