"""Pattern matching: trade what followed the past price paths most like today's."""

import numpy as np
import pandas as pd

from strategies.adapters import ForecastStrategy
from tradenn.models.knn import KNNRegressor


class KnnPattern(ForecastStrategy):
    """Long or short by the mean next return after the ``k`` past price paths most like today's.

    The pattern at bar t is the shape of the last ``window`` closes seen from today,
    ``log(Close[t-j] / Close[t])`` for j = 1 .. window; similarity is ``metric`` distance on
    standardized shapes; neighbours come from the walk-forward training set only (paths whose
    outcome was known before the decision)."""

    features = "shape"
    lookback = 1
    window = 20
    k = 100
    weights = "uniform"
    metric = "euclidean"

    def make_features(self, data: pd.DataFrame) -> pd.DataFrame:
        if self.features != "shape":
            return super().make_features(data)
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"KnnPattern: window must be an int >= 1, got {self.window!r}")
        log_close = np.log(data["Close"])
        columns = {f"shape_{j}": log_close.shift(j) - log_close for j in range(1, self.window + 1)}
        return pd.DataFrame(columns, index=data.index)

    def make_model(self):
        return KNNRegressor(k=self.k, weights=self.weights, metric=self.metric)
