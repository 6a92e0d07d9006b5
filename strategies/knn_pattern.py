"""Pattern matching: average what followed the most similar past return windows."""

from tradenn.backtest.forecast import ForecastStrategy
from tradenn.models.knn import KNNRegressor


class KnnPattern(ForecastStrategy):
    """Long or short by the mean next return after the ``k`` past windows most like today's.

    A window is the last ``lookback`` log returns; similarity is ``metric`` distance on
    standardized returns; the neighbours come from the walk-forward training set only (targets
    known before the decision)."""

    features = "returns"
    lookback = 10
    k = 50
    weights = "uniform"
    metric = "euclidean"

    def make_model(self):
        return KNNRegressor(k=self.k, weights=self.weights, metric=self.metric)
