"""Static covariates of the continuous-time purchase models.

A customer's characteristics z_i (one row of numbers per customer, fixed over time)
scale the population's Gamma and Beta parameters, so each customer has the plain
model's likelihood at their own parameters. The parameterisation is CLVTools' (Bachmann,
Meierer & Näf 2021, "The role of time-varying contextual factors in latent attrition
models for customer base analysis", Marketing Science 40(4), 783-809, section 3 and
its static special case; Fader & Hardie 2007, "Incorporating time-invariant covariates
into the Pareto/NBD and BG/NBD models", brucehardie.com note 019, eqs. 1-2):

* Pareto/NBD: alpha_i = alpha exp(-g_p' z_i), beta_i = beta exp(-g_d' z_i) (r, s shared);
* BG/NBD, MBG/NBD: alpha_i = alpha exp(-g_p' z_i), a_i = a exp(g_d' z_i),
  b_i = b exp(g_d' z_i) (one dropout coefficient for a and b).

A positive purchase coefficient lowers alpha_i and so raises the mean purchase rate
r / alpha_i; a positive Pareto/NBD dropout coefficient raises the mean dropout rate
s / beta_i. Each model states which parameter follows which process with which sign
(``covariate_links``); everything else here is the same for the three.

The gradient follows by the chain rule from the plain likelihood's: for a coefficient
g_k of process P, d ll_i / d g_k = sum over the parameters theta linked to P of
sign * theta_i * z_ik * d ll_i / d theta_i.

Columns are read from the customer frame: numbers and booleans as they are; text and
categorical columns as one indicator per category but the first (sorted), the reference
category, whose name appears in the coefficient (``purchase.channel[social]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._validation import bad_rows_error, finite_number
from ..exceptions import DataWarning, InvalidDataError

__all__ = ["PROCESSES", "CovariateSettings", "Design", "covariate_settings"]

#: the two processes a covariate can enter, and the key of a constraint to both
PROCESSES = ("purchase", "dropout")
SHARED = "shared"
# Prefix of the design columns among a model's arrays (never a role name).
KEY = "covariate:"
# The optimiser may give a coefficient a value at which exp(+-g'z) overflows; the
# linear predictor is clipped here (a factor e^700), where the likelihood is not finite
# anyway and the step is refused.
_ETA_LIMIT = 700.0
# A coefficient whose effect across its covariate's observed range exceeds this many
# e-folds (a factor of 1e13 between customers) is not an estimate any data support.
_EFFECT_CEILING = 30.0
# Beyond this effect the separation test runs: the likelihood at the coefficient moved
# a further _PROBE e-folds outwards; a drop smaller than _FLAT (log-likelihood units)
# means it keeps rising, or stays flat, toward infinity.
_EFFECT_FLOOR = 3.0
_PROBE = 3.0
_FLAT = 1e-2
# Relative eigenvalue of the covariates' correlation matrix below which they are
# collinear (one is a combination of the others).
_COLLINEAR = 1e-10


@dataclass(frozen=True)
class CovariateSettings:
    """The covariate settings of a model, validated: columns per process, columns
    constrained to one coefficient in both, and the L2 penalty of each process."""

    purchase: tuple[str, ...]
    dropout: tuple[str, ...]
    shared: tuple[str, ...]
    penalty: dict[str, float]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every covariate column once, in order of first mention."""
        return tuple(dict.fromkeys((*self.purchase, *self.dropout, *self.shared)))

    def groups(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return (("purchase", self.purchase), ("dropout", self.dropout), (SHARED, self.shared))


def covariate_settings(model: Any) -> CovariateSettings | None:
    """The model's covariate settings checked, or None when it has no covariates."""
    name = type(model).__name__
    lists = {}
    for key in ("purchase_covariates", "dropout_covariates", "shared_covariates"):
        value = getattr(model, key)
        if value is None:
            lists[key] = ()
            continue
        if isinstance(value, str) or not isinstance(value, Sequence | pd.Index | np.ndarray):
            raise InvalidDataError(
                f"{name}: {key}={value!r}: give a list of column names of the customer "
                f"frame, e.g. {key}=[{str(value)!r}]."
            )
        names = list(value)
        bad = [v for v in names if not isinstance(v, str) or not v]
        if bad:
            raise InvalidDataError(
                f"{name}: {key} has {bad[0]!r}; give column names (non-empty text)."
            )
        repeated = sorted({v for v in names if names.count(v) > 1})
        if repeated:
            raise InvalidDataError(f"{name}: {key} names {repeated} more than once.")
        lists[key] = tuple(names)
    purchase, dropout, shared = lists.values()
    for process, names in (("purchase", purchase), ("dropout", dropout)):
        both = sorted(set(names) & set(shared))
        if both:
            raise InvalidDataError(
                f"{name}: {both} are in both shared_covariates and {process}_covariates; a "
                "shared covariate has one coefficient for both processes: name it only "
                "in shared_covariates, or only in the processes' own lists."
            )
    reserved = sorted(set(purchase + dropout + shared) & {"weight", *model.data_columns})
    if reserved:
        raise InvalidDataError(
            f"{name}: {reserved} cannot be covariates: they are the model's own columns."
        )
    penalty = _penalty(name, model.covariate_penalizer)
    if not (purchase or dropout or shared):
        if any(penalty.values()):
            raise InvalidDataError(
                f"{name}: covariate_penalizer={model.covariate_penalizer!r} but no "
                "covariates: name them with purchase_covariates=, dropout_covariates= or "
                "shared_covariates=, or drop the penalty."
            )
        return None
    return CovariateSettings(purchase, dropout, shared, penalty)


def _penalty(name: str, value: Any) -> dict[str, float]:
    hint = ("give a number >= 0 for both processes, or a dict such as "
            "{'purchase': 0.1, 'dropout': 0.1}")  # fmt: skip
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - set(PROCESSES))
        if unknown:
            raise InvalidDataError(
                f"{name}: covariate_penalizer has unknown keys {unknown}; {hint}."
            )
        values = {p: value.get(p, 0.0) for p in PROCESSES}
    else:
        values = dict.fromkeys(PROCESSES, value)
    out = {}
    for process, number in values.items():
        checked = finite_number(number)
        if checked is None or checked < 0:
            raise InvalidDataError(f"{name}: covariate_penalizer={value!r}: {hint}.")
        out[process] = checked
    return out


# --------------------------------------------------------------------- the design


@dataclass(frozen=True)
class Coefficient:
    """One coefficient: its process (or ``shared``), the design column it multiplies."""

    process: str
    term: str

    @property
    def name(self) -> str:
        return f"{self.process}.{self.term}"

    @property
    def processes(self) -> tuple[str, ...]:
        return PROCESSES if self.process == SHARED else (self.process,)


@dataclass
class Design:
    """How covariate columns become numbers, learned from the data of a fit.

    ``levels`` maps each categorical column to its categories (the first is the
    reference) and each numeric column to None. ``center`` and ``scale`` (each design
    column's mean and standard deviation in the fitted data) only condition the
    optimiser; they are not saved.
    """

    settings: CovariateSettings
    levels: dict[str, list[str] | None]
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------ names and terms

    def terms(self, column: str) -> list[str]:
        """The design columns of one covariate column."""
        categories = self.levels[column]
        if categories is None:
            return [column]
        return [f"{column}[{level}]" for level in categories[1:]]

    @property
    def coefficients(self) -> list[Coefficient]:
        return [
            Coefficient(process, term)
            for process, columns in self.settings.groups()
            for column in columns
            for term in self.terms(column)
        ]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.coefficients]

    def penalty_weights(self) -> np.ndarray:
        """lambda of each coefficient: its process's, the sum of both for a shared one
        (it stands for one coefficient in each process)."""
        penalty = self.settings.penalty
        return np.array([sum(penalty[p] for p in c.processes) for c in self.coefficients])

    # ----------------------------------------------------------- learn and encode

    @classmethod
    def learn(cls, settings: CovariateSettings, frame: pd.DataFrame, what: str) -> Design:
        """The design of ``frame``'s covariate columns: categories of text columns; a
        covariate without variation, or one that is a combination of others, is an
        error (the data cannot tell its coefficient from alpha, beta, a or b)."""
        levels: dict[str, list[str] | None] = {}
        for column in settings.columns:
            values = frame[column]
            if _numeric(values):
                levels[column] = None
                continue
            text = _as_text(values, column, frame.index, what)
            categories = sorted(pd.unique(text))
            if len(categories) < 2:
                raise InvalidDataError(
                    f"covariate '{column}' has one category ({categories[0]!r}) for every "
                    f"customer of {what}: its effect cannot be told apart from the model's "
                    "own parameters. Drop it, or fit on customers of several categories."
                )
            levels[column] = categories
        design = cls(settings, levels)
        arrays = design.encode(frame, what)
        for column in settings.columns:
            for term in design.terms(column):
                values = arrays[KEY + term]
                spread = float(values.std())
                if not spread > 0:
                    raise InvalidDataError(
                        f"covariate '{column}' is {values[0]:g} for every customer of "
                        f"{what}: its effect cannot be told apart from the model's own "
                        "parameters. Drop it."
                    )
                design.center[term] = float(values.mean())
                design.scale[term] = spread
        for process in PROCESSES:  # each process's own columns and the shared ones
            design._check_collinear(arrays, design._process_terms(process))
        design._warn_far_from_zero(what)
        return design

    def _process_terms(self, process: str) -> list[str]:
        return [c.term for c in self.coefficients if process in c.processes]

    def _warn_far_from_zero(self, what: str) -> None:
        """A covariate whose values all lie far from 0 (a year, an age) makes alpha, beta
        (or a, b) the values at 0, far outside the data: exp(g * mean) then overflows or
        the estimates run to the edge of their range."""
        for term, center in self.center.items():
            if abs(center) > 10.0 * self.scale[term] and abs(center) > 5.0:
                warnings.warn(
                    f"covariate '{term}' of {what} is far from 0 (mean {center:.4g}, "
                    f"standard deviation {self.scale[term]:.3g}): the model's alpha, beta "
                    "(a, b) are its values at 0, where exp(coefficient x value) may "
                    f"overflow. Centre it (e.g. {term} - {center:.4g}) for a stable fit.",
                    DataWarning, stacklevel=3,
                )  # fmt: skip

    def _check_collinear(self, arrays: dict[str, np.ndarray], terms: list[str]) -> None:
        terms = list(dict.fromkeys(terms))
        if len(terms) < 2:
            return
        standard = np.stack(
            [(arrays[KEY + t] - self.center[t]) / self.scale[t] for t in terms], axis=1
        )
        correlation = standard.T @ standard / len(standard)
        eigenvalues, vectors = np.linalg.eigh(correlation)
        if eigenvalues[0] <= _COLLINEAR * eigenvalues[-1]:
            weights = np.abs(vectors[:, 0])
            involved = [t for t, w in zip(terms, weights, strict=True) if w > 0.1]
            raise InvalidDataError(
                f"the covariates {involved} are collinear: one is a combination of the "
                "others (e.g. indicators of every category, or the same column twice), so "
                "their coefficients are not identified. Drop one of them."
            )

    def encode(self, frame: pd.DataFrame, what: str) -> dict[str, np.ndarray]:
        """The design columns of ``frame`` as float arrays keyed ``covariate:<term>``;
        missing values, text where numbers were fitted and unseen categories are
        errors naming the column, the rows and an example customer."""
        out: dict[str, np.ndarray] = {}
        for column in self.settings.columns:
            values = frame[column]
            categories = self.levels[column]
            if categories is None:
                out[KEY + column] = _as_numbers(values, column, frame.index, what)
                continue
            if _numeric(values) and not isinstance(values.dtype, pd.CategoricalDtype):
                numbers = values.to_numpy()
                text = pd.Series(np.asarray(numbers).astype(str), index=frame.index)
            else:
                text = _as_text(values, column, frame.index, what)
            text_values = np.asarray(text, dtype=object)
            unseen = ~np.isin(text_values, np.asarray(categories, dtype=object))
            if unseen.any():
                example = text_values[int(np.argmax(unseen))]
                raise bad_rows_error(
                    column, unseen, frame.index,
                    f"have categories the model was not fitted on (e.g. {example!r}; it "
                    f"knows {', '.join(map(repr, categories))})",
                    "Map them to a known category, or refit on data that has them.",
                )  # fmt: skip
            for level in categories[1:]:
                out[f"{KEY}{column}[{level}]"] = (text_values == level).astype(np.float64)
        return out

    # --------------------------------------------------------------- the algebra

    def linear_predictors(self, params: Mapping[str, Any],
                          covariates: Mapping[str, np.ndarray]) -> dict[str, Any]:  # fmt: skip
        """eta_P = g_P' z for each process P (broadcasting coefficient draws of shape
        (draws, 1) against customers)."""
        eta: dict[str, Any] = dict.fromkeys(PROCESSES, 0.0)
        for coefficient in self.coefficients:
            contribution = params[coefficient.name] * covariates[KEY + coefficient.term]
            for process in coefficient.processes:
                eta[process] = eta[process] + contribution
        return eta

    def to_state(self) -> dict[str, Any]:
        return {"levels": {k: (None if v is None else list(v)) for k, v in self.levels.items()}}

    @classmethod
    def from_state(cls, settings: CovariateSettings, state: Any, refuse: Any) -> Design:
        where = "extra['covariates']"
        if not isinstance(state, dict) or set(state) != {"levels"}:
            raise refuse("is not a JSON object with the key 'levels'", where)
        levels = state["levels"]
        if not isinstance(levels, dict) or set(levels) != set(settings.columns):
            raise refuse(f"does not give the categories of exactly the covariates "
                         f"{list(settings.columns)}", where + "['levels']")  # fmt: skip
        for column, categories in levels.items():
            if categories is None:
                continue
            if not (isinstance(categories, list) and len(categories) >= 2
                    and all(isinstance(c, str) for c in categories)
                    and len(set(categories)) == len(categories)):  # fmt: skip
                raise refuse("is not a list of two or more distinct categories",
                             f"{where}['levels'][{column!r}]")  # fmt: skip
        return cls(settings, dict(levels))


def individual_parameters(design: Design, links: Mapping[str, tuple[str, int]],
                          params: Mapping[str, Any],
                          covariates: Mapping[str, np.ndarray]) -> dict[str, Any]:  # fmt: skip
    """Each customer's own parameters: the linked ones scaled by exp(sign * eta)."""
    eta = design.linear_predictors(params, covariates)
    out = dict(params)
    for coefficient in design.coefficients:
        del out[coefficient.name]
    for name, (process, sign) in links.items():
        out[name] = params[name] * np.exp(np.clip(sign * eta[process], -_ETA_LIMIT, _ETA_LIMIT))
    return out


def chain_gradient(design: Design, links: Mapping[str, tuple[str, int]],
                   base_names: Sequence[str], base: Mapping[str, Any],
                   individual: Mapping[str, Any], grads: Sequence[np.ndarray],
                   covariates: Mapping[str, np.ndarray]) -> np.ndarray:  # fmt: skip
    """The per-row gradient in (base parameters, coefficients) from the plain
    likelihood's per-row gradient ``grads`` at the customers' own parameters."""
    n = len(next(iter(covariates.values())))
    coefficients = design.coefficients
    out = np.empty((n, len(base_names) + len(coefficients)))
    # d ll / d log theta_i, per linked parameter: theta_i d ll / d theta_i
    elastic = {}
    for j, name in enumerate(base_names):
        g = np.broadcast_to(grads[j], (n,))
        if name in links:
            elastic[name] = g * individual[name]
            out[:, j] = elastic[name] / base[name]
        else:
            out[:, j] = g
    for c, coefficient in enumerate(coefficients):
        total = 0.0
        for name, (process, sign) in links.items():
            if process in coefficient.processes:
                total = total + sign * elastic[name]
        out[:, len(base_names) + c] = total * covariates[KEY + coefficient.term]
    return out


def free_map(design: Design, links: Mapping[str, tuple[str, int]],
             base_names: Sequence[str]) -> np.ndarray | None:  # fmt: skip
    """A with working = A @ free: the optimiser works with centred, standardised
    covariates, whose coefficients are nearly uncorrelated with the parameters they
    scale. With z' = (z - m) / sd, theta exp(sign g'z) = theta' exp(sign (g sd)'z') where
    log theta = log theta' - sign g'm; the free variables are (log theta', g sd)."""
    if not design.scale:
        return None  # a loaded model: nothing to condition
    k = len(base_names)
    coefficients = design.coefficients
    matrix = np.eye(k + len(coefficients))
    for c, coefficient in enumerate(coefficients):
        column = k + c
        center, scale = design.center[coefficient.term], design.scale[coefficient.term]
        matrix[column, column] = 1.0 / scale
        for name, (process, sign) in links.items():
            if process in coefficient.processes:
                matrix[base_names.index(name), column] = -sign * center / scale
    return matrix


def separated(model: Any, params: np.ndarray, arrays: dict[str, np.ndarray],
              weights: np.ndarray) -> list[tuple[str, float, str]]:  # fmt: skip
    """The coefficients whose likelihood keeps rising (or stays flat) toward plus or
    minus infinity: (name, estimate, direction). A coefficient qualifies when its effect
    over its covariate's observed range exceeds ``_EFFECT_FLOOR`` e-folds and moving it
    ``_PROBE`` e-folds further out lowers the log-likelihood by less than ``_FLAT``, or
    when its effect exceeds ``_EFFECT_CEILING`` e-folds at all."""
    design = model.covariates_
    k = len(params) - len(design.coefficients)
    base, _ = model._loglik(params, arrays, False)
    base_total = float(np.multiply(weights, base).sum())
    found = []
    for c, coefficient in enumerate(design.coefficients):
        values = _observed(model, arrays, coefficient.term)
        spread = float(values.max() - values.min())
        value = float(params[k + c])
        effect = abs(value) * spread
        if effect <= _EFFECT_FLOOR:
            continue
        direction = "+infinity" if value > 0 else "-infinity"
        if effect > _EFFECT_CEILING:
            found.append((coefficient.name, value, direction))
            continue
        probe = params.copy()
        probe[k + c] = value + np.sign(value) * _PROBE / spread
        with np.errstate(all="ignore"):
            moved, _ = model._loglik(probe, arrays, False)
            moved_total = float(np.multiply(weights, moved).sum())
        rising = np.isfinite(moved_total) and moved_total > base_total - _FLAT
        if rising:
            found.append((coefficient.name, value, direction))
    return found


def _observed(model: Any, arrays: dict[str, Any], term: str) -> np.ndarray:
    """The values a covariate takes in the fit's data: per customer, or per piece of a
    covariate history (time-varying covariates)."""
    if "segments" not in arrays:
        return arrays[KEY + term]
    seg = arrays["segments"]
    _, purchase, dropout = model._history_columns()
    if term in purchase:
        return seg.z[:, purchase.index(term)]
    return seg.w[:, dropout.index(term)]


# ------------------------------------------------------------------ the columns


def _numeric(values: pd.Series) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return bool(pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype))


def _as_text(values: pd.Series, column: str, index: pd.Index, what: str) -> pd.Series:
    types = pd.api.types
    if types.is_datetime64_any_dtype(values.dtype) or types.is_timedelta64_dtype(values.dtype):
        raise InvalidDataError(
            f"covariate '{column}' of {what} holds dates or durations ({values.dtype}); "
            "give a number (e.g. days since a reference date) or a category."
        )
    if values.dtype == object:
        kinds = {type(v) for v in values.dropna()}
        if len(kinds) > 1 and not kinds <= {str}:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            raise InvalidDataError(
                f"covariate '{column}' of {what} mixes value types ({names}), so 1 and "
                "'1' would be one category; convert it to text or to numbers first."
            )
    missing = values.isna().to_numpy()
    if missing.any():
        raise bad_rows_error(
            column, missing, index, "are missing",
            "A covariate needs a value for every customer: fill them (e.g. with a category "
            "'unknown') or drop these customers.",
        )  # fmt: skip
    return values.astype(str)


def _as_numbers(values: pd.Series, column: str, index: pd.Index, what: str) -> np.ndarray:
    if not _numeric(values):
        raise InvalidDataError(
            f"covariate '{column}' of {what} is {values.dtype}, but the model was fitted on "
            "numbers in it; give it as numbers."
        )
    try:
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"covariate '{column}' of {what} is not numeric (dtype {values.dtype})."
        ) from None
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise bad_rows_error(
            column, bad, index, "are missing, NaN or infinite",
            "A covariate needs a value for every customer: fill or drop these customers.",
        )  # fmt: skip
    return numbers
