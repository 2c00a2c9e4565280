"""Importing this module imports every model, so that ``load`` knows every kind."""

from . import bgbb, bgnbd, gammagamma, mbgnbd, paretonbd, sbg  # noqa: F401
