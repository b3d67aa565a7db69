"""Swappable model components (pure PyTorch, no Lightning)."""
