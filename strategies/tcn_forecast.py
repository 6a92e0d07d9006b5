"""Walk-forward temporal convolutional network (causal dilated Conv1D) traded by its sign."""

from strategies.adapters import NeuralForecastStrategy
from tradenn.models.forecasters import ConvForecaster


class TcnForecast(NeuralForecastStrategy):
    """Long when a walk-forward TCN forecasts a rise, short when it forecasts a fall.

    Causal dilated convolutions (dilations 1, 2, 4, 8 with kernel 3: a 31-bar receptive
    field) over the causal feature pipeline."""

    lookback = 32
    filters = 16
    kernel_size = 3

    def make_model(self):
        return ConvForecaster(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilations=(1, 2, 4, 8),
            **self.training_options(),
        )
