"""Exceptions raised by clvmodels.

Every error a user can trigger with their data or settings is one of these, so that
``except clvmodels.exceptions.ClvModelsError`` catches them all and nothing surfaces
as a deep pandas or numpy traceback.
"""

from __future__ import annotations

__all__ = [
    "ClvModelsError",
    "ConfigError",
    "ConvergenceError",
    "DataWarning",
    "DuplicateRowsWarning",
    "EndDateWarning",
    "IdentificationWarning",
    "InvalidDataError",
    "NotFittedError",
    "SamplingWarning",
]


class ClvModelsError(Exception):
    """Base class of every error raised on purpose by clvmodels."""


class InvalidDataError(ClvModelsError, ValueError):
    """Input data that cannot be used as given.

    The message names the column, how many rows are affected, one example customer id
    and what to do about it.

    Examples
    --------
    >>> import pandas as pd
    >>> import clvmodels
    >>> bad = pd.DataFrame({"customer_id": [1], "date": ["not a date"]})
    >>> try:
    ...     clvmodels.summarize(bad)
    ... except clvmodels.exceptions.InvalidDataError as err:
    ...     print("column 'date'" in str(err))
    True
    """


class NotFittedError(ClvModelsError, ValueError, AttributeError):
    """A model was used before ``fit`` was called.

    It subclasses both ``ValueError`` and ``AttributeError``, like scikit-learn's, so
    ``hasattr(model, "params_")`` is ``False`` on an unfitted model.
    """


class ConvergenceError(ClvModelsError, RuntimeError):
    """The optimiser did not reach a maximum of the likelihood.

    The message ends with a checklist of what usually fixes it.
    """

    CHECKLIST = (
        "What to try:\n"
        "  1. Time unit: recency and T of a few to a few hundred units fit best; measure\n"
        "     in weeks rather than days or seconds (summarize(..., time_unit='W')).\n"
        "  2. Regularise: a small penalizer (e.g. penalizer=0.001) keeps parameters finite\n"
        "     when the data cannot identify them.\n"
        "  3. Outliers: customers with extreme frequency (e.g. resellers, test accounts)\n"
        "     dominate the likelihood; inspect the top of summary.sort_values('frequency').\n"
        "  4. Start values: pass initial_params= close to a published or earlier fit.\n"
        "  5. Budget: raise max_iter, or relax tol."
    )

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\n{self.CHECKLIST}")


class IdentificationWarning(UserWarning):
    """A fitted parameter sits at a boundary or is poorly identified by the data.

    The fit still returns; its estimates (and any prediction from them) should be read
    with caution. A small ``penalizer`` or more data usually helps.
    """


class ConfigError(ClvModelsError, ValueError):
    """An experiment configuration (YAML file, ``--set`` override or command-line
    option) is wrong.

    ``field`` is the dotted path of the offending setting (``"models[1].kind"``), or
    ``None`` when the file as a whole is at fault. The message is one line: the field,
    the value and what is expected.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SamplingWarning(UserWarning):
    """MCMC diagnostics flag a problem: r_hat above 1.01, effective sample size below
    400 or divergent transitions. The posterior (and every prediction from it) may be
    unreliable; ``diagnostics()`` shows which parameter."""


class DataWarning(UserWarning):
    """The data are usable but surprising; the message says what was found (the column,
    how many rows, an example customer) and what to do if it is not intended."""


class DuplicateRowsWarning(DataWarning):
    """Exact duplicate transactions (same customer, time and amount) were found and
    kept; ``duplicates="drop"`` removes them, ``"keep"`` accepts them silently and
    ``"error"`` refuses them."""


class EndDateWarning(DataWarning):
    """An end date (``observation_end``, ``calibration_end``, ``holdout_end``) lies well
    after the last transaction of the log: the time after it is counted as inactivity
    that was never observed."""
