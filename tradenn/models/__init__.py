"""Forecasting models built on :mod:`tradenn.nn`: the transformer LM, its tokenizer and the
probabilistic forecasting tools (forecast objects, metrics, baselines, evaluation)."""

from .lm_forecaster import LMForecaster
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

__all__ = [
    "QUANTILE_LEVELS",
    "EvaluationResult",
    "Forecast",
    "GaussianRandomWalk",
    "LMForecaster",
    "PriceTokenizer",
    "TransformerLM",
    "coverage",
    "crps_from_samples",
    "evaluate_probabilistic",
    "quantile_loss",
    "weighted_quantile_loss",
]
