"""LMForecaster against GARCH(1,1) and Gaussian baselines: one-day quantile forecasts (issue 21).

Protocol (default, the issue's): daily log returns of a bundled series (SPX by default), in
percent (``100 log(P[t] / P[t-1])``). Every trading day of the test years (2015-2018: 1,006
forecasts on SPX) is one forecast origin: at the close of day ``t`` each model forecasts the
return of day ``t + 1`` from the data up to day ``t`` only.

* constant volatility: ``N(0, s^2)``, ``s`` the standard deviation (ddof 1) of every return so
  far (an expanding window from the first bar of the series).
* rolling 20-day volatility: the same with the last 20 returns only.
* EWMA filtered historical simulation: the returns so far divided by their causal EWMA(0.94)
  volatility (``tradenn.models.tokenizer.volatility_scaled``, what ``LMForecaster`` tokenizes
  by default); the forecast quantiles are the empirical quantiles of these scaled returns times
  the volatility at the origin: what the LM scores if it learns the shape of the scaled
  returns but nothing about their order.
* GARCH(1,1): ``arch_model(r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")`` refit
  every day on the expanding window of returns up to ``t``; its one-step mean ``m`` and variance
  ``v`` give the Gaussian quantiles ``m + sqrt(v) z_tau``.
* LMForecaster: refit every January on the prices before the year (``fit(prices)``, from the
  first bar of the series), then forecast each day of the year from the returns up to ``t``.
  "exact": quantiles of its next-token distribution (``next_quantiles``, no sampling);
  "sampled": empirical quantiles of ``forecast(history, 1, num_samples=200)``.

Scores: the mean pinball loss over the 19 levels ``tau = 0.05, 0.10, ..., 0.95`` and over all
forecasts (returns in %), the coverage of the 90% interval ``[q_0.05, q_0.95]``, and the
Diebold-Mariano test of each model against GARCH on the per-forecast pinball losses (mean over
the levels), Newey-West variance (``tradenn.models.metrics.diebold_mariano_hac``); ``DM < 0``
favours the model, the p-value is two-sided.

    python bench/lm_vs_garch.py                    # SPX 2015-2018, the table of issue 21
    python bench/lm_vs_garch.py --quick            # SPX 2018 only, no sampled forecasts
    python bench/lm_vs_garch.py --series SPX NASDAQ MSFT GOOGL
    python bench/lm_vs_garch.py --lm '{"epochs": 3}'   # one more LMForecaster configuration

Needs the ``bench`` extra (``arch``). Single-threaded BLAS by default (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

WARMUP_RETURNS = 500
README_SMALL = dict(
    context_length=32,
    d_model=32,
    num_heads=2,
    num_layers=2,
    n_bins=41,
    epochs=3,
    learning_rate=2e-3,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="+", default=["SPX"], help="bundled daily series")
    parser.add_argument("--years", nargs=2, type=int, default=[2015, 2018], help="first last")
    parser.add_argument("--quick", action="store_true", help="test on the last year only")
    parser.add_argument("--samples", type=int, default=200, help="paths of the sampled LM")
    parser.add_argument("--no-sampled", action="store_true", help="skip sampled LM forecasts")
    parser.add_argument("--no-readme", action="store_true", help="skip the README's small LM")
    parser.add_argument("--lm", action="append", default=[], help="extra LM config (JSON)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.quick:
        args.years = [args.years[1], args.years[1]]
        args.no_sampled = True
    for name in args.series:
        run(name, args)


def run(name: str, args: argparse.Namespace) -> None:
    import numpy as np

    from tradenn import data
    from tradenn.models import LMForecaster
    from tradenn.models.metrics import diebold_mariano_hac
    from tradenn.models.probabilistic import QUANTILE_LEVELS, quantile_loss

    prices = data.load(name)["Close"]
    first, last = args.years
    returns = 100 * np.diff(np.log(prices.to_numpy()))
    dates = prices.index[1:]  # dates[i] is the day returns[i] is realized
    targets = np.flatnonzero((dates.year >= first) & (dates.year <= last))
    actual = returns[targets]
    print(
        f"\n{name}: {len(targets)} one-day forecasts, {dates[targets[0]].date()} .. "
        f"{dates[targets[-1]].date()}, returns in %"
    )

    rows: dict[str, tuple[np.ndarray, float]] = {}  # name -> (quantiles (N, 19), seconds)
    baselines = {
        "constant volatility": lambda: gaussian(returns, targets, None),
        "rolling 20-day volatility": lambda: gaussian(returns, targets, 20),
        "EWMA filtered historical simulation": lambda: filtered_historical(returns, targets),
        "GARCH(1,1), daily refit": lambda: garch(returns, targets),
    }
    for key, forecast in baselines.items():
        began = time.perf_counter()
        rows[key] = (forecast(), time.perf_counter() - began)

    configs: list[tuple[str, dict]] = [("LMForecaster() defaults", {})]
    if not args.no_readme:
        configs.append(("LMForecaster, README small", README_SMALL))
    configs += [(f"LMForecaster({text})", json.loads(text)) for text in args.lm]
    for label, config in configs:
        began = time.perf_counter()
        exact, sampled = lm_quantiles(
            lambda config=config: LMForecaster(**config),
            prices,
            targets,
            sampled=0 if args.no_sampled else args.samples,
        )
        seconds = time.perf_counter() - began
        rows[f"{label}, exact"] = (exact, seconds)
        if sampled is not None:
            rows[f"{label}, sampled"] = (sampled, seconds)

    losses = {key: quantile_loss(actual, q).mean(axis=1) for key, (q, _) in rows.items()}
    reference = losses["GARCH(1,1), daily refit"]
    low, high = QUANTILE_LEVELS.index(0.05), QUANTILE_LEVELS.index(0.95)
    width = max(len(key) for key in rows)
    print(f"{'model':<{width}}  pinball  cov90  DM vs GARCH  p-value  seconds")
    for key, (q, seconds) in rows.items():
        covered = float(np.mean((q[:, low] <= actual) & (actual <= q[:, high])))
        statistic, p_value = diebold_mariano_hac(losses[key], reference)
        dm = "" if key.startswith("GARCH") else f"{statistic:11.2f}  {p_value:7.4f}"
        print(f"{key:<{width}}  {losses[key].mean():.4f}  {covered:.3f}  {dm:>20}  {seconds:7.1f}")


def gaussian(returns, targets, window: int | None):
    """Zero-mean Gaussian quantiles with the (expanding or rolling) standard deviation."""
    import numpy as np

    from tradenn.models.probabilistic import QUANTILE_LEVELS

    z = normal_quantiles(QUANTILE_LEVELS)
    sigma = np.array(
        [
            np.std(returns[:i] if window is None else returns[i - window : i], ddof=1)
            for i in targets
        ]
    )
    return sigma[:, None] * z


def filtered_historical(returns, targets, decay: float = 0.94, warmup: int = 20):
    """Empirical quantiles of the EWMA-scaled returns before each target, times the EWMA."""
    import numpy as np

    from tradenn.models.probabilistic import QUANTILE_LEVELS
    from tradenn.models.tokenizer import volatility_scaled

    # one causal pass: z[t - warmup] = r[t] / sigma[t], sigma[t] from returns before t
    z, _ = volatility_scaled(returns, decay=decay, warmup=warmup)
    out = np.empty((len(targets), len(QUANTILE_LEVELS)))
    for row, i in enumerate(targets):
        _, sigma = volatility_scaled(returns[:i], decay=decay, warmup=warmup)
        out[row] = sigma * np.quantile(z[: i - warmup], QUANTILE_LEVELS)
    return out


def garch(returns, targets):
    """GARCH(1,1) refit on the expanding window before every target; Gaussian quantiles."""
    import numpy as np
    from arch import arch_model

    from tradenn.models.probabilistic import QUANTILE_LEVELS

    z = normal_quantiles(QUANTILE_LEVELS)
    out = np.empty((len(targets), len(z)))
    for row, i in enumerate(targets):
        model = arch_model(returns[:i], mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
        fitted = model.fit(disp="off")
        step = fitted.forecast(horizon=1, reindex=False)
        mean, variance = float(step.mean.iloc[-1, 0]), float(step.variance.iloc[-1, 0])
        out[row] = mean + np.sqrt(variance) * z
    return out


def lm_quantiles(make_model, prices, targets, sampled: int):
    """LM refit each January on the prices before it; exact (and sampled) quantiles in %."""
    import numpy as np

    from tradenn.models.probabilistic import QUANTILE_LEVELS

    log_returns = np.diff(np.log(prices.to_numpy()))
    dates = prices.index[1:]
    exact = np.empty((len(targets), len(QUANTILE_LEVELS)))
    samples = np.empty_like(exact) if sampled else None
    years = dates[targets].year
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        model = make_model().fit(prices[prices.index.year < year])
        # the context plus 500 returns before it: what a volatility-scaled model's EWMA reads
        span = model.context_length + WARMUP_RETURNS
        contexts = np.stack([log_returns[max(i - span, 0) : i] for i in targets[rows]])
        exact[rows] = 100 * model.next_quantiles(contexts)
        if samples is not None:
            for row in rows:
                # prices up to the origin: positions 0 .. targets[row] (returns end at t)
                forecast = model.forecast(
                    prices.iloc[: targets[row] + 1], 1, num_samples=sampled, seed=int(row)
                )
                samples[row] = 100 * forecast.quantiles.to_numpy()[0]
    return exact, samples


def normal_quantiles(levels):
    """Standard normal quantiles (via statistics.NormalDist, exact to double precision)."""
    from statistics import NormalDist

    import numpy as np

    return np.array([NormalDist().inv_cdf(level) for level in levels])


if __name__ == "__main__":
    main()
