"""Walk-forward attention forecast (LSTM encoder + attention pooling) traded by its sign."""

from strategies.adapters import NeuralForecastStrategy
from tradenn.models.forecasters import AttentionForecaster


class AttentionForecast(NeuralForecastStrategy):
    """Long when a walk-forward attention model forecasts a rise, short when it forecasts a fall.

    ``encoder="lstm"``: an LSTM over the window, pooled by learned attention over time;
    ``encoder="transformer"``: a small causal transformer encoder."""

    units = 16
    encoder = "lstm"
    num_heads = 2

    def make_model(self):
        return AttentionForecaster(
            units=self.units,
            encoder=self.encoder,
            num_heads=self.num_heads,
            **self.training_options(),
        )
