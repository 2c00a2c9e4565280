"""Models fitted by maximum likelihood: one module per model on one shared base.

The model classes are imported on first use (see ``clvmodels/__init__.py``); this package
exposes the shared pieces.
"""

from ._base import BaseModel, IdentificationWarning, load

__all__ = ["BaseModel", "IdentificationWarning", "load"]
