"""Models fitted by maximum likelihood: one module per model on one shared base.

The model classes are imported on first use (see ``clvmodels/__init__.py``); this package
exposes the shared pieces. :class:`IdentificationWarning` lives in
:mod:`clvmodels.exceptions` and is importable from here too.
"""

from ..exceptions import IdentificationWarning
from ._base import BaseModel, load

__all__ = ["BaseModel", "IdentificationWarning", "load"]
