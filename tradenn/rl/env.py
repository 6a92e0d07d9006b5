"""A single-instrument trading environment for Gymnasium with the backtester's account.

>>> import gymnasium
>>> from tradenn.rl import MarketEnv
>>> env = MarketEnv("SPX", window=30, actions="long_short", fee_bps=5.0)
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(2)      # go long at this bar's close

**Timing.** Step ``k`` of an episode sits at bar ``t``: the agent has seen bars ``<= t`` and its
action sets the *target position* ``w_t`` (fraction of equity, in ``[-1, 1]``), traded at the
close of bar ``t``; the environment then moves to bar ``t + 1``, whose close gives the reward
and the next observation. This is a ``positions()`` strategy run with
``Backtest(data, ..., cash=cash, commission=fee_bps / 1e4, trade_on_close=True,
fractional=True)``: replaying an episode's positions through the backtester gives the same
equity bar for bar.

**Account**: the backtester's own :class:`~tradenn.account.Account` with that
configuration, traded with :meth:`~tradenn.account.Account.trade_to` (so the env
cannot drift from the backtester's arithmetic). The account holds ``cash`` and signed
``units``; equity at bar ``t`` is ``cash + units x C[t]``. Nothing trades
while the target stays the same (units, not the fraction, are held). When the target changes
at the close ``q = C[t]`` with commission ``c = fee_bps / 1e4``:

1. a position on the other side, or any position when the target is flat, is closed in one
   fill: ``cash += units x q - c |units| q``, ``units = 0``;
2. for a non-flat target, the position is set to ``|w| x E / (q (1 + c))`` units on ``w``'s side
   (``E = cash + units x q``; the commission of the trade is included) by one fill of the
   difference ``d``, paying ``c |d| q``.

Each fill counts as one trade in ``info["trades"]``. ``info`` describes the account the agent
sees when it chooses: ``equity``, ``cash``, ``units`` at bar ``t``'s close *before* the trade of
bar ``t``, the current target ``position``, ``trades`` so far and the bar's ``timestamp``. (The
backtester's equity at bar ``t`` is after that close's fills: the two agree on every bar without
a trade, the last bar of an episode included.)

**Reward** at the step from ``t`` to ``t + 1`` (the fee and the positions are fractions, not
money)::

    r = w_t log(C[t+1] / C[t]) - fee_bps / 1e4 x |w_t - w_{t-1}| - risk_penalty x w_t^2 x var_t

with ``w_{t-1}`` the previous target (0 at the start of an episode) and ``var_t`` the variance
(``ddof=0``) of the one-bar log returns of the ``window`` bars up to ``t``. It is the position's
log return less costs; the account's log equity growth differs from it by second-order terms
(units drift from the target fraction between trades, fees are charged on traded value).

**Observation** (float32, flattened, shape ``(window x F + 1,)`` or ``(window x F + 2,)``): the
``window`` rows of normalized features ending at bar ``t`` (oldest row first, the ``F`` features
of a row together), then the current target position ``w_{t-1}`` (0 after reset) and, with
``include_pnl=True``, the open position's P&L ``E_t / E_fill - 1`` (``E_fill``: equity just after
the latest fill, 0 when flat). Features and P&L are clipped to ``[-clip, clip]``.

**Features.** ``features=None`` uses the one-bar log return ``ret_1``, the 20-bar volatility
``ret_std_20``, ``close_sma_ratio_20``, ``rsi_14``, ``mom_10`` and the bar's range ``range_hl`` of
:func:`tradenn.features.build_features`; a DataFrame on the data's index, or a callable
``frame -> DataFrame``, supplies its own columns (e.g. ``build_features`` output). With
``normalize="expanding"`` (default) each column becomes an expanding z-score
``(x_t - mean(x_0..x_t)) / std(x_0..x_t)`` once a column has ``norm_warmup`` values, so
observations at ``t`` use bars ``<= t`` only; ``normalize="none"`` only clips.

**Episodes** start at the first bar whose whole window is valid (``episode_length=None``: run to
the end of the data) or at a random bar drawn from ``self.np_random`` (``episode_length=L``:
``L`` steps). ``truncated`` is True at the end of the data or of the episode, ``terminated`` when
equity is ``<= 0`` (the backtester liquidates there).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import pandas as pd
from gymnasium import spaces

from tradenn import checks
from tradenn.account import Account, Settings

__all__ = ["DEFAULT_FEATURES", "MarketEnv"]

DEFAULT_FEATURES = ("ret_1", "ret_std_20", "close_sma_ratio_20", "rsi_14", "mom_10", "range_hl")
"""Columns of :func:`tradenn.features.build_features` observed when ``features=None``."""

_ACTIONS = {
    "long_short": (-1.0, 0.0, 1.0),  # Discrete(3): short, flat, long
    "long_only": (0.0, 1.0),  # Discrete(2): flat, long
    "continuous": None,  # Box(-1, 1, (1,)): the target position itself
}


def _discrete(action: Any) -> int | None:
    """A whole-number action given as a 0-d or one-element array (or float), else None."""
    values = np.asarray(action).ravel()
    if values.size != 1 or not np.isreal(values[0]) or values[0] != np.round(values[0]):
        return None
    return int(values[0])


def _load(data: Any, start: Any, end: Any) -> pd.DataFrame:
    from tradenn.data import load
    from tradenn.data.validation import price_frame

    if isinstance(data, pd.DataFrame):
        frame = price_frame(data, data.attrs.get("source", "data"))
        return frame.loc[start:end] if start is not None or end is not None else frame
    if isinstance(data, str) or hasattr(data, "__fspath__"):
        return load(data, start=start, end=end)
    raise ValueError(
        f"MarketEnv: data must be a dataset name, a data source or a price DataFrame, "
        f"got {type(data).__name__}"
    )


def _raw_features(frame: pd.DataFrame, features: Any) -> pd.DataFrame:
    from tradenn.features import build_features

    if features is None:
        built = build_features(
            frame, lags=0, windows=(20,), indicators=True, volume=False, calendar=False
        )
        return built[list(DEFAULT_FEATURES)]
    table = features(frame) if callable(features) else features
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            "MarketEnv: features must be None, a DataFrame or a callable returning one, "
            f"got {type(table).__name__}"
        )
    if table.shape[1] == 0 or not table.index.equals(frame.index):
        raise ValueError(
            "MarketEnv: features must have at least one column and the data's index "
            f"({len(frame)} bars), got shape {table.shape}"
        )
    try:
        return table.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError("MarketEnv: features must have numeric columns only") from None


def _normalize(raw: pd.DataFrame, how: str, warmup: int, clip: float) -> np.ndarray:
    """Causal normalization of the feature columns, clipped; NaN where there is no value yet."""
    values = raw.to_numpy(dtype=np.float64)
    values = np.where(np.isfinite(values), values, np.nan)  # +-inf: no usable value
    if how == "expanding":
        # pandas' expanding statistics are accumulated left to right: row t uses rows <= t.
        grow = raw.where(np.isfinite(values)).expanding(min_periods=warmup)
        mean = grow.mean().to_numpy()
        std = grow.std(ddof=0).to_numpy()
        flat = std <= 1e-10 * np.maximum(np.abs(mean), 1.0)  # a constant column so far
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(flat, 0.0, (values - mean) / std)
        values[np.isnan(mean) | np.isnan(raw.to_numpy(dtype=np.float64))] = np.nan
    return np.clip(values, -clip, clip)


class MarketEnv(gymnasium.Env):
    """Trade one instrument bar by bar: observe a window of features, choose a target position.

    See the module docstring for the timing, the account, the reward and the observation.

    Parameters
    ----------
    data : str, path or DataFrame
        A bundled dataset name (``"SPX"``), any :func:`tradenn.data.load` source, or a price frame.
    window : int
        Bars of features in an observation.
    features : None, DataFrame or callable
        ``None`` for :data:`DEFAULT_FEATURES`; a DataFrame on the data's index; or a callable
        ``frame -> DataFrame`` (e.g. :func:`tradenn.features.build_features`). NaN rows at the
        start are warm-up; a NaN after the first valid window is an error.
    actions : {"long_short", "long_only", "continuous"}
        ``Discrete(3)`` = target ``{-1, 0, 1}``; ``Discrete(2)`` = ``{0, 1}``;
        ``Box(-1, 1, (1,), float32)`` = the target itself.
    fee_bps : float
        Commission in basis points of traded value (``commission = fee_bps / 1e4``).
    episode_length : int, optional
        Steps per episode from a random start; ``None`` runs from the first valid bar to the end.
    render_mode : {"ansi", "rgb_array"}, optional
        ``render()`` returns a text line, or an ``(H, W, 3)`` uint8 picture of the episode.
    cash : float
        Starting equity of the account.
    include_pnl : bool
        Append the open position's P&L to the observation.
    risk_penalty : float
        Weight of ``w_t^2 x var_t`` subtracted from the reward (``>= 0``).
    normalize : {"expanding", "none"}
        Expanding z-score of each feature column, or the raw values (clipped).
    norm_warmup : int
        Values a column needs before its expanding z-score is used.
    clip : float
        Features and P&L are clipped to ``[-clip, clip]`` (the observation bounds).
    start, end : date-like, optional
        Keep the bars from ``start`` to ``end``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        data: Any = "SPX",
        window: int = 30,
        features: Any = None,
        actions: str = "long_short",
        fee_bps: float = 5.0,
        episode_length: int | None = None,
        render_mode: str | None = None,
        *,
        cash: float = 10_000.0,
        include_pnl: bool = False,
        risk_penalty: float = 0.0,
        normalize: str = "expanding",
        norm_warmup: int = 50,
        clip: float = 5.0,
        start: Any = None,
        end: Any = None,
    ) -> None:
        window = checks.positive_int(window, "window", "MarketEnv")
        if actions not in _ACTIONS:
            raise ValueError(
                f"MarketEnv: actions must be one of {', '.join(_ACTIONS)}, got {actions!r}"
            )
        fee_bps = checks.number(fee_bps, "fee_bps", "MarketEnv", low=0, high=10_000, high_open=True)
        if episode_length is not None:
            episode_length = checks.positive_int(episode_length, "episode_length", "MarketEnv")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"MarketEnv: render_mode must be None, 'ansi' or 'rgb_array', got {render_mode!r}"
            )
        cash = checks.positive_number(cash, "cash", "MarketEnv")
        risk_penalty = checks.number(risk_penalty, "risk_penalty", "MarketEnv", low=0)
        if normalize not in ("expanding", "none"):
            raise ValueError(
                f"MarketEnv: normalize must be 'expanding' or 'none', got {normalize!r}"
            )
        norm_warmup = checks.positive_int(norm_warmup, "norm_warmup", "MarketEnv")
        clip = checks.positive_number(clip, "clip", "MarketEnv")

        frame = _load(data, start, end)
        raw = _raw_features(frame, features)
        z = _normalize(raw, normalize, norm_warmup, clip)
        n, f = z.shape
        valid = ~np.isnan(z).any(axis=1)
        if not valid.any():
            raise ValueError(f"MarketEnv: data has no bar with every feature ({n} bars)")
        first = int(np.argmax(valid))
        if not valid[first:].all():
            bad = first + int(np.argmin(valid[first:]))
            raise ValueError(
                f"MarketEnv: features have NaN at bar {bad} ({frame.index[bad]}) after the warm-up"
            )
        self.first_bar = first + window - 1
        """The first bar an episode can start at (its window is all warm)."""
        steps = n - 1 - self.first_bar
        if steps < 1 or (episode_length is not None and episode_length > steps):
            need = episode_length or 1
            raise ValueError(
                f"MarketEnv: data too short: {n} bars leave {max(steps, 0)} steps after the "
                f"warm-up ({self.first_bar} bars), episode needs {need}"
            )

        self.data = frame
        self.feature_names = list(raw.columns)
        self.window = window
        self.actions = actions
        self.fee_bps = fee_bps
        self.episode_length = episode_length
        self.render_mode = render_mode
        self.cash = cash
        self.include_pnl = bool(include_pnl)
        self.risk_penalty = risk_penalty

        # Everything a step reads is precomputed: features as one contiguous float32 block (a
        # window of rows is one slice of it), prices, returns and variances as Python floats.
        self._flat = np.ascontiguousarray(np.nan_to_num(z, nan=0.0), dtype=np.float32).ravel()
        self._features = f
        self._width = window * f
        close = frame["Close"].to_numpy(dtype=np.float64)
        log_return = np.concatenate(([0.0], np.diff(np.log(close))))
        self._close = close.tolist()
        self._log_return = log_return.tolist()
        self._variance = (
            pd.Series(log_return).rolling(window, min_periods=1).var(ddof=0).fillna(0.0).tolist()
        )
        self._times = list(frame.index)
        self._commission = fee_bps / 1e4
        self._settings = Settings(
            cash=cash, commission=self._commission, trade_on_close=True, fractional=True
        )

        low_position = 0.0 if actions == "long_only" else -1.0
        extra = 2 if self.include_pnl else 1
        low = np.full(self._width + extra, -clip, dtype=np.float32)
        high = np.full(self._width + extra, clip, dtype=np.float32)
        low[self._width], high[self._width] = low_position, 1.0
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._size = self._width + extra
        self._clip = clip
        if actions == "continuous":
            self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
            self._targets = None
        else:
            targets = _ACTIONS[actions]
            self.action_space = spaces.Discrete(len(targets))
            self._targets = dict(enumerate(targets))
        self._reset_account(self.first_bar)

    # ---------------------------------------------------------------------------- episode

    def _reset_account(self, bar: int) -> None:
        self._t = bar
        self._start = bar
        self._end = len(self._close) - 1
        if self.episode_length is not None:
            self._end = bar + self.episode_length
        self._position = 0.0
        self._account = Account(self._settings)
        (self._book,) = self._account.books.values()
        self._units = 0.0
        self._money = self.cash
        self._equity = self.cash
        self._fill_equity = self.cash
        self._trades = 0
        self._last_reward = 0.0
        self._history: list[tuple[float, float]] = [(0.0, self.cash)]  # (position, equity)

    def _observation(self) -> np.ndarray:
        obs = np.empty(self._size, dtype=np.float32)
        end = (self._t + 1) * self._features
        obs[: self._width] = self._flat[end - self._width : end]
        obs[self._width] = self._position
        if self.include_pnl:
            pnl = self._equity / self._fill_equity - 1.0 if self._units else 0.0
            obs[self._width + 1] = min(max(pnl, -self._clip), self._clip)
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "equity": self._equity,
            "position": self._position,
            "units": self._units,
            "cash": self._money,
            "trades": self._trades,
            "timestamp": self._times[self._t],
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; with ``episode_length`` its first bar is drawn from ``np_random``.

        ``options={"start": bar}`` starts at a given bar position instead.
        """
        super().reset(seed=seed)
        last_start = len(self._close) - 1 - (self.episode_length or 1)
        if options and "start" in options:
            bar = options["start"]
            if isinstance(bar, bool) or not isinstance(bar, (int, np.integer)):
                raise ValueError(f"MarketEnv: options['start'] must be a bar position, got {bar!r}")
            if not self.first_bar <= bar <= last_start:
                raise ValueError(
                    f"MarketEnv: options['start'] must be in [{self.first_bar}, {last_start}], "
                    f"got {bar}"
                )
            bar = int(bar)
        elif self.episode_length is None:
            bar = self.first_bar
        else:
            bar = int(self.np_random.integers(self.first_bar, last_start + 1))
        self._reset_account(bar)
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Set the target position at the close of the current bar and move to the next bar."""
        t = self._t
        if t >= self._end or self._equity <= 0.0:
            raise RuntimeError("MarketEnv: the episode is over; call reset()")
        try:  # the common case inline: a plain int of a discrete action space
            target = self._targets[action]
        except (KeyError, TypeError):
            target = self.target_of(action)
        previous = self._position
        if target != previous:
            account, book = self._account, self._book
            before = account.fill_count
            account.bar = t
            account.trade_to(book, target, self._close[t], t)
            self._units, self._money = book.units, account.cash
            fills = account.fill_count - before
            if fills:
                self._trades += fills
                self._fill_equity = self._money + self._units * self._close[t]
            self._position = target
        t += 1
        self._t = t
        self._equity = equity = self._money + self._units * self._close[t]
        reward = target * self._log_return[t] - self._commission * abs(target - previous)
        if self.risk_penalty:
            reward -= self.risk_penalty * target * target * self._variance[t - 1]
        self._last_reward = reward
        if self.render_mode == "rgb_array":
            self._history.append((target, equity))
        return self._observation(), reward, equity <= 0.0, t >= self._end, self._info()

    def observe(self, bar: int, position: float = 0.0) -> np.ndarray:
        """The observation at ``bar`` with a fresh account (resets the episode there).

        Unlike ``reset(options={"start": bar})`` this also works on the last bar, where an
        agent can still decide although no step can follow. ``position`` is the target the
        observation reports as held (what a rollout that arrived at ``bar`` holds; a live
        agent's last decision); the account itself is flat, so ``include_pnl`` reads 0.
        """
        if isinstance(bar, bool) or not isinstance(bar, (int, np.integer)):
            raise ValueError(f"MarketEnv: bar must be a bar position, got {bar!r}")
        if not self.first_bar <= bar < len(self._close):
            raise ValueError(
                f"MarketEnv: bar must be in [{self.first_bar}, {len(self._close) - 1}], got {bar}"
            )
        self._reset_account(int(bar))
        self._position = float(position)
        return self._observation()

    def target_of(self, action: Any) -> float:
        """The target position (fraction of equity, in [-1, 1]) an action stands for."""
        if self._targets is not None:
            target = self._targets.get(_discrete(action))
            if target is None:
                raise ValueError(
                    f"MarketEnv: action must be in 0..{len(self._targets) - 1}, got {action!r}"
                )
            return target
        try:
            target = float(action[0])
        except (TypeError, IndexError):
            target = float(action)
        if target != target:
            raise ValueError("MarketEnv: action is NaN")
        return -1.0 if target < -1.0 else 1.0 if target > 1.0 else target

    # ---------------------------------------------------------------------------- render

    def render(self) -> str | np.ndarray | None:
        """A text line of the state (``"ansi"``) or a picture of the episode (``"rgb_array"``)."""
        if self.render_mode == "ansi":
            return (
                f"{self._times[self._t]}  bar {self._t}  close {self._close[self._t]:.4f}  "
                f"position {self._position:+.3f}  units {self._units:.4f}  "
                f"cash {self._money:,.2f}  equity {self._equity:,.2f}  trades {self._trades}  "
                f"reward {self._last_reward:+.6f}"
            )
        if self.render_mode == "rgb_array":
            return self._picture()
        return None

    def _picture(self) -> np.ndarray:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        bars = np.arange(self._start, self._t + 1)
        positions, equity = (np.array(x) for x in zip(*self._history, strict=True))
        figure = Figure(figsize=(8.0, 6.0), dpi=80)
        canvas = FigureCanvasAgg(figure)
        price_axes, position_axes, equity_axes = figure.subplots(
            3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1, 2]}
        )
        price_axes.plot(bars, np.asarray(self._close)[bars], color="#2c7bb6", lw=1)
        price_axes.set_ylabel("Close")
        price_axes.set_title(f"MarketEnv  {self._times[self._start]} .. {self._times[self._t]}")
        position_axes.step(bars, positions, where="pre", color="#7f7f7f", lw=1)
        position_axes.fill_between(bars, positions, step="pre", alpha=0.3, color="#7f7f7f")
        position_axes.set_ylim(-1.1, 1.1)
        position_axes.set_ylabel("Position")
        equity_axes.plot(bars, equity, color="#1a9641", lw=1)
        equity_axes.set_ylabel("Equity")
        equity_axes.set_xlabel("Bar")
        figure.tight_layout()
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
