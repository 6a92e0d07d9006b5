"""Walk-forward LSTM forecast of the next log return, traded by its sign."""

from strategies.adapters import NeuralForecastStrategy
from tradenn.models.forecasters import LSTMForecaster


class LstmForecast(NeuralForecastStrategy):
    """Long when a walk-forward LSTM forecasts a rise, short when it forecasts a fall.

    The LSTM reads the last ``lookback`` bars of the causal feature pipeline and is refitted
    every ``retrain`` bars on all samples whose outcome is known (early stopping on the most
    recent ``validation_fraction`` of them)."""

    units = 16

    def make_model(self):
        return LSTMForecaster(units=self.units, **self.training_options())
