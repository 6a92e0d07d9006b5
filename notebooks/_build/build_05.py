"""Build and execute notebooks/05_reinforcement_learning.ipynb.

Run from the repository root: ``PYTHONPATH=. python notebooks/_build/build_05.py``.
The notebook is written with its outputs (execution timestamps stripped).
"""

from __future__ import annotations

from pathlib import Path

from notebook import build, code, md

TARGET = Path(__file__).resolve().parents[1] / "05_reinforcement_learning.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """
# 05 · Reinforcement learning: a market environment, Q-learning and DQN

This notebook walks through `tradenn.rl`:

1. **`MarketEnv`**, a Gymnasium environment: what an observation is, what a step does, and
   what `render("rgb_array")` draws.
2. **Training** a tabular `QLearningAgent` (with a `Discretizer`) and a `DQNAgent` on an
   Ornstein-Uhlenbeck price series, where prices revert to a mean, so there is something real
   to learn. We look at the training curves and at the policies they learned.
3. **Judging** the agents like any other strategy: the ready strategies `q_learning` and `dqn`
   retrain walk-forward inside the backtester and trade only bars they never trained on. First
   on the synthetic series, then on the bundled S&P 500.

Data: a synthetic series from `tradenn.data.ornstein_uhlenbeck` and the bundled `SPX` dataset
(daily, 1999–2018). Nothing is downloaded. With the default settings the notebook runs in
well under a minute on a laptop.""",
    ),
    (
        "md",
        """
## Parameters

`FAST = True` keeps training short, so the notebook runs as part of the test suite. Set
`FAST = False` for longer training of the stand-alone agents (the backtests in sections 4 and 5
use the strategies' own defaults either way).""",
    ),
    (
        "code",
        """
FAST = True                                   # False: train the stand-alone agents longer
SEED = 0
OU_BARS = 2000                                # length of the synthetic series
OU_HALF_LIFE = 5                              # bars for a deviation from the mean to halve
TRAIN_BARS = 1200                             # the stand-alone agents train on these bars only
Q_TIMESTEPS = 75_000 if FAST else 500_000    # Q-learning environment steps (250-step episodes)
DQN_TIMESTEPS = 20_000 if FAST else 100_000   # DQN environment steps
COMMISSION = 0.0005                           # 5 bps per trade in the backtests""",
    ),
    (
        "code",
        """
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets

import gymnasium
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from strategies import load_strategy
from tradenn import data
from tradenn.backtest import Backtest
from tradenn.rl import DQNAgent, Discretizer, LinearSchedule, MarketEnv, QLearningAgent

plt.rcParams["figure.dpi"] = 80
pd.set_option("display.precision", 3)""",
    ),
    (
        "md",
        """
## 1. The environment

`MarketEnv("SPX")` trades the bundled S&P 500. An **observation** is the last `window` bars of
six indicator features (return, volatility, distance from the 20-bar average, RSI, momentum,
range), each z-scored with statistics of the past only, followed by the current position. With
`window=30` that is 30 × 6 + 1 = 181 numbers.""",
    ),
    (
        "code",
        """
env = MarketEnv("SPX", window=30, episode_length=250, fee_bps=5.0, render_mode="rgb_array")
obs, info = env.reset(seed=SEED)
print("observation space:", env.observation_space.shape, " action space:", env.action_space)
print("episode starts", info["timestamp"].date(), "with", info)
window = pd.DataFrame(obs[:-1].reshape(env.window, -1), columns=env.feature_names)
print("position entry:", obs[-1])
window.tail()  # the 5 most recent of the 30 rows""",
    ),
    (
        "md",
        """
Actions 0, 1, 2 mean short, flat, long. The action after bar *t* sets the target position at
bar *t*'s close; the reward is the position's log return over the next bar minus the fee on the
position change. Here: go long, hold, flip to short (through flat: two fees), go flat.""",
    ),
    (
        "code",
        """
rows = []
for action in [2, 2, 2, 0, 0, 1]:
    obs, reward, terminated, truncated, info = env.step(action)
    rows.append({"action": action, "reward": reward, **info})
pd.DataFrame(rows).set_index("timestamp")""",
    ),
    (
        "md",
        """
A random policy for the rest of the episode, then `render()`: price, position and equity of
the episode so far.""",
    ),
    (
        "code",
        """
rng = np.random.default_rng(SEED)
done = False
while not done:
    obs, reward, terminated, truncated, info = env.step(int(rng.integers(3)))
    done = terminated or truncated
print(f"random policy: equity {info['equity']:,.0f} after {info['trades']} fills")
picture = env.render()
fig, ax = plt.subplots(figsize=(8, 6))
ax.imshow(picture)
ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """
## 2. A market with something to learn

On an Ornstein-Uhlenbeck series the log price is pulled back to its mean: a deviation halves
in `OU_HALF_LIFE` bars on average. Buying below the mean and selling above it has a real edge,
so an agent that learns from rewards should find it. (Real markets offer much less; see
section 5.)

The agents observe the same compact state as the ready strategies `q_learning` and `dqn`: the
log distance of the close from its 20-bar average and the 5-bar log return (the environment
z-scores both causally), plus the current position. The stand-alone agents train on the first
`TRAIN_BARS` bars in random 250-bar episodes; rewards are multiplied by 100 (per-bar returns in
percent, a scale value learners handle well).""",
    ),
    (
        "code",
        """
ou = data.ornstein_uhlenbeck(OU_BARS, half_life=OU_HALF_LIFE, seed=21)
log_close = np.log(ou["Close"])
state = pd.DataFrame(
    {"trend_gap": log_close - log_close.rolling(20).mean(), "momentum": log_close.diff(5)}
)
returns = log_close.diff()
print(f"lag-1 autocorrelation of daily returns: {returns.autocorr():+.3f}")
print(f"correlation of trend_gap with the next day's return: "
      f"{state['trend_gap'].corr(returns.shift(-1)):+.3f}")


def training_env(bars):
    \"\"\"Random 250-bar episodes over the first `bars` bars, rewards in percent.\"\"\"
    env = MarketEnv(ou.iloc[:bars], window=1, features=state.iloc[:bars], episode_length=250)
    return gymnasium.wrappers.TransformReward(env, lambda reward: 100.0 * reward)


fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(ou["Close"], lw=0.8)
ax.axvline(ou.index[TRAIN_BARS], color="k", ls="--", lw=1)
ax.set_title("Ornstein-Uhlenbeck prices (dashed: end of the stand-alone agents' training data)")
plt.show()""",
    ),
    (
        "md",
        """
## 3. Training

**Tabular Q-learning.** The `Discretizer` cuts each state feature into 5 bins over [−2, 2]
and the position into 3; epsilon decays linearly from 1 to 0.05 over the first 200 episodes'
worth of steps (exploration first, exploitation later), so the early episodes are mostly
random.""",
    ),
    (
        "code",
        """
q_env = training_env(TRAIN_BARS)
discretizer = Discretizer(bins=[5, 5, 3], low=[-2, -2, -1.5], high=[2, 2, 1.5])
q_agent = QLearningAgent(
    q_env.observation_space,
    q_env.action_space,
    discretizer=discretizer,
    learning_rate=0.05,
    gamma=0.9,
    epsilon=LinearSchedule(1.0, 0.05, 200 * 250),
    seed=SEED,
)
q_history = q_agent.train(q_env, Q_TIMESTEPS)
q_returns = pd.Series(q_history.episode_returns)
print(f"Q-table: {q_agent.n_states} states x {q_agent.n_actions} actions")
print(f"mean episode return [%]: first 20 episodes {q_returns[:20].mean():+.1f}, "
      f"last 50 {q_returns[-50:].mean():+.1f}")""",
    ),
    (
        "md",
        """
**DQN.** A `tradenn.nn` MLP (two layers of 64) estimates the Q-values from the continuous
state; a replay buffer, a target network and Double-DQN targets stabilise training. The
settings are those of the `dqn` strategy (a short discount, `gamma=0.5`: the edge is a few
bars long).""",
    ),
    (
        "code",
        """
dqn_env = training_env(TRAIN_BARS)
dqn_agent = DQNAgent(
    dqn_env.observation_space,
    dqn_env.action_space,
    hidden_sizes=(64, 64),
    learning_rate=3e-4,
    gamma=0.5,
    epsilon=LinearSchedule(1.0, 0.05, 6_000),  # the dqn strategy's: 30% of 20,000 steps
    target_update_interval=1000,
    learning_starts=1000,
    seed=SEED,
)
dqn_history = dqn_agent.train(dqn_env, DQN_TIMESTEPS)
dqn_returns = pd.Series(dqn_history.episode_returns, index=dqn_history.episode_timesteps)
early, late = dqn_returns.iloc[:10].mean(), dqn_returns.iloc[-10:].mean()
print(f"{len(dqn_returns)} episodes; mean return [%]: first 10 {early:+.1f}, last 10 {late:+.1f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(q_returns.index + 1, q_returns, lw=0.6, alpha=0.5)
left.plot(q_returns.index + 1, q_returns.rolling(20).mean(), lw=2, label="20-episode mean")
left.set(title="Q-learning", xlabel="episode", ylabel="episode return [%]")
left.legend()
right.plot(dqn_returns.index, dqn_returns, lw=0.6, alpha=0.5)
right.plot(dqn_returns.index, dqn_returns.rolling(10).mean(), lw=2, label="10-episode mean")
right.set(title="DQN", xlabel="environment step", ylabel="episode return [%]")
right.legend()
for ax in (left, right):
    ax.axhline(0, color="k", lw=0.5)
fig.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """
Both curves start near or below zero (random actions pay fees) and climb as exploration
fades: training episodes become profitable. Training returns are in-sample and noisy though;
what did the agents actually learn? Below, the greedy action while flat for each state. Both
state variables measure how far the price has run away from where it was, so a mean-reversion
rule is *long* (green) towards the lower left (below the average, after a fall) and *short*
(red) towards the upper right.""",
    ),
    (
        "code",
        """
from matplotlib.colors import ListedColormap

actions_cmap = ListedColormap(["#d7191c", "#dddddd", "#1a9641"])  # short, flat, long
q_centers = np.linspace(-1.6, 1.6, 5)    # the Q-table's bin centres
grid = np.linspace(-2, 2, 41)            # a finer grid for the network

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, agent, centers, title in [
    (axes[0], q_agent, q_centers, "Q-learning (5 x 5 bins)"),
    (axes[1], dqn_agent, grid, "DQN"),
]:
    policy = np.array([
        [agent.act(np.array([gap, momentum, 0.0], dtype=np.float32)) for gap in centers]
        for momentum in centers
    ])
    ax.imshow(policy, origin="lower", cmap=actions_cmap, vmin=0, vmax=2, extent=[-2, 2, -2, 2],
              aspect="auto", interpolation="nearest")
    ax.set(title=f"{title}: greedy action when flat", xlabel="trend_gap (z)",
           ylabel="momentum (z)")
fig.text(0.5, -0.02, "red: short   grey: flat   green: long", ha="center")
fig.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """
The DQN's map is a clean version of the rule: long after a fall or below the average, short
after a rise or above it, and flat in a thin band between, where the expected move would not
pay the fees. The Q-table gets most of the strongest signals right (long in the left column,
short along the top and mostly on the right) but is patchy elsewhere: cells that are rarely
visited still hold noisy values after a few hundred episodes (`FAST = False` trains longer).""",
    ),
    (
        "md",
        """
## 4. Walk-forward backtests on the synthetic series

Training curves are in-sample. The honest test is the backtester: the ready strategies
`q_learning` and `dqn` train an agent on the bars before each block of `retrain` bars, then act
greedily on the block (bars they never saw), retraining every `retrain` bars. The account is
the backtester's, with a 5 bps commission and fractional units. Settings as in
`tests/backtest/test_agent_strategy.py`: trading starts after 700 bars, retraining every 500.""",
    ),
    (
        "code",
        """
def backtest(prices, name, **params):
    bt = Backtest(prices, load_strategy(name), commission=COMMISSION, fractional=True)
    return bt.run(**params)


COLUMNS = ["Return [%]", "Buy & Hold Return [%]", "Sharpe Ratio", "Max. Drawdown [%]",
           "# Trades", "Exposure Time [%]"]


def summary(results):
    table = pd.DataFrame({name: result.stats[COLUMNS] for name, result in results.items()}).T
    diagnostics = [result.diagnostics for result in results.values()]
    table["Retrainings"] = [d.get("Retrainings", 0) for d in diagnostics]
    table["Train [s]"] = [d.get("Training Time [s]", 0.0) for d in diagnostics]
    return table.apply(pd.to_numeric).round(2)


def plot_equity(results, title):
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, result in results.items():
        ax.plot(result.equity, lw=1.2 if name != "buy_and_hold" else 1.0,
                color="k" if name == "buy_and_hold" else None, label=name)
    ax.set(title=title, ylabel="equity [$]")
    ax.legend()
    plt.show()


ou_results = {
    "q_learning": backtest(ou, "q_learning", train_size=700, retrain=500),
    "dqn": backtest(ou, "dqn", train_size=700, retrain=500),
    "buy_and_hold": backtest(ou, "buy_and_hold"),
}
summary(ou_results)""",
    ),
    (
        "code",
        """
plot_equity(ou_results, "Ornstein-Uhlenbeck: walk-forward RL agents vs buy & hold")""",
    ),
    (
        "md",
        """
On mean-reverting prices both agents make money out of sample after costs, while buying and
holding goes nowhere (the price just oscillates around its mean). The equity is flat until the
first test block. One synthetic path is not a proof, but this is the case where the method
should work, and it does.

## 5. The same strategies on the S&P 500

Now the bundled S&P 500, 1999–2018 (5,031 daily bars), with the strategies' default
walk-forward settings (train on the first 1,000 bars, retrain every 500).""",
    ),
    (
        "code",
        """
spx = data.load("SPX")
spx_results = {
    "q_learning": backtest(spx, "q_learning"),
    "dqn": backtest(spx, "dqn"),
    "buy_and_hold": backtest(spx, "buy_and_hold"),
}
# the agents are flat until their first test block: buy & hold over the span they trade
first = min(spx_results[name].equity.ne(spx_results[name].equity.iloc[0]).idxmax()
            for name in ("q_learning", "dqn"))
span = spx["Close"].iloc[-1] / spx["Close"].loc[first] - 1
print(f"first agent trade {first.date()}; buy & hold from then on: {100 * span:+.1f} %")
summary(spx_results)""",
    ),
    (
        "code",
        """
plot_equity(spx_results, "S&P 500: walk-forward RL agents vs buy & hold")""",
    ),
    (
        "md",
        """
On the S&P 500 both agents lose money while buying and holding doubles it (and gains even more
over the span in which the agents trade), as `docs/rl.md` reports too. The state that carries
the synthetic series' edge has little to offer on an index whose daily returns are close to
unpredictable, while every trade costs commission and time out of the market gives up the
equity premium. Tabular Q-learning is flat most of the time and pays fees on hundreds of short
trades; DQN is in the market more often and claws some of its loss back after 2012, but ends
far behind buy & hold.

**Take-aways.**
* `MarketEnv` is a standard Gymnasium environment whose account matches the backtester's, so
  an agent trained in it can be judged with the same costs and statistics as any strategy.
* Where there is structure (mean reversion), both a Q-table and a DQN learn it from rewards
  alone, and it holds out of sample.
* On real index data these simple agents and states do not beat buying and holding.
  Rising training returns say nothing about that: only the walk-forward backtest does.""",
    ),
]


def main() -> None:
    """Build, execute from notebooks/ and write the notebook with its outputs."""
    build(TARGET.name, [md(text) if kind == "md" else code(text) for kind, text in CELLS])


if __name__ == "__main__":
    main()
