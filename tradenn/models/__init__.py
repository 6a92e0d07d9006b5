"""Forecasting models built on :mod:`tradenn.nn`, their baselines, and honest evaluation.

* Point forecasters with one contract (``fit(X, y)``, ``predict(X)``, ``save``/``load``):
  :class:`LinearRegression` (OLS/ridge, closed form or gradient descent on ``nn.Dense``),
  :class:`KNNRegressor` / :class:`KNNClassifier`, the networks :class:`LSTMForecaster`,
  :class:`GRUForecaster`, :class:`AttentionForecaster`, :class:`ConvForecaster`, and
  :class:`LMReturnModel` (the transformer LM's next-return distribution).
* :func:`walk_forward` evaluation out of sample, with :mod:`~tradenn.models.metrics`
  (MSE, MAE, directional accuracy, out-of-sample R^2, Diebold-Mariano).
* Probabilistic forecasting: :class:`LMForecaster` (a decoder-only transformer over tokenized
  returns), :class:`Forecast`, quantile/CRPS metrics and baselines.
"""

from .forecasters import (
    AttentionForecaster,
    ConvForecaster,
    GRUForecaster,
    LSTMForecaster,
    NeuralForecaster,
)
from .knn import KNNClassifier, KNNRegressor
from .linear import LinearRegression
from .lm_forecaster import LMForecaster, LMReturnModel
from .metrics import (
    diebold_mariano,
    directional_accuracy,
    forecast_metrics,
    mae,
    mse,
    oos_r2,
)
from .probabilistic import (
    QUANTILE_LEVELS,
    EvaluationResult,
    Forecast,
    GaussianRandomWalk,
    coverage,
    crps_from_samples,
    evaluate_probabilistic,
    quantile_loss,
    weighted_quantile_loss,
)
from .tokenizer import PriceTokenizer
from .transformer import TransformerLM
from .walk_forward import Fold, NotEnoughData, WalkForwardResult, walk_forward, walk_forward_folds

__all__ = [
    "QUANTILE_LEVELS",
    "AttentionForecaster",
    "ConvForecaster",
    "EvaluationResult",
    "Fold",
    "Forecast",
    "GRUForecaster",
    "GaussianRandomWalk",
    "KNNClassifier",
    "KNNRegressor",
    "LMForecaster",
    "LMReturnModel",
    "LSTMForecaster",
    "LinearRegression",
    "NeuralForecaster",
    "NotEnoughData",
    "PriceTokenizer",
    "TransformerLM",
    "WalkForwardResult",
    "coverage",
    "crps_from_samples",
    "diebold_mariano",
    "directional_accuracy",
    "evaluate_probabilistic",
    "forecast_metrics",
    "mae",
    "mse",
    "oos_r2",
    "quantile_loss",
    "walk_forward",
    "walk_forward_folds",
    "weighted_quantile_loss",
]
