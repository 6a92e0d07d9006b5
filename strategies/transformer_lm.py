"""Walk-forward decoder-only transformer over tokenized returns, traded by its forecast."""

from strategies.adapters import ForecastStrategy
from tradenn.models.lm_forecaster import LMReturnModel


class TransformerLm(ForecastStrategy):
    """Long or short by the expected next return of a small GPT-style model of price moves.

    Returns are quantized into ``n_bins`` tokens; the model is refitted walk-forward on token
    windows of ``lookback + 1`` returns and reads its forecast exactly from its next-token
    distribution (no sampling). ``sizing="probability"`` holds ``2 P(up) - 1`` of equity
    instead: small positions, so use fractional units."""

    features = "returns"
    lookback = 32
    d_model = 32
    num_heads = 2
    num_layers = 2
    n_bins = 51
    epochs = 2
    learning_rate = 0.001
    scale_inputs = False  # the tokenizer fixes its own range on the training returns

    def make_model(self):
        return LMReturnModel(
            context_length=self.lookback,
            d_model=self.d_model,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            n_bins=self.n_bins,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )
