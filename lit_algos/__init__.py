"""lit_algos: measure algorithmic progress in language-model training."""

__version__ = "0.1.0"
