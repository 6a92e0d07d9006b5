"""Reinforcement learning for trading (minimal stub; the lead writes the real one)."""

import gymnasium

from tradenn.rl.env import MarketEnv

gymnasium.register("tradenn/Market-v0", entry_point="tradenn.rl.env:MarketEnv")

__all__ = ["MarketEnv"]
