"""Numerics on plain arrays (numpy and scipy only), below the model classes.

The modules here know nothing of pandas, frames or fitted models: the model modules
import them, never the other way round (``tests/test_architecture.py``).
"""
