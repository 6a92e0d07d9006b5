"""Walk-forward ridge regression of the next log return on the causal features."""

from strategies.adapters import ForecastStrategy
from tradenn.models.linear import LinearRegression


class LinregForecast(ForecastStrategy):
    """Long when a walk-forward ridge regression forecasts a rise, short when it forecasts a fall.

    The regression reads the current row of the causal feature pipeline (returns and their
    lags, rolling statistics, indicators, volume and calendar features), standardized with each
    fold's training statistics, and is refitted every ``retrain`` bars."""

    features = "full"
    lookback = 1
    alpha = 10.0

    def make_model(self):
        return LinearRegression(alpha=self.alpha)
