"""Evaluation on holdout periods: metrics, baselines, conditional expectations, tracking.

Everything here takes a calibration/holdout frame (:func:`clvmodels.calibration_holdout`)
and fitted purchase models, or baselines that answer the same two questions:

* ``expected_purchases(frame, t)``: expected repeat purchases in the next ``t`` units;
* ``probability_any_purchase(frame, t)``: probability of at least one purchase in them
  (1 - P(X = 0) for the models; it is *not* P(alive), which a customer can satisfy
  without buying).

Baselines (evaluated exactly like the models):

* :class:`NaiveBaseline`: every customer keeps their calibration purchase rate
  frequency / T;
* :class:`GradientBoostingBaseline`: scikit-learn's gradient-boosting regressor on RFM
  features, trained on an *earlier* split of the calibration period (features up to the
  split, target after it), then applied to the whole calibration period. It never sees
  holdout data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from ._validation import require_columns
from .data.reader import prepare_transactions
from .data.semantics import parse_end
from .data.summary import calibration_holdout
from .data.timeunits import time_unit_nanoseconds
from .exceptions import InvalidDataError, NotFittedError
from .models._base import point_estimate

__all__ = [
    "GradientBoostingBaseline",
    "NaiveBaseline",
    "calibration_table",
    "conditional_expectations",
    "evaluate",
    "likelihood_ratio_test",
    "normalized_gini",
    "tracking",
]


class LikelihoodRatio(NamedTuple):
    """The result of :func:`likelihood_ratio_test`."""

    statistic: float
    df: int
    p_value: float


def likelihood_ratio_test(restricted: Any, full: Any) -> LikelihoodRatio:
    """Likelihood-ratio test of a restricted model against a fuller one.

    The statistic 2 (ln L_full - ln L_restricted) is asymptotically chi-squared with as
    many degrees of freedom as the full model has more parameters (Wilks 1938, "The
    large-sample distribution of the likelihood ratio for testing composite
    hypotheses", Annals of Mathematical Statistics 9(1), 60-62), when the restricted
    model is the full one with some parameters fixed or constrained: a model without a
    covariate against one with it, or a covariate shared by both processes
    (``shared_covariates``) against one coefficient per process. Both must be
    maximum-likelihood fits of the same model on the same customers, without penalties
    (a penalised fit does not maximise the likelihood).

    Parameters
    ----------
    restricted, full : fitted maximum-likelihood models of one class

    Returns
    -------
    LikelihoodRatio
        ``statistic``, ``df`` and ``p_value``.

    Examples
    --------
    >>> import clvmodels
    >>> from clvmodels.simulate import simulate_pnbd
    >>> import numpy as np, pandas as pd
    >>> z = pd.DataFrame({"vip": np.random.default_rng(0).integers(0, 2, 2000)})
    >>> data = simulate_pnbd(2000, r=0.55, alpha=10.6, s=0.61, beta=11.7, T=39.0,
    ...                      random_state=0, covariates=z, purchase_coefficients={"vip": 0.7})
    >>> plain = clvmodels.ParetoNBD().fit(data)
    >>> full = clvmodels.ParetoNBD(purchase_covariates=["vip"]).fit(data)
    >>> test = clvmodels.likelihood_ratio_test(plain, full)
    >>> test.df, bool(test.p_value < 1e-6)
    (1, True)
    """
    for label, model in (("restricted", restricted), ("full", full)):
        if not hasattr(model, "log_likelihood_") or hasattr(model, "posterior_samples"):
            raise InvalidDataError(
                f"{label}: give a fitted maximum-likelihood model (the test compares "
                "maximised likelihoods)."
            )
        if getattr(model, "penalizer", 0) or _penalised(model):
            raise InvalidDataError(
                f"{label}: {type(model).__name__} was fitted with a penalty, which does not "
                "maximise the likelihood; refit both without one for the test."
            )
    if type(restricted) is not type(full):
        raise InvalidDataError(
            f"restricted is a {type(restricted).__name__} and full a {type(full).__name__}: "
            "the test compares two fits of the same model."
        )
    if not np.isclose(restricted.n_customers_, full.n_customers_, rtol=1e-12):
        raise InvalidDataError(
            f"the models were fitted on {restricted.n_customers_:,} and "
            f"{full.n_customers_:,} customers; the test needs the same customers."
        )
    _check_nested(restricted, full)
    df = len(full.param_names) - len(restricted.param_names)
    if df < 1:
        raise InvalidDataError(
            f"full has {len(full.param_names)} parameters and restricted "
            f"{len(restricted.param_names)}: the full model must have more parameters."
        )
    statistic = 2.0 * (full.log_likelihood_ - restricted.log_likelihood_)
    if statistic < -1e-6 * max(1.0, abs(full.log_likelihood_)):
        warnings.warn(
            f"the full model's log-likelihood ({full.log_likelihood_:.6g}) is below the "
            f"restricted one's ({restricted.log_likelihood_:.6g}): it did not reach its "
            "maximum (refit it, e.g. starting from the restricted estimates); the statistic "
            "is set to 0.",
            UserWarning, stacklevel=2,
        )  # fmt: skip
    statistic = max(statistic, 0.0)
    return LikelihoodRatio(float(statistic), int(df), float(stats.chi2.sf(statistic, df)))


def _check_nested(restricted: Any, full: Any) -> None:
    """The restricted model's covariates enter no process the full model's do not: per
    process, its columns (shared ones in both) are among the full model's."""
    r_design, f_design = (getattr(m, "covariates_", None) for m in (restricted, full))
    if r_design is None:
        return
    if f_design is None:
        raise InvalidDataError(
            "restricted has covariates and full none: the restricted model must be the "
            "full one with some coefficients fixed at 0 or set equal."
        )
    for process in ("purchase", "dropout"):
        inner = set(r_design._process_terms(process))
        outer = set(f_design._process_terms(process))
        if not inner <= outer:
            raise InvalidDataError(
                f"restricted has {process} covariates {sorted(inner - outer)} that full "
                "lacks: the models are not nested, and the test does not apply."
            )


def _penalised(model: Any) -> bool:
    penalty = getattr(model, "covariate_penalizer", 0)
    values = penalty.values() if isinstance(penalty, Mapping) else [penalty]
    return any(float(v) != 0 for v in values)


# ----------------------------------------------------------------------- helpers


def _columns(frame: pd.DataFrame) -> dict[str, str]:
    """Names of the calibration columns (``*_cal`` or plain) and holdout columns."""
    suffix = "_cal" if "frequency_cal" in frame.columns else ""
    needed = [f"frequency{suffix}", f"recency{suffix}", f"T{suffix}", "frequency_holdout",
              "duration_holdout"]  # fmt: skip
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InvalidDataError(
            f"the frame lacks {', '.join(missing)}; evaluation needs a calibration/holdout "
            "frame from clvmodels.calibration_holdout."
        )
    return {
        "frequency": f"frequency{suffix}",
        "recency": f"recency{suffix}",
        "T": f"T{suffix}",
        "monetary_value": f"monetary_value{suffix}",
    }


def _by_duration(frame: pd.DataFrame, predict) -> pd.Series:
    """Apply ``predict(part, t)`` to groups of customers sharing a holdout duration."""
    durations = frame["duration_holdout"]
    if durations.nunique() == 1:
        value = point_estimate(predict(frame, float(durations.iloc[0])))
        return pd.Series(np.asarray(value), index=frame.index)
    parts = [
        pd.Series(np.asarray(point_estimate(predict(part, float(t)))), index=part.index)
        for t, part in frame.groupby("duration_holdout", sort=False)
    ]
    return pd.concat(parts).reindex(frame.index)


def _named(models: Any) -> dict[str, Any]:
    if isinstance(models, Mapping):
        return dict(models)
    if isinstance(models, Sequence) and not isinstance(models, str):
        named: dict[str, Any] = {}
        for model in models:
            name = getattr(type(model), "kind", "") or type(model).__name__
            named[name if name not in named else f"{name}_{len(named)}"] = model
        return named
    return _named([models])


def predicted_purchases(model: Any, frame: pd.DataFrame) -> pd.Series:
    """Expected holdout purchases of each customer under ``model``."""
    return _by_duration(frame, lambda part, t: model.expected_purchases(part, t))


def predicted_any_purchase(model: Any, frame: pd.DataFrame) -> pd.Series:
    """P(at least one purchase in the holdout) of each customer under ``model``."""
    if hasattr(model, "probability_any_purchase"):
        return _by_duration(frame, lambda part, t: model.probability_any_purchase(part, t))
    return _by_duration(
        frame, lambda part, t: 1.0 - point_estimate(model.probability_purchases(part, t, 0))
    )


def normalized_gini(actual: Any, predicted: Any) -> float:
    """Gini of ``actual`` ordered by ``predicted``, relative to the best possible order.

    1 means the prediction ranks customers exactly as their actual values; 0 means no
    better than random.

    Examples
    --------
    >>> normalized_gini([0, 1, 5, 10], [0, 1, 5, 10])
    1.0
    """
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)

    def gini(order_by: np.ndarray) -> float:
        # stable sort, descending, ties in original order
        order = np.lexsort((np.arange(len(order_by)), -order_by))
        share = np.cumsum(actual[order]) / actual.sum()
        return float(share.sum() / len(share) - (len(share) + 1) / (2 * len(share)))

    best = gini(actual)
    return gini(predicted) / best if best > 0 else float("nan")


def _top_share(actual: pd.Series, predicted: pd.Series, share: float) -> float:
    """Share of actual holdout purchases made by the top ``share`` of customers by
    prediction (ties broken by order)."""
    n_top = max(1, round(share * len(actual)))
    order = np.lexsort((np.arange(len(predicted)), -predicted.to_numpy()))
    total = actual.sum()
    return float(actual.to_numpy()[order[:n_top]].sum() / total) if total > 0 else float("nan")


# --------------------------------------------------------------------- baselines


class NaiveBaseline:
    """Each customer keeps their calibration purchase rate: frequency / T per unit.

    Probabilities assume Poisson purchases at that rate: 1 - exp(-rate * t).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"frequency": [0, 4], "recency": [0.0, 8.0], "T": [5.0, 10.0]})
    >>> NaiveBaseline().fit(frame).expected_purchases(frame, 5).tolist()
    [0.0, 2.0]
    """

    kind = "naive"

    def fit(self, frame: pd.DataFrame, **_: Any) -> NaiveBaseline:
        """Nothing to learn; returns ``self``."""
        self.fitted_ = True
        return self

    def expected_purchases(self, frame: pd.DataFrame, t: float) -> pd.Series:
        names = _calibration_names(frame)
        x = frame[names["frequency"]].to_numpy(dtype=np.float64)
        big_t = frame[names["T"]].to_numpy(dtype=np.float64)
        rate = np.divide(x, big_t, out=np.zeros(len(x)), where=big_t > 0)
        return pd.Series(rate * t, index=frame.index, name="expected_purchases")

    def probability_any_purchase(self, frame: pd.DataFrame, t: float) -> pd.Series:
        return -np.expm1(-self.expected_purchases(frame, t))


def _calibration_names(frame: pd.DataFrame) -> dict[str, str]:
    suffix = "_cal" if "frequency_cal" in frame.columns else ""
    return {k: f"{k}{suffix}" for k in ("frequency", "recency", "T", "monetary_value")}


def _features(frame: pd.DataFrame, monetary: bool) -> np.ndarray:
    """RFM features of a summary frame: frequency, recency, T, time since the last
    purchase, purchase rate and, with ``monetary``, monetary value."""
    names = _calibration_names(frame)
    x = frame[names["frequency"]].to_numpy(dtype=np.float64)
    t_x = frame[names["recency"]].to_numpy(dtype=np.float64)
    big_t = frame[names["T"]].to_numpy(dtype=np.float64)
    columns = [x, t_x, big_t, big_t - t_x, np.divide(x, big_t, out=np.zeros(len(x)),
                                                      where=big_t > 0)]  # fmt: skip
    if monetary:
        if names["monetary_value"] not in frame.columns:
            raise InvalidDataError(
                "the baseline was trained with monetary value: the frame needs "
                f"{names['monetary_value']} (calibration_holdout(..., amount=...))."
            )
        columns.append(frame[names["monetary_value"]].to_numpy(dtype=np.float64))
    return np.column_stack(columns)


class GradientBoostingBaseline:
    """Machine-learning baseline: gradient boosting on RFM features.

    ``fit`` splits the *calibration* period in two: features from the customers'
    history up to ``calibration_end - window`` and, as the target, their purchases in the
    final ``window`` (by default the holdout duration, at most half of the calibration
    span). Predictions use the features of the whole calibration period and are scaled
    from ``window`` to the requested horizon. Nothing after ``calibration_end`` is read.

    Parameters
    ----------
    random_state : int, default 0
        Seed of the regressor.
    **params
        Passed to ``sklearn.ensemble.GradientBoostingRegressor`` (defaults:
        ``n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8``).
    """

    kind = "gradient_boosting"

    def __init__(self, *, random_state: int = 0, **params: Any) -> None:
        self.random_state = random_state
        self.params = params

    def fit(
        self,
        transactions: Any,
        *,
        calibration_end: Any,
        window: float | None = None,
        customer_id: str = "customer_id",
        date: str = "date",
        amount: str | None = None,
        time_unit: str = "D",
        granularity: str = "D",
        date_format: str | None = None,
        duplicates: str = "warn",
    ) -> GradientBoostingBaseline:
        """Train on the calibration period of ``transactions`` only; returns ``self``."""
        from sklearn.ensemble import GradientBoostingRegressor

        tx = prepare_transactions(
            transactions, customer_id=customer_id, date=date, amount=amount,
            granularity=granularity, date_format=date_format, duplicates=duplicates,
        )  # fmt: skip
        unit_ns = time_unit_nanoseconds(time_unit)
        end = pd.Timestamp(calibration_end)
        span = (end.value - int(tx.granularity.start_ns(tx.window.min()))) / unit_ns
        window = span / 2 if window is None else min(float(window), span / 2)
        if window <= 0:
            raise InvalidDataError(
                "GradientBoostingBaseline: the calibration period is too short to split."
            )
        split = end - pd.Timedelta(round(window * unit_ns), "ns")
        # Rows after calibration_end are dropped unread: the holdout stays unseen. The log
        # is read again with the caller's duplicates rule (already warned about above).
        training = calibration_holdout(
            transactions, calibration_end=split, holdout_end=end, customer_id=customer_id,
            date=date, amount=amount, time_unit=time_unit, granularity=granularity,
            date_format=date_format, after_end="drop",
            duplicates="keep" if duplicates == "warn" else duplicates,
        )  # fmt: skip
        defaults = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8}
        self.regressor_ = GradientBoostingRegressor(
            random_state=self.random_state, **{**defaults, **self.params}
        ).fit(
            _features(training, amount is not None),
            training["frequency_holdout"].to_numpy(dtype=np.float64),
        )
        self.uses_monetary_value_ = amount is not None
        self.window_ = float(training["duration_holdout"].iloc[0])
        self.n_training_customers_ = len(training)
        self.split_ = split
        return self

    def expected_purchases(self, frame: pd.DataFrame, t: float) -> pd.Series:
        if not hasattr(self, "regressor_"):
            raise NotFittedError(
                "This GradientBoostingBaseline is not fitted yet. Call fit(transactions, "
                "calibration_end=...) first."
            )
        features = _features(frame, self.uses_monetary_value_)
        predicted = np.clip(self.regressor_.predict(features), 0.0, None)
        return pd.Series(predicted * t / self.window_, index=frame.index,
                         name="expected_purchases")  # fmt: skip

    def probability_any_purchase(self, frame: pd.DataFrame, t: float) -> pd.Series:
        return -np.expm1(-self.expected_purchases(frame, t))


# ------------------------------------------------------------------- the tables


def conditional_expectations(
    models: Any, frame: pd.DataFrame, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency, actual and predicted.

    The table of Fader, Hardie & Lee (2005), figure 5: customers grouped by their
    number of repeat purchases in the calibration period (0, 1, ..., and
    ``max_frequency``+ together).

    Returns
    -------
    pandas.DataFrame
        Index: bins ``"0"`` .. ``"6"``, ``"7+"``; columns ``customers``, ``actual`` and
        one per model (mean predicted holdout purchases).

    Examples
    --------
    >>> import clvmodels
    >>> frame = clvmodels.calibration_holdout(
    ...     clvmodels.datasets.load_cdnow(), calibration_end="1997-09-30",
    ...     holdout_end="1998-06-30", time_unit="W")
    >>> table = conditional_expectations({"naive": NaiveBaseline().fit(frame)}, frame)
    >>> table["actual"].round(3).tolist()
    [0.237, 0.697, 1.393, 1.56, 2.532, 2.947, 3.862, 6.359]
    """
    names = _columns(frame)
    x = frame[names["frequency"]].to_numpy()
    bins = np.minimum(x, max_frequency).astype(int)
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    label = pd.Categorical.from_codes(bins, categories=labels)
    data = {"actual": frame["frequency_holdout"].to_numpy(dtype=np.float64)}
    for name, model in _named(models).items():
        data[name] = predicted_purchases(model, frame).to_numpy()
    grouped = pd.DataFrame(data, index=frame.index).groupby(label, observed=False)
    table = grouped.mean()
    table.insert(0, "customers", grouped.size())
    table.index = pd.Index(labels, name="frequency_cal")
    return table


def calibration_table(model: Any, frame: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """Predicted P(at least one holdout purchase) in bins against the observed share.

    Bins are equal-width on [0, 1]; empty bins are dropped.

    Returns
    -------
    pandas.DataFrame
        Per bin: ``customers``, ``predicted`` (mean probability), ``observed`` (share who
        purchased).
    """
    _columns(frame)
    predicted = predicted_any_purchase(model, frame).to_numpy()
    observed = (frame["frequency_holdout"].to_numpy() > 0).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(predicted, edges[1:-1]), 0, bins - 1)
    table = (
        pd.DataFrame({"bin": which, "predicted": predicted, "observed": observed})
        .groupby("bin")
        .agg(customers=("predicted", "size"), predicted=("predicted", "mean"),
             observed=("observed", "mean"))
    )
    table.index = pd.Index(
        [f"{edges[b]:.1f}-{edges[b + 1]:.1f}" for b in table.index], name="probability"
    )
    return table


def evaluate(
    models: Any,
    frame: pd.DataFrame,
    *,
    spend_model: Any = None,
    baselines: Sequence[str] = ("naive",),
    transactions: Any = None,
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    date_format: str | None = None,
    duplicates: str = "warn",
    bins: int = 10,
    random_state: int = 0,
) -> pd.DataFrame:
    """Holdout metrics of each model and baseline, one row each.

    Parameters
    ----------
    models : dict of name -> fitted model, or a list of fitted models
        Purchase models (BG/NBD, Pareto/NBD, MBG/NBD, ...).
    frame : pandas.DataFrame
        From :func:`clvmodels.calibration_holdout`.
    spend_model : GammaGamma, optional
        Adds value metrics: predicted holdout value = predicted purchases x expected
        spend, against actual purchases x their mean value (needs ``amount`` in the
        frame).
    baselines : sequence of {"naive", "gradient_boosting"}
        Baselines to evaluate alongside; ``gradient_boosting`` needs ``transactions``.
    transactions : pandas.DataFrame, optional
        The raw log the frame was built from, for the machine-learning baseline; the
        settings (time unit, granularity, calibration end) are read from the frame.
    customer_id, date, amount, date_format
        Columns of ``transactions``.
    bins : int, default 10
        Bins of the probability calibration.
    random_state : int, default 0
        Seed of the machine-learning baseline.

    Returns
    -------
    pandas.DataFrame
        Index: model names; columns ``mae``, ``rmse``, ``total_error_pct``, ``spearman``,
        ``top10_share``, ``top20_share``, ``brier``, ``calibration_error`` and, with a
        spend model, ``value_mae``, ``value_rmse``, ``value_spearman``, ``value_gini``.
        ``top10_share`` is the share of holdout purchases made by the 10 % of customers
        ranked highest; ``calibration_error`` is the customer-weighted mean absolute gap
        between predicted and observed P(any purchase) over the bins.
    """
    _columns(frame)
    named = _named(models)
    for baseline in baselines:
        if baseline == "naive":
            named["naive"] = NaiveBaseline().fit(frame)
        elif baseline == "gradient_boosting":
            named["gradient_boosting"] = _fit_ml_baseline(
                frame, transactions, customer_id=customer_id, date=date, amount=amount,
                date_format=date_format, duplicates=duplicates, random_state=random_state,
            )  # fmt: skip
        else:
            raise InvalidDataError(
                f"unknown baseline {baseline!r}; use 'naive' or 'gradient_boosting'."
            )
    actual = frame["frequency_holdout"].astype(np.float64)
    spend = None
    if spend_model is not None:
        if "monetary_value_holdout" not in frame.columns:
            raise InvalidDataError(
                "value metrics need monetary_value_holdout: build the frame with "
                "calibration_holdout(..., amount='amount')."
            )
        spend = point_estimate(spend_model.expected_spend(frame))
        actual_value = actual * frame["monetary_value_holdout"]
    rows = {}
    for name, model in named.items():
        predicted = predicted_purchases(model, frame)
        error = predicted - actual
        row = {
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error**2).mean())),
            "total_error_pct": float(100 * error.sum() / actual.sum()),
            "spearman": float(stats.spearmanr(predicted, actual).statistic),
            "top10_share": _top_share(actual, predicted, 0.1),
            "top20_share": _top_share(actual, predicted, 0.2),
        }
        probability = predicted_any_purchase(model, frame)
        purchased = (actual > 0).astype(np.float64)
        row["brier"] = float(((probability - purchased) ** 2).mean())
        table = calibration_table(model, frame, bins=bins)
        row["calibration_error"] = float(
            np.average(np.abs(table["predicted"] - table["observed"]), weights=table["customers"])
        )
        if spend is not None:
            value = predicted * spend
            value_error = value - actual_value
            row["value_mae"] = float(np.abs(value_error).mean())
            row["value_rmse"] = float(np.sqrt((value_error**2).mean()))
            row["value_spearman"] = float(stats.spearmanr(value, actual_value).statistic)
            row["value_gini"] = normalized_gini(actual_value, value)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def _fit_ml_baseline(frame, transactions, *, random_state, **columns) -> GradientBoostingBaseline:
    if transactions is None:
        raise InvalidDataError(
            "the gradient_boosting baseline learns from the transactions before "
            "calibration_end: pass transactions= (the log the frame was built from)."
        )
    settings = frame.attrs.get("clvmodels", {})
    if "calibration_end" not in settings:
        raise InvalidDataError(
            "the frame does not say its calibration end (frame.attrs['clvmodels']); build "
            "it with clvmodels.calibration_holdout."
        )
    return GradientBoostingBaseline(random_state=random_state).fit(
        transactions,
        calibration_end=settings["calibration_end"],
        window=float(frame["duration_holdout"].iloc[0]),
        time_unit=settings.get("time_unit") or "D",
        granularity=settings.get("granularity") or "D",
        **columns,
    )


# ---------------------------------------------------------------------- tracking


def tracking(
    models: Any,
    transactions: Any,
    *,
    calibration_end: Any,
    holdout_end: Any,
    customer_id: str = "customer_id",
    date: str = "date",
    time_unit: str = "W",
    granularity: str = "D",
    date_format: str | None = None,
    duplicates: str = "warn",
    covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Actual vs expected repeat transactions per period, calibration and holdout.

    The cohort is every customer whose first purchase falls in the calibration period;
    each enters on their own first purchase date (not all at time 0), and the expected
    repeat transactions of the cohort by time s are sum_i E[X(s - first_i)] for a new
    customer (FHL 2005, figure 1). Periods are consecutive ``time_unit``s from the first
    purchase window of the cohort. A model with covariates expects each customer's
    curve at their own covariates, read from ``covariates`` (a per-customer frame
    indexed by customer id, such as the summary the model was fitted on).

    Returns
    -------
    pandas.DataFrame
        Index ``period`` 1..K; columns ``actual`` and one per model, incremental (use
        ``.cumsum()`` for the cumulative curves). ``attrs["calibration_periods"]`` is the
        number of periods in the calibration period, ``attrs["time_unit"]`` the unit.

    Examples
    --------
    >>> import clvmodels
    >>> tx = clvmodels.datasets.load_cdnow()
    >>> frame = clvmodels.calibration_holdout(tx, calibration_end="1997-09-30",
    ...                                       holdout_end="1998-06-30", time_unit="W")
    >>> table = tracking({"bgnbd": clvmodels.BGNBD().fit(frame)}, tx,
    ...                  calibration_end="1997-09-30", holdout_end="1998-06-30")
    >>> int(table["actual"].sum()), table.attrs["calibration_periods"]
    (4339, 39)
    """
    tx = prepare_transactions(
        transactions, customer_id=customer_id, date=date, amount=None,
        granularity=granularity, date_format=date_format, duplicates=duplicates,
    )  # fmt: skip
    window = tx.granularity
    cal_last = parse_end(calibration_end, "calibration_end").last_ns
    hold_last = parse_end(holdout_end, "holdout_end").last_ns
    cal_end = int(window.index(np.array([cal_last]))[0])
    hold_end = int(window.index(np.array([hold_last]))[0])
    if cal_end >= hold_end:
        raise InvalidDataError(
            "calibration_end must be before holdout_end (in different "
            f"{window.spec!r} windows)."
        )
    # as in calibration_holdout: the cohort is acquired by the end of calibration_end
    # and transactions count through the end of holdout_end
    keep = tx.time_ns <= hold_last
    codes, windows = tx.codes[keep], tx.window[keep]
    first = np.full(len(tx.customers), np.iinfo(np.int64).max)
    np.minimum.at(first, codes, windows)
    first_time = np.full(len(tx.customers), np.iinfo(np.int64).max)
    np.minimum.at(first_time, codes, tx.time_ns[keep])
    cohort = first_time <= cal_last
    unit_ns = time_unit_nanoseconds(time_unit)
    start_ns = int(window.start_ns(first[cohort].min()))
    # repeat transactions: distinct windows after each customer's first
    pairs = np.unique(np.stack([codes, windows]), axis=1)
    repeat = cohort[pairs[0]] & (pairs[1] > first[pairs[0]])
    times = (window.start_ns(pairs[1][repeat]) - start_ns) / unit_ns
    end_ns = window.start_ns(hold_end) + _window_length_ns(window, hold_end)
    end_time = (end_ns - start_ns) / unit_ns
    n_periods = int(np.ceil(end_time - 1e-9))
    period_of = np.floor(times).astype(int) + 1
    actual = np.bincount(period_of, minlength=n_periods + 1)[1 : n_periods + 1]
    table = pd.DataFrame({"actual": actual}, index=pd.RangeIndex(1, n_periods + 1, name="period"))
    entry = (window.start_ns(first[cohort]) - start_ns) / unit_ns
    entry_values, entry_counts = np.unique(entry, return_counts=True)
    edges = np.arange(0, n_periods + 1, dtype=np.float64)
    for name, model in _named(models).items():
        if getattr(model, "covariates_", None) is not None:
            ids = pd.Index(tx.customers)[cohort]
            expected = _cohort_curve_with_covariates(model, name, entry, ids, covariates,
                                                     edges)  # fmt: skip
        else:
            age = np.clip(edges[None, :] - entry_values[:, None], 0.0, None)
            cumulative = _new_customer_curve(model, age)
            expected = (entry_counts[:, None] * cumulative).sum(axis=0)
        table[name] = np.diff(expected)
    cal_time = (window.start_ns(cal_end) + _window_length_ns(window, cal_end) - start_ns) / unit_ns
    table.attrs.update({"calibration_periods": round(cal_time), "time_unit": time_unit})
    return table


def _window_length_ns(window: Any, index: int) -> int:
    return int(window.start_ns(index + 1) - window.start_ns(index))


def _cohort_curve_with_covariates(model: Any, name: str, entry: np.ndarray, ids: pd.Index,
                                  covariates: pd.DataFrame | None,
                                  edges: np.ndarray) -> np.ndarray:  # fmt: skip
    """sum_i E[X(edge - entry_i) | z_i] over the cohort, once per distinct (entry,
    covariates) pair, in blocks of bounded memory."""
    from .models._base import pattern_codes

    columns = list(model.covariates_.settings.columns)
    if covariates is None:
        raise InvalidDataError(
            f"tracking: model {name!r} has covariates ({', '.join(columns)}); pass "
            "covariates= (a per-customer frame, e.g. the summary it was fitted on)."
        )
    missing = ~ids.isin(covariates.index)
    if missing.any():
        raise InvalidDataError(
            f"tracking: covariates lacks {int(missing.sum()):,} customers of the cohort "
            f"(e.g. {ids[missing][0]!r})."
        )
    rows = covariates.reindex(ids)
    require_columns(rows.columns, columns, "covariates",
                    hint="Pass the per-customer frame the model was fitted on.")  # fmt: skip
    encoded = model.covariates_.encode(rows, "covariates")
    codes, first = pattern_codes({"entry": entry, **encoded})
    counts = np.bincount(codes, minlength=len(first)).astype(np.float64)
    # a Bayesian model: the posterior mean of the curve over (up to) 200 evenly thinned
    # draws, as its other predictions average over draws; else at the estimates
    bayesian = hasattr(model, "posterior_samples")
    samples = model.parameter_draws(200) if bayesian else model.params_.to_numpy()[None]
    total = np.zeros(len(edges))
    step = max(1, (1 << 20) // len(edges))
    for start in range(0, len(first), step):
        chosen = first[start:start + step]
        age = np.clip(edges[None, :] - entry[chosen][:, None], 0.0, None)
        flat = {k: np.repeat(v[chosen], len(edges)) for k, v in encoded.items()}
        zeros = np.zeros(age.size)
        arrays = {"frequency": zeros, "recency": zeros, "T": zeros, **flat}
        for draw in samples:
            params = model._param_dict(draw)
            values = model._cumulative_purchases(arrays, params, age.reshape(-1))
            values = np.where(age > 0, values.reshape(age.shape), 0.0)
            total += (counts[start:start + step, None] * values).sum(axis=0) / len(samples)
    return total


def _new_customer_curve(model: Any, age: np.ndarray) -> np.ndarray:
    """E[X(age)] of a new customer, for an array of ages (0 where age is 0)."""
    flat = np.unique(age)
    bayesian = hasattr(model, "posterior_samples")
    if bayesian:  # the posterior mean of the prediction, not the prediction at the mean
        values = np.asarray(point_estimate(model.expected_purchases_new_customer(flat)))
    elif hasattr(model, "_cumulative_purchases") and not getattr(model, "discrete_time", False):
        zeros = {"frequency": np.zeros(len(flat)), "recency": np.zeros(len(flat)),
                 "T": np.zeros(len(flat))}  # fmt: skip
        values = model._cumulative_purchases(zeros, model._param_dict(model.params_.to_numpy()),
                                             flat)  # fmt: skip
    else:
        values = np.array([model.expected_purchases_new_customer(float(a)) for a in flat])
    values = np.where(flat > 0, values, 0.0)
    return values[np.searchsorted(flat, age)]
