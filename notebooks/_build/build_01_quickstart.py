"""Build and execute notebooks/01_quickstart.ipynb (run from anywhere; PYTHONPATH = worktree)."""

from notebook import build, code, md

cells = [
    md(
        """
        # 01 · Quickstart: data, a backtest, an optimization, a look-ahead audit

        This notebook walks through the main loop of tradenn on the S&P 500 data that ships with
        the package (no network needed):

        1. load and plot the data;
        2. backtest the textbook SMA crossover (`sma_cross`) and read its statistics, trades and
           plot;
        3. optimize two parameters over a grid, look at the heatmap, and ask how much of the best
           result is luck (Deflated Sharpe Ratio, Probability of Backtest Overfitting);
        4. audit the strategy for look-ahead, and watch the audit catch a strategy that peeks.

        Every number below is computed when the notebook runs; the text describes the default
        settings.
        """
    ),
    md(
        """
        ## Parameters

        The defaults run in a few seconds. Set `FAST = False` for a finer optimization grid and
        more look-ahead cut points (about a minute), or `JOBS = None` to spread the sweep over
        all CPU cores.
        """
    ),
    code(
        """
        FAST = True          # False: a finer grid and more look-ahead cuts
        SYMBOL = "SPX"       # any bundled dataset: SPX, NDX, MSFT, GOOGL, EURUSD
        COMMISSION = 0.001   # 10 bps of traded value on every fill
        JOBS = 1             # processes for the sweep (None = all cores)

        if FAST:
            FAST_RANGE, SLOW_RANGE, CUTS = range(5, 55, 5), range(20, 220, 20), 5
        else:
            FAST_RANGE, SLOW_RANGE, CUTS = range(2, 62, 2), range(10, 310, 10), 20
        """
    ),
    code(
        """
        %matplotlib inline
        import matplotlib.pyplot as plt
        import numpy as np
        import pandas as pd

        from strategies import load_strategy
        from tradenn import data
        from tradenn.backtest import Backtest, LookAheadError
        from tradenn.backtest.lookahead import check_lookahead
        from tradenn.features import sma

        plt.rcParams["figure.dpi"] = 80
        pd.set_option("display.width", 120)
        """
    ),
    md(
        """
        ## 1. Data

        `data.load` returns a validated OHLCV frame indexed by date. The bundled S&P 500 series
        covers 1999–2018 (see `data/README.md` for provenance).
        """
    ),
    code(
        """
        spx = data.load(SYMBOL)
        print(f"{len(spx)} bars, {spx.index[0].date()} .. {spx.index[-1].date()}")
        spx.head()
        """
    ),
    code(
        """
        fig, (ax1, ax2) = plt.subplots(
            2, 1, figsize=(9, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        ax1.plot(spx.index, spx["Close"], lw=0.8)
        ax1.set_yscale("log")
        ax1.set_ylabel("Close (log scale)")
        ax1.set_title(f"{SYMBOL}, daily")
        ax2.plot(spx.index, spx["Close"].pct_change().rolling(21).std() * np.sqrt(252), lw=0.8)
        ax2.set_ylabel("21-day vol (ann.)")
        fig.tight_layout()
        """
    ),
    md(
        """
        Two crashes (2000–2002, 2008) and long bull markets: a hard test for any rule, because a
        trend follower must get out in time *and* get back in.

        ## 2. Backtest the SMA crossover

        `load_strategy("sma_cross")` returns the ready-made strategy class from the
        `strategies` package: long when the 10-day SMA crosses above the 20-day SMA, short when it
        crosses below, always in the market. Market orders fill at the **next bar's open**, and
        every fill pays the commission.
        """
    ),
    code(
        """
        SmaCross = load_strategy("sma_cross")
        bt = Backtest(spx, SmaCross, cash=10_000, commission=COMMISSION)
        result = bt.run()  # the class defaults: fast=10, slow=20; run(fast=5) would override
        result.stats
        """
    ),
    md(
        """
        How to read the main lines:

        * **Return [%]** against **Buy & Hold Return [%]**: the strategy against simply holding
          the index over the same bars.
        * **Sharpe Ratio** (annualized mean over volatility of the daily equity returns, risk-free
          rate 0) and **Sortino Ratio** (the same with downside volatility only).
        * **Max. Drawdown [%]**: the worst peak-to-trough loss of equity; **Max. Drawdown
          Duration**: the longest time under water.
        * **# Trades**, **Win Rate [%]**, **Profit Factor** (gross wins / gross losses),
          **Expectancy [%]** (average trade return).
        * **Commissions [$]**: what the trading cost. With 10 bps per fill and a position reversed
          every few weeks, costs are a large part of the story.

        The honest result: the crossover loses most of its capital over twenty years while the
        index roughly doubles. Each closed trade is a row of `result.trades`:
        """
    ),
    code(
        """
        trades = result.trades
        cols = ["Size", "EntryTime", "ExitTime", "EntryPrice", "ExitPrice", "PnL", "ReturnPct",
                "Commission", "Duration"]
        print(trades[cols].head(8).to_string())
        side = np.where(trades["Size"] > 0, "long", "short")
        trades.groupby(side).agg(
            trades=("PnL", "size"),
            total_pnl=("PnL", "sum"),
            win_rate=("PnL", lambda p: (p > 0).mean()),
            mean_return_pct=("ReturnPct", lambda r: 100 * r.mean()),  # ReturnPct is a fraction
        ).round(3)
        """
    ),
    md(
        """
        Splitting by side shows where the money went: in a market that mostly rose, the short
        half of an always-in-the-market crossover is a steady drain.

        `result.plot()` draws the price with entries and exits, equity against buy & hold,
        the drawdown and the position. It returns a matplotlib `Figure` (pass a path to also
        save it as a PNG); here it is shrunk for display.
        """
    ),
    code(
        """
        fig = result.plot()
        fig.set_dpi(60)
        fig
        """
    ),
    md(
        """
        ## 3. Optimize two parameters

        `Backtest.optimize` runs one backtest per combination of the given ranges (here the fast
        and slow SMA lengths, keeping only `fast < slow`) and keeps the combination with the best
        Sharpe ratio. `jobs=1` runs the trials in this process; larger values use several
        processes.
        """
    ),
    code(
        """
        sweep = bt.optimize(
            fast=FAST_RANGE,
            slow=SLOW_RANGE,
            constraint=lambda p: p["fast"] < p["slow"],
            maximize="Sharpe Ratio",
            jobs=JOBS,
        )
        print(sweep.summary(top=8))
        """
    ),
    code(
        """
        fig = sweep.heatmap("fast", "slow")
        fig.set_size_inches(8, 5.5)
        fig.set_dpi(70)
        fig
        """
    ),
    md(
        """
        The heatmap shows the Sharpe ratio of every (fast, slow) pair. The best cells sit along
        the longest slow averages (the well-known 50/200 "golden cross" region), and the short
        averages of the default 10/20 are among the worst. Two warnings: the best slow length is
        the largest one in the grid, so the optimum sits on the grid's edge (a wider grid might
        move it); and a smooth region of good values is more reassuring than a single bright
        cell, but it is still the **in-sample** best of many tries on one history, so its Sharpe
        ratio is biased upwards. Two guards quantify by how much.
        """
    ),
    code(
        """
        best = sweep.best_stats
        print("best parameters:    ", sweep.best_params)
        print(f"Sharpe (annualized): {best['Sharpe Ratio']:.3f}   "
              f"return {best['Return [%]']:.1f}%   trades {best['# Trades']}")
        print(f"buy & hold return:   {best['Buy & Hold Return [%]']:.1f}%")
        print(f"trials:              {sweep.trials}")
        print(f"Deflated Sharpe:     {sweep.deflated_sharpe:.3f}")
        print(f"PBO:                 {sweep.pbo:.3f}")
        """
    ),
    md(
        """
        **Deflated Sharpe Ratio (DSR)** — the probability that the best combination's true Sharpe
        ratio is above what the best of that many *skill-less* trials would reach by chance. It
        starts from the Probabilistic Sharpe Ratio (which accounts for the estimation error of a
        Sharpe ratio, including skewed and fat-tailed returns) and raises the bar from 0 to the
        expected maximum Sharpe of `trials` random tries, given how much the tried Sharpe ratios
        vary. A common threshold is 0.95. Here it is well below that: once the search is accounted
        for, the best crossover's Sharpe ratio is not distinguishable from luck.

        **Probability of Backtest Overfitting (PBO)** — by combinatorially symmetric
        cross-validation: the history is cut into 16 blocks; for every way of calling half of them
        "in-sample" and the other half "out-of-sample", the combination that is best in-sample is
        ranked out-of-sample. PBO is the share of splits in which that winner lands at or below
        the out-of-sample median. 0.5 would mean choosing the best in-sample is no better than
        picking at random; near 0 means the in-sample ranking carries over. Here it is low: the
        *ranking* of parameter pairs is fairly stable (long averages beat short ones in most
        sub-periods), even though the DSR says the best pair's Sharpe ratio itself is not
        convincing.

        The two answer different questions ("is the winner's edge real?" and "does picking the
        winner generalize?"), so read them together. A proper out-of-sample test would re-select
        the parameters on past data only and trade them forward
        (`tradenn.backtest.optimize.walk_forward_optimize`).
        """
    ),
    md(
        """
        ## 4. Look-ahead audit

        A backtest is worthless if a decision used data that was not yet available. The engine
        already guards against this (inside `next()` a later bar cannot be read, and every
        indicator is recomputed on truncated data). `check_lookahead` is an independent audit:
        it reruns the strategy on copies of the data **truncated** at several cut points and on
        copies whose bars after each cut are randomly **perturbed**, and reports the first bar at
        which any decision (order or position) differs from the full run.
        """
    ),
    code(
        """
        report = check_lookahead(SmaCross, spx, cuts=CUTS)
        print(report.summary())
        """
    ),
    md(
        """
        Clean, as it should be. Now a strategy that cheats: the same `SmaCross`, but its fast
        average is a **centered** moving average (`rolling(..., center=True)`), which at each bar
        averages the last *and the next* few closes. The engine refuses to run it: its own
        indicator check notices that the values change when later bars are removed.
        """
    ),
    code(
        """
        def centered_sma(close, n):
            # a moving average centred on each bar: half of its window lies in the future
            return pd.Series(close).rolling(n, center=True).mean().to_numpy()


        class PeekingCross(SmaCross):
            # SmaCross as it is, trading rule included, with only its fast average replaced
            def init(self):
                self.fast_sma = self.I(centered_sma, self.data.Close, self.fast)
                self.slow_sma = self.I(sma, self.data.Close, self.slow)


        try:
            Backtest(spx, PeekingCross, commission=COMMISSION).run()
        except LookAheadError as error:
            print("LookAheadError:", error)
        """
    ),
    md(
        """
        The per-indicator check can be switched off (`check_lookahead=False`, meant for causal
        indicators too costly to compute three times). Do that with the centered average and the
        backtest runs — with a result far too good to be true:
        """
    ),
    code(
        """
        class SmuggledCross(PeekingCross):
            def init(self):
                self.fast_sma = self.I(
                    centered_sma, self.data.Close, self.fast, check_lookahead=False
                )
                self.slow_sma = self.I(sma, self.data.Close, self.slow)


        cheat = Backtest(spx, SmuggledCross, commission=COMMISSION).run()
        cheat.stats[["Return [%]", "Sharpe Ratio", "Win Rate [%]", "# Trades"]]
        """
    ),
    code(
        """
        report = check_lookahead(
            SmuggledCross, spx, cuts=CUTS, backtest_options={"commission": COMMISSION}
        )
        print(report.summary())
        print()
        print("clean:", report.clean, "| first changed decision:", report.first_bar.date())
        """
    ),
    md(
        """
        The audit catches it: when the bars after the first cut point (the end of the
        indicators' warm-up) are removed or perturbed, the order placed *at* that bar changes, so
        that order depended on bars that came after it. Each finding names the run (truncated or
        perturbed), the bar and the decision that changed.

        What the audit cannot catch (see the `tradenn.backtest.lookahead` docstring): a strategy
        holding its own private copy of the full data, which no rerun can truncate. It is a
        strong check, not a proof.

        **Where next:** `02_layers_from_scratch.ipynb` opens up the neural-network library the
        model-based strategies are built on.
        """
    ),
]

if __name__ == "__main__":
    build("01_quickstart.ipynb", cells)
