"""Forecasters and models built on :mod:`tradenn.nn`."""

from .transformer import TransformerLM

__all__ = ["TransformerLM"]
