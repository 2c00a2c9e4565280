"""Draw customers and transaction logs from the standard BTYD models.

Every simulator is vectorised over customers (no per-customer Python loop): a million
customers take about a second. They serve tests, benchmarks and parameter-recovery
checks, so each one follows the generative story of its model's paper literally and
cites it.

Conventions shared by all functions:

* ``random_state`` is ``None``, an int or a :class:`numpy.random.Generator`; the same
  seed gives identical output. A Generator passed in is used (and advanced) as is.
* Gamma distributions are in the (shape, *rate*) parametrisation of the papers:
  ``λ ~ Gamma(r, α)`` has mean ``r / α`` and is drawn as ``rng.gamma(r, 1 / α)``.
* Per-customer frames are indexed by ``customer_id`` 0 .. n - 1.
* ``T`` (length of observation since the first purchase, in time units) may be one
  number or one value per customer.
* Bad arguments raise :class:`~clvmodels.exceptions.InvalidDataError`.

The transaction-level vectorisation rests on two textbook facts about a Poisson process
of rate λ on ``[0, T]`` (e.g. Ross 1996, *Stochastic Processes*, 2nd ed., section 2.3):
given ``N = n`` events, the event times are distributed as the order statistics of
``n`` iid uniforms on ``[0, T]``, and the k-th order statistic of ``n`` uniforms on
``[0, 1]`` is ``Beta(k, n - k + 1)`` (David & Nagaraja 2003, *Order Statistics*,
section 2.2). Given the k-th event time ``t_k``, the first ``k - 1`` are again uniform
order statistics on ``[0, t_k]``.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from . import registry
from .data.timeunits import time_unit_nanoseconds
from .exceptions import InvalidDataError

__all__ = [
    "sbg_lost_per_period",
    "simulate_bgbb",
    "simulate_bgnbd",
    "simulate_gamma_gamma",
    "simulate_mbgnbd",
    "simulate_pnbd",
    "simulate_sbg",
    "simulate_transactions",
]

RandomState = int | np.random.Generator | None

# numpy's Poisson sampler refuses rates above ~9.2e18; far below that a simulation is
# meaningless anyway, so stop with a readable message instead of numpy's.
_MAX_POISSON_MEAN = 1e15
# simulate_transactions materialises every purchase; beyond this the arrays need tens of
# GB and the caller almost certainly mixed up the time unit or the parameters.
_MAX_TRANSACTIONS = 500_000_000

# the continuous-time purchase models simulate_transactions draws, by registry kind
_MODEL_PARAMS: dict[str, tuple[str, ...]] = {
    spec.kind: spec.parameters for spec in registry.MODELS.values() if spec.continuous_purchase
}


# ------------------------------------------------------------------------- checks


def _rng(random_state: Any) -> np.random.Generator:
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"random_state={random_state!r} cannot seed a generator; expected None, a "
            "non-negative int or a numpy.random.Generator."
        ) from None


def _positive(name: str, value: Any) -> float:
    """A finite scalar > 0 as float, or InvalidDataError naming ``name``."""
    if isinstance(value, bool | np.bool_):
        number = np.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = np.nan
    if not (np.isfinite(number) and number > 0):
        raise InvalidDataError(f"{name} must be a finite number > 0, got {value!r}.")
    return number


def _count(name: str, value: Any, minimum: int = 1) -> int:
    """An integer >= ``minimum``, or InvalidDataError naming ``name``."""
    if isinstance(value, bool | np.bool_):
        number = None
    else:
        try:
            number = operator.index(value)
        except TypeError:
            number = None
    if number is None or number < minimum:
        raise InvalidDataError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(number)


def _observation_lengths(T: Any, n_customers: int) -> np.ndarray:
    """``T`` broadcast to one finite positive float per customer."""
    try:
        values = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"T must be a number > 0 or an array of {n_customers} numbers > 0, got {T!r}."
        ) from None
    if values.ndim == 0:
        _positive("T", values.item())
        return np.full(n_customers, values.item())
    if values.shape != (n_customers,):
        raise InvalidDataError(
            f"T must be a number or a 1-d array of length n_customers={n_customers}, got "
            f"shape {values.shape}."
        )
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidDataError(
            f"T must be finite and > 0 for every customer; {int(bad.sum())} values are "
            f"not (e.g. T[{i}] = {values[i]!r})."
        )
    return values.copy()


def _params(what: str, given: Any, names: tuple[str, ...]) -> dict[str, float]:
    """Validate a parameter mapping: exactly ``names``, each finite and > 0."""
    try:
        given = dict(given)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"{what} must be a dict with keys {', '.join(names)}; got {given!r}."
        ) from None
    missing = [k for k in names if k not in given]
    unknown = [k for k in given if k not in names]
    if missing or unknown:
        raise InvalidDataError(
            f"{what} must have exactly the keys {', '.join(names)}; missing "
            f"{missing or 'none'}, unexpected {unknown or 'none'}."
        )
    return {k: _positive(f"{what}[{k!r}]", given[k]) for k in names}


def _customer_index(n_customers: int) -> pd.RangeIndex:
    return pd.RangeIndex(n_customers, name="customer_id")


def _linear_predictors(
    n: int, covariates: Any, purchase: Any, dropout: Any
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """g_p'z_i and g_d'z_i of each customer, and the covariates as a frame.

    The static-covariate parameterisation of CLVTools (Bachmann, Meierer & Näf 2021,
    Marketing Science 40(4); Fader & Hardie 2007, note 019), the one
    :mod:`clvmodels.models._covariates` fits.
    """
    if covariates is None:
        if purchase or dropout:
            raise InvalidDataError(
                "purchase_coefficients / dropout_coefficients need covariates=: a DataFrame "
                "(or dict of arrays) with one numeric value per customer."
            )
        return np.zeros(n), np.zeros(n), None
    try:
        frame = pd.DataFrame(covariates).reset_index(drop=True)
    except (TypeError, ValueError):
        raise InvalidDataError(
            f"covariates must be a DataFrame or a dict of arrays of {n} numbers each."
        ) from None
    if len(frame) != n:
        raise InvalidDataError(
            f"covariates has {len(frame)} rows; it needs one per customer ({n})."
        )
    etas = []
    for what, coefficients in (("purchase_coefficients", purchase),
                               ("dropout_coefficients", dropout)):  # fmt: skip
        eta = np.zeros(n)
        for column, value in dict(coefficients or {}).items():
            if column not in frame.columns:
                raise InvalidDataError(
                    f"{what} names {column!r}, which is not a column of covariates "
                    f"({', '.join(map(str, frame.columns))})."
                )
            try:
                z = frame[column].to_numpy(dtype=np.float64)
                g = float(value)
            except (TypeError, ValueError):
                raise InvalidDataError(
                    f"{what}[{column!r}]: covariates and coefficients must be numbers."
                ) from None
            if not (np.all(np.isfinite(z)) and np.isfinite(g)):
                raise InvalidDataError(f"{what}[{column!r}]: covariates and coefficients "
                                       "must be finite.")  # fmt: skip
            eta += g * z
        etas.append(eta)
    frame.index = _customer_index(n)
    return etas[0], etas[1], frame


# ------------------------------------------------------------------ core samplers


def _geometric(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Geometric on {1, 2, ...} with success probability ``p`` (trials to first success).

    Beta draws with small shape parameters underflow to exactly 0, which numpy's sampler
    rejects; the smallest positive float gives numpy's "never" value 2**63 - 1 instead.
    """
    return rng.geometric(np.maximum(p, np.finfo(np.float64).tiny))


def _check_poisson_means(means: np.ndarray, rate_params: str) -> None:
    if means.size and float(means.max()) > _MAX_POISSON_MEAN:
        raise InvalidDataError(
            f"the purchase rates drawn from {rate_params} times T reach "
            f"{float(means.max()):.3g} expected purchases for one customer, too many to "
            "simulate; check the parameters and the time unit of T."
        )


def _draw_bgnbd(
    rng: np.random.Generator,
    T: np.ndarray,
    r: float,
    alpha: float | np.ndarray,
    a: float | np.ndarray,
    b: float | np.ndarray,
    *,
    dropout_at_zero: bool,
) -> dict[str, np.ndarray]:
    """BG/NBD (or MBG/NBD) counts and last-purchase times; ``T`` may contain zeros.

    Fader, Hardie & Lee (2005), section 2, assumptions (i)-(v): Poisson(λ) purchases
    while alive, λ ~ Gamma(r, α); after each repeat purchase the customer becomes
    inactive with probability p, p ~ Beta(a, b). Hence the number of repeat purchases
    after which the customer dies is J ~ Geometric(p) on {1, 2, ...}, and the repeat
    purchases seen in [0, T] are X = min(N, J) with N ~ Poisson(λT) the purchases the
    customer would make if immortal. MBG/NBD (Batislam, Denizel & Filiztekin 2007,
    section 2) adds a dropout chance p right after the first purchase at time 0, which
    shifts J to {0, 1, ...}.
    """
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    deaths = _geometric(rng, p)
    if dropout_at_zero:
        deaths -= 1
    means = lam * T
    _check_poisson_means(means, f"Gamma(r={r}, alpha={_shown(alpha)})")
    n_immortal = rng.poisson(means)
    x = np.minimum(n_immortal, deaths)
    recency = np.zeros(n)
    buyers = x > 0
    # The x-th of N uniform order statistics on [0, T] is T * Beta(x, N - x + 1).
    recency[buyers] = T[buyers] * rng.beta(x[buyers], n_immortal[buyers] - x[buyers] + 1)
    return {
        "frequency": x.astype(np.int64),
        "recency": recency,
        "purchase_rate": lam,
        "dropout_probability": p,
        # Dead by T exactly when the purchase after which the customer drops out happened.
        "alive": deaths > n_immortal,
    }


def _draw_pnbd(
    rng: np.random.Generator, T: np.ndarray, r: float, alpha: float | np.ndarray, s: float,
    beta: float | np.ndarray,
) -> dict[str, np.ndarray]:
    """Pareto/NBD counts and last-purchase times; ``T`` may contain zeros.

    Schmittlein, Morrison & Colombo (1987), section 2, assumptions (i)-(v): Poisson(λ)
    purchases while alive, an exponential lifetime τ with rate μ, λ ~ Gamma(r, α) and
    μ ~ Gamma(s, β) independent. The purchases seen are those of [0, min(τ, T)].
    """
    n = T.size
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    mu = rng.gamma(s, 1.0 / beta, size=n)
    # A dropout rate that underflowed to (nearly) 0 means an infinite lifetime, not an error.
    with np.errstate(divide="ignore", over="ignore"):
        lifetime = rng.standard_exponential(size=n) / mu
    horizon = np.minimum(lifetime, T)
    means = lam * horizon
    _check_poisson_means(means, f"Gamma(r={r}, alpha={_shown(alpha)})")
    x = rng.poisson(means)
    recency = np.zeros(n)
    buyers = x > 0
    # The last of x uniform order statistics on [0, h] is h * Beta(x, 1).
    recency[buyers] = horizon[buyers] * rng.beta(x[buyers], 1.0)
    return {
        "frequency": x.astype(np.int64),
        "recency": recency,
        "purchase_rate": lam,
        "dropout_rate": mu,
        "lifetime": lifetime,
        "alive": lifetime > T,
    }


def _shown(value: Any) -> str:
    return f"{value:g}" if np.ndim(value) == 0 else "alpha_i (by covariates)"


def _summary_frame(
    draws: dict[str, np.ndarray], T: np.ndarray, latent: tuple[str, ...], return_latent: bool,
    covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    columns = {"frequency": draws["frequency"], "recency": draws["recency"], "T": T}
    if return_latent:
        columns.update({k: draws[k] for k in latent})
    frame = pd.DataFrame(columns, index=_customer_index(T.size))
    if covariates is not None:
        frame = frame.join(covariates.drop(columns=[c for c in covariates if c in frame]))
    return frame


# ------------------------------------------------------------ per-customer summaries


def simulate_bgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | ArrayLike,
    random_state: RandomState = None,
    return_latent: bool = False,
    covariates: Any = None,
    purchase_coefficients: Mapping[str, float] | None = None,
    dropout_coefficients: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Draw per-customer summaries from the BG/NBD model.

    Generative story of Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy
    Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284,
    section 2, assumptions (i)-(v): the first purchase is at time 0; while alive a
    customer buys as a Poisson process of rate λ; after every *repeat* purchase the
    customer drops out with probability p (never at time 0); λ ~ Gamma(r, rate α) and
    p ~ Beta(a, b) independently across customers.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    r, alpha : float
        Shape and rate of the gamma distribution of purchase rates λ, > 0.
    a, b : float
        Shape parameters of the beta distribution of dropout probabilities p, > 0.
    T : float or array-like of shape (n_customers,)
        Observation length since the first purchase, in time units, > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same customers.
    return_latent : bool, default False
        Also return each customer's latent characteristics.
    covariates : pandas.DataFrame or dict of arrays, optional
        Static covariates, one numeric row per customer; returned as columns of the
        result (after the summary's).
    purchase_coefficients, dropout_coefficients : dict, optional
        Coefficient of each covariate column in each process: alpha_i = alpha exp(-g_p'z_i),
        a_i = a exp(g_d'z_i), b_i = b exp(g_d'z_i) (CLVTools' parameterisation).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (0 .. n_customers - 1), with ``frequency`` (int64,
        repeat purchases in ``(0, T]``), ``recency`` (time of the last repeat purchase,
        0 without one) and ``T``. With ``return_latent`` also ``purchase_rate`` (λ),
        ``dropout_probability`` (p) and ``alive`` (not yet dropped out at ``T``).

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, ``n_customers`` < 1, or ``T`` is not > 0.

    Notes
    -----
    Vectorised with J ~ Geometric(p) on {1, 2, ...}, the repeat purchase after which
    the customer drops out, and N ~ Poisson(λT), the purchases an immortal customer
    would make: frequency x = min(N, J) and, since given N = n the purchase times are
    uniform order statistics on [0, T], recency = T * Beta(x, n - x + 1) for x >= 1.

    Examples
    --------
    >>> from clvmodels.simulate import simulate_bgnbd
    >>> sim = simulate_bgnbd(1000, r=0.24, alpha=4.41, a=0.79, b=2.43, T=39.0,
    ...                      random_state=1)
    >>> list(sim.columns), sim.index.name
    (['frequency', 'recency', 'T'], 'customer_id')
    >>> bool(((sim["recency"] >= 0) & (sim["recency"] <= sim["T"])).all())
    True
    """
    n = _count("n_customers", n_customers)
    r, alpha = _positive("r", r), _positive("alpha", alpha)
    a, b = _positive("a", a), _positive("b", b)
    lengths = _observation_lengths(T, n)
    rng = _rng(random_state)
    eta_p, eta_d, frame = _linear_predictors(n, covariates, purchase_coefficients,
                                             dropout_coefficients)  # fmt: skip
    draws = _draw_bgnbd(rng, lengths, r, alpha * np.exp(-eta_p), a * np.exp(eta_d),
                        b * np.exp(eta_d), dropout_at_zero=False)  # fmt: skip
    return _summary_frame(
        draws, lengths, ("purchase_rate", "dropout_probability", "alive"), return_latent, frame
    )


def simulate_mbgnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | ArrayLike,
    random_state: RandomState = None,
    return_latent: bool = False,
    covariates: Any = None,
    purchase_coefficients: Mapping[str, float] | None = None,
    dropout_coefficients: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Draw per-customer summaries from the MBG/NBD model.

    Batislam, Denizel & Filiztekin (2007), "Empirical validation and comparison of
    models for customer base analysis", *International Journal of Research in
    Marketing* 24(3), 201-209, section 2: the BG/NBD story of :func:`simulate_bgnbd`,
    except that the customer may also drop out (with probability p) right after the
    initial purchase at time 0. The number of repeat purchases before dropping out is
    then Geometric(p) - 1 on {0, 1, ...}.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    r, alpha : float
        Shape and rate of the gamma distribution of purchase rates λ, > 0.
    a, b : float
        Shape parameters of the beta distribution of dropout probabilities p, > 0.
    T : float or array-like of shape (n_customers,)
        Observation length since the first purchase, in time units, > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same customers.
    return_latent : bool, default False
        Also return ``purchase_rate``, ``dropout_probability`` and ``alive``.
    covariates : pandas.DataFrame or dict of arrays, optional
        Static covariates, one numeric row per customer; returned as columns of the
        result (after the summary's).
    purchase_coefficients, dropout_coefficients : dict, optional
        Coefficient of each covariate column in each process: alpha_i = alpha exp(-g_p'z_i),
        a_i = a exp(g_d'z_i), b_i = b exp(g_d'z_i) (CLVTools' parameterisation).

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`simulate_bgnbd`.

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, ``n_customers`` < 1, or ``T`` is not > 0.

    Examples
    --------
    >>> from clvmodels.simulate import simulate_mbgnbd
    >>> sim = simulate_mbgnbd(1000, r=0.5, alpha=5.0, a=1.2, b=3.0, T=52.0,
    ...                       random_state=0, return_latent=True)
    >>> list(sim.columns)
    ['frequency', 'recency', 'T', 'purchase_rate', 'dropout_probability', 'alive']
    """
    n = _count("n_customers", n_customers)
    r, alpha = _positive("r", r), _positive("alpha", alpha)
    a, b = _positive("a", a), _positive("b", b)
    lengths = _observation_lengths(T, n)
    rng = _rng(random_state)
    eta_p, eta_d, frame = _linear_predictors(n, covariates, purchase_coefficients,
                                             dropout_coefficients)  # fmt: skip
    draws = _draw_bgnbd(rng, lengths, r, alpha * np.exp(-eta_p), a * np.exp(eta_d),
                        b * np.exp(eta_d), dropout_at_zero=True)  # fmt: skip
    return _summary_frame(
        draws, lengths, ("purchase_rate", "dropout_probability", "alive"), return_latent, frame
    )


def simulate_pnbd(
    n_customers: int,
    *,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    T: float | ArrayLike,
    random_state: RandomState = None,
    return_latent: bool = False,
    covariates: Any = None,
    purchase_coefficients: Mapping[str, float] | None = None,
    dropout_coefficients: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Draw per-customer summaries from the Pareto/NBD model.

    Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who Are They and
    What Will They Do Next?", *Management Science* 33(1), 1-24, section 2: the first
    purchase is at time 0; a customer buys as a Poisson process of rate λ during an
    exponentially distributed lifetime τ of rate μ; λ ~ Gamma(r, rate α) and
    μ ~ Gamma(s, rate β) independently.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    r, alpha : float
        Shape and rate of the gamma distribution of purchase rates λ, > 0.
    s, beta : float
        Shape and rate of the gamma distribution of dropout rates μ, > 0.
    T : float or array-like of shape (n_customers,)
        Observation length since the first purchase, in time units, > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same customers.
    return_latent : bool, default False
        Also return each customer's latent characteristics.
    covariates : pandas.DataFrame or dict of arrays, optional
        Static covariates, one numeric row per customer; returned as columns of the
        result (after the summary's).
    purchase_coefficients, dropout_coefficients : dict, optional
        Coefficient of each covariate column in each process: alpha_i = alpha exp(-g_p'z_i),
        beta_i = beta exp(-g_d'z_i) (CLVTools' parameterisation).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with ``frequency`` (int64), ``recency`` and ``T``.
        With ``return_latent`` also ``purchase_rate`` (λ), ``dropout_rate`` (μ),
        ``lifetime`` (τ, not truncated at T; infinite if μ underflowed to 0) and
        ``alive`` (τ > T).

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, ``n_customers`` < 1, or ``T`` is not > 0.

    Notes
    -----
    Vectorised as x ~ Poisson(λ min(τ, T)); the last of x uniform order statistics on
    [0, min(τ, T)] is min(τ, T) * Beta(x, 1).

    Examples
    --------
    >>> from clvmodels.simulate import simulate_pnbd
    >>> sim = simulate_pnbd(1000, r=0.55, alpha=10.6, s=0.61, beta=11.7, T=39.0,
    ...                           random_state=2)
    >>> sim["frequency"].dtype
    dtype('int64')
    >>> bool((sim.loc[sim["frequency"] == 0, "recency"] == 0).all())
    True
    """
    n = _count("n_customers", n_customers)
    r, alpha = _positive("r", r), _positive("alpha", alpha)
    s, beta = _positive("s", s), _positive("beta", beta)
    lengths = _observation_lengths(T, n)
    rng = _rng(random_state)
    eta_p, eta_d, frame = _linear_predictors(n, covariates, purchase_coefficients,
                                             dropout_coefficients)  # fmt: skip
    draws = _draw_pnbd(rng, lengths, r, alpha * np.exp(-eta_p), s, beta * np.exp(-eta_d))
    return _summary_frame(
        draws, lengths, ("purchase_rate", "dropout_rate", "lifetime", "alive"), return_latent,
        frame,
    )


def simulate_bgbb(
    n_customers: int,
    *,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    n_periods: int,
    random_state: RandomState = None,
    return_latent: bool = False,
) -> pd.DataFrame:
    """Draw per-customer summaries from the BG/BB model (discrete opportunities).

    Fader, Hardie & Shang (2010), "Customer-Base Analysis in a Discrete-Time
    Noncontractual Setting", *Marketing Science* 29(6), 1086-1108, section 3: after the
    initial transaction there are transaction opportunities 1 .. n; at the start of
    each one an alive customer dies with probability θ, so the number of opportunities
    alive is l with probability θ(1 - θ)^l (l < n) and n with probability (1 - θ)^n;
    while alive the customer transacts at each opportunity with probability p;
    p ~ Beta(α, β) and θ ~ Beta(γ, δ) independently.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    alpha, beta : float
        Beta distribution of transaction probabilities p, > 0.
    gamma, delta : float
        Beta distribution of dropout probabilities θ, > 0.
    n_periods : int
        Number of transaction opportunities observed, >= 1.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same customers.
    return_latent : bool, default False
        Also return ``transaction_probability`` (p), ``dropout_probability`` (θ) and
        ``alive_opportunities`` (number of the n opportunities at which the customer was
        alive; n means still alive at the end).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with ``frequency`` (int64, opportunities with a
        transaction), ``recency`` (int64, index 1 .. n of the last one, 0 if none) and
        ``n_periods`` (int64).

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, or ``n_customers`` or ``n_periods`` < 1.

    Notes
    -----
    Needs O(n_customers) memory whatever ``n_periods``: with L the opportunities
    alive, reading the L Bernoulli(p) trials backwards, the number of trailing
    non-transactions is G ~ Geometric(p) - 1, so the last transaction is at L - G when
    G < L (none otherwise), and the trials before it are Binomial(L - G - 1, p). This
    has exactly the joint law of (frequency, recency) of the trial-by-trial story.

    Examples
    --------
    >>> from clvmodels.simulate import simulate_bgbb
    >>> sim = simulate_bgbb(1000, alpha=1.2, beta=0.75, gamma=0.66, delta=2.78,
    ...                     n_periods=6, random_state=3)
    >>> bool((sim["frequency"] <= sim["recency"]).all())
    True
    >>> int(sim["recency"].max()) <= 6
    True
    """
    n = _count("n_customers", n_customers)
    alpha, beta = _positive("alpha", alpha), _positive("beta", beta)
    gamma, delta = _positive("gamma", gamma), _positive("delta", delta)
    periods = _count("n_periods", n_periods)
    rng = _rng(random_state)
    p = rng.beta(alpha, beta, size=n)
    theta = rng.beta(gamma, delta, size=n)
    alive_for = np.minimum(_geometric(rng, theta) - 1, periods)
    trailing_misses = _geometric(rng, p) - 1
    buyers = trailing_misses < alive_for
    recency = np.where(buyers, alive_for - trailing_misses, 0)
    frequency = np.zeros(n, dtype=np.int64)
    frequency[buyers] = 1 + rng.binomial(recency[buyers] - 1, p[buyers])
    columns: dict[str, Any] = {
        "frequency": frequency,
        "recency": recency.astype(np.int64),
        "n_periods": np.full(n, periods, dtype=np.int64),
    }
    if return_latent:
        columns.update(
            transaction_probability=p,
            dropout_probability=theta,
            alive_opportunities=alive_for.astype(np.int64),
        )
    return pd.DataFrame(columns, index=_customer_index(n))


def simulate_gamma_gamma(
    frequency: ArrayLike | pd.Series,
    *,
    p: float,
    q: float,
    gamma: float,
    random_state: RandomState = None,
    return_latent: bool = False,
) -> pd.DataFrame:
    """Draw mean transaction values from the Gamma-Gamma model of monetary value.

    Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value",
    http://www.brucehardie.com/notes/025/, section 2 (after Colombo & Jiang 1999, "A
    stochastic RFM model", *Journal of Interactive Marketing* 13(3), 2-12): each of a
    customer's x transactions has value z ~ Gamma(p, rate ν), with ν ~ Gamma(q, rate γ)
    across customers. The mean of x iid Gamma(p, ν) values is Gamma(px, rate xν) (the
    note's distribution of the observed mean), drawn directly.

    Parameters
    ----------
    frequency : array-like or pandas.Series of int
        Number of transactions x >= 0 averaged per customer (usually the repeat
        frequency). A Series keeps its index.
    p, q, gamma : float
        Model parameters, > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same values.
    return_latent : bool, default False
        Also return ``nu`` (ν) and ``mean_transaction_value`` (p / ν, the customer's
        expected transaction value).

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (int64) and ``monetary_value`` (mean of the x values, 0 where
        x == 0), indexed like ``frequency`` if it is a Series, else by ``customer_id``.

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, or ``frequency`` is empty, not 1-d, or has
        values that are not whole numbers >= 0.

    Examples
    --------
    >>> from clvmodels.simulate import simulate_gamma_gamma
    >>> spend = simulate_gamma_gamma([0, 1, 5], p=6.25, q=3.74, gamma=15.44,
    ...                              random_state=0)
    >>> float(spend["monetary_value"].iloc[0]), bool((spend["monetary_value"].iloc[1:] > 0).all())
    (0.0, True)
    """
    p, q, gamma = _positive("p", p), _positive("q", q), _positive("gamma", gamma)
    index = frequency.index if isinstance(frequency, pd.Series) else None
    try:
        values = np.asarray(frequency, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidDataError(
            "frequency must be an array of whole numbers >= 0, got a value that is not numeric."
        ) from None
    if values.ndim != 1 or values.size == 0:
        raise InvalidDataError(
            f"frequency must be a non-empty 1-d array of counts, got shape {values.shape}."
        )
    bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidDataError(
            f"frequency must hold whole numbers >= 0; {int(bad.sum())} values do not "
            f"(e.g. frequency[{i}] = {values[i]!r})."
        )
    x = values.astype(np.int64)
    rng = _rng(random_state)
    # A rate that underflowed to 0 would make the scale infinite; the smallest float
    # keeps the draw finite and huge, which is what such a customer means.
    nu = np.maximum(rng.gamma(q, 1.0 / gamma, size=x.size), np.finfo(np.float64).tiny)
    monetary = np.zeros(x.size)
    buyers = x > 0
    monetary[buyers] = rng.gamma(p * x[buyers], 1.0 / (x[buyers] * nu[buyers]))
    columns: dict[str, Any] = {"frequency": x, "monetary_value": monetary}
    if return_latent:
        columns.update(nu=nu, mean_transaction_value=p / nu)
    return pd.DataFrame(columns, index=index if index is not None else _customer_index(x.size))


def simulate_sbg(
    n_customers: int,
    *,
    alpha: float,
    beta: float,
    n_periods: int,
    random_state: RandomState = None,
    return_latent: bool = False,
) -> pd.DataFrame:
    """Draw contract lifetimes from the shifted-beta-geometric (sBG) model.

    Fader & Hardie (2007), "How to Project Customer Retention", *Journal of Interactive
    Marketing* 21(1), 76-90, section "A Probability Model": at the end of every period
    an active customer churns with probability θ, so the lifetime (the period in which
    the customer is lost) is Geometric(θ) on {1, 2, ...}; θ ~ Beta(α, β) across
    customers.

    Parameters
    ----------
    n_customers : int
        Number of customers, >= 1.
    alpha, beta : float
        Beta distribution of churn probabilities θ, > 0.
    n_periods : int
        Number of periods observed, >= 1.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same customers.
    return_latent : bool, default False
        Also return ``churn_probability`` (θ).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with ``lifetime`` (int64, the period of churn,
        capped at ``n_periods``) and ``censored`` (bool, still active after
        ``n_periods``).

    Raises
    ------
    InvalidDataError
        A parameter is not finite and > 0, or ``n_customers`` or ``n_periods`` < 1.

    Examples
    --------
    >>> from clvmodels.simulate import simulate_sbg, sbg_lost_per_period
    >>> sim = simulate_sbg(1000, alpha=0.668, beta=3.806, n_periods=7, random_state=0)
    >>> table = sbg_lost_per_period(sim, 7)
    >>> list(table.columns), int(table["lost"].sum() + table["active"].iloc[-1])
    (['period', 'lost', 'active'], 1000)
    """
    n = _count("n_customers", n_customers)
    alpha, beta = _positive("alpha", alpha), _positive("beta", beta)
    periods = _count("n_periods", n_periods)
    rng = _rng(random_state)
    theta = rng.beta(alpha, beta, size=n)
    lifetime = _geometric(rng, theta)
    columns: dict[str, Any] = {
        "lifetime": np.minimum(lifetime, periods).astype(np.int64),
        "censored": lifetime > periods,
    }
    if return_latent:
        columns["churn_probability"] = theta
    return pd.DataFrame(columns, index=_customer_index(n))


def sbg_lost_per_period(simulated: pd.DataFrame, n_periods: int) -> pd.DataFrame:
    """Count customers lost in, and active after, each period of a simulated cohort.

    Parameters
    ----------
    simulated : pandas.DataFrame
        Per-customer frame with ``lifetime`` and ``censored``, as returned by
        :func:`simulate_sbg`.
    n_periods : int
        Number of periods to tabulate, >= 1; at most the simulation's horizon (a
        censored customer's ``lifetime``).

    Returns
    -------
    pandas.DataFrame
        One row per period with ``period`` (1 .. n_periods), ``lost`` (customers who
        churned in that period) and ``active`` (customers still active at its end), all
        int64. ``active / len(simulated)`` estimates the survivor function S(t).

    Raises
    ------
    InvalidDataError
        Missing columns, lifetimes that are not whole numbers >= 1, or ``n_periods``
        beyond the simulated horizon.

    Examples
    --------
    >>> import pandas as pd
    >>> from clvmodels.simulate import sbg_lost_per_period
    >>> cohort = pd.DataFrame({"lifetime": [1, 2, 2, 3], "censored": [False, False,
    ...                        False, True]})
    >>> sbg_lost_per_period(cohort, 3)
       period  lost  active
    0       1     1       3
    1       2     2       1
    2       3     0       1
    """
    periods = _count("n_periods", n_periods)
    if not isinstance(simulated, pd.DataFrame):
        raise InvalidDataError(
            f"simulated must be a DataFrame from simulate_sbg, got {type(simulated).__name__}."
        )
    missing = [c for c in ("lifetime", "censored") if c not in simulated.columns]
    if missing:
        raise InvalidDataError(
            f"simulated lacks column(s) {missing}; pass the frame returned by simulate_sbg."
        )
    try:
        lifetime = np.asarray(simulated["lifetime"], dtype=np.float64)
        censored = np.asarray(simulated["censored"], dtype=bool)
    except (TypeError, ValueError):
        raise InvalidDataError(
            "simulated['lifetime'] must be whole numbers and simulated['censored'] booleans."
        ) from None
    bad = ~np.isfinite(lifetime) | (lifetime < 1) | (lifetime != np.floor(lifetime))
    if bad.any():
        raise InvalidDataError(
            f"simulated['lifetime'] must hold whole numbers >= 1; {int(bad.sum())} values do not."
        )
    lifetime = lifetime.astype(np.int64)
    if censored.any() and int(lifetime[censored].min()) < periods:
        raise InvalidDataError(
            f"n_periods={periods} goes beyond the simulated horizon of "
            f"{int(lifetime[censored].min())} periods: customers still active then have an "
            "unknown future. Pass n_periods <= the n_periods of simulate_sbg."
        )
    churned = lifetime[~censored]
    lost = np.bincount(churned[churned <= periods], minlength=periods + 1)[1:]
    active = lifetime.size - np.cumsum(lost)
    return pd.DataFrame(
        {
            "period": np.arange(1, periods + 1, dtype=np.int64),
            "lost": lost.astype(np.int64),
            "active": active.astype(np.int64),
        }
    )


# ------------------------------------------------------------------ transaction logs

class _Clock(NamedTuple):
    """Piecewise-linear clocks A(t) = int_0^t a and B(t) = int_0^t b of covariate paths
    (a path is one customer's rows, or the one calendar of a common table): per row its
    path, start ``t0`` (time units since the simulation start), rates ``a``, ``b`` and
    the clocks at its start; ``first``/``last`` the rows of each path."""

    path: np.ndarray
    t0: np.ndarray
    a: np.ndarray
    b: np.ndarray
    A0: np.ndarray
    B0: np.ndarray
    first: np.ndarray
    last: np.ndarray

    def _row(self, path: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The row of ``path`` whose piece holds each value of a nondecreasing per-row
        quantity ``starts`` (t0, A0 or B0); paths are kept apart by an offset larger
        than any value, and the row is clipped to the path's own."""
        span = float(np.max(np.abs(starts))) * 2.0 + 2.0
        keys = self.path * span + starts
        row = np.searchsorted(keys, path * span + values, side="right") - 1
        return np.clip(row, self.first[path], self.last[path])

    def clocks(self, path: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row = self._row(path, t, self.t0)
        dt = t - self.t0[row]
        return self.A0[row] + self.a[row] * dt, self.B0[row] + self.b[row] * dt

    def time_at(self, path: np.ndarray, value: np.ndarray, which: str) -> np.ndarray:
        """The time at which clock ``which`` ("A" or "B") of each path reaches ``value``."""
        starts, rates = (self.A0, self.a) if which == "A" else (self.B0, self.b)
        row = self._row(path, value, starts)
        return self.t0[row] + (value - starts[row]) / rates[row]


def _clock(rows: Any, start_ns: int, unit_ns: float, purchase: Mapping[str, float],
           dropout: Mapping[str, float]) -> _Clock:  # fmt: skip
    """The clocks of every path, from the covariate rows and the coefficients
    (a(t) = exp(g_p'z(t)), b(t) = exp(g_d'w(t)): Bachmann, Meierer & Näf 2021, eq. 2-3)."""
    etas = []
    for what, coefficients in (("purchase_coefficients", purchase),
                               ("dropout_coefficients", dropout)):  # fmt: skip
        g = np.zeros(len(rows.columns))
        for column, value in dict(coefficients or {}).items():
            if column not in rows.columns:
                raise InvalidDataError(
                    f"{what} names {column!r}, which is not a column of covariates "
                    f"({', '.join(map(str, rows.columns))})."
                )
            g[rows.columns.index(column)] = _finite(f"{what}[{column!r}]", value)
        etas.append(rows.values @ g)
    a, b = np.exp(etas[0]), np.exp(etas[1])
    t0 = (rows.start_ns - start_ns) / unit_ns
    width = (rows.end_ns - rows.start_ns) / unit_ns
    path = rows.path.astype(np.int64)
    n_paths = int(path.max()) + 1
    first = np.searchsorted(path, np.arange(n_paths), side="left")
    last = np.searchsorted(path, np.arange(n_paths), side="right") - 1
    A0, B0 = (_exclusive_cumsum(rate * width, path, first) for rate in (a, b))
    return _Clock(path, t0, a, b, A0, B0, first, last)


def _exclusive_cumsum(values: np.ndarray, path: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per path, the sum of the values of the path's earlier rows."""
    total = np.cumsum(values) - values
    return total - total[first[path]]


def _finite(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise InvalidDataError(f"{name}={value!r} must be a finite number.")
    return number


def _draw_pnbd_dynamic(rng: np.random.Generator, clock: _Clock, path: np.ndarray,
                       t_first: np.ndarray, t_end: float, r: float, alpha: float, s: float,
                       beta: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Repeat-purchase times (customer, time units since the simulation start; sorted by
    customer, then time) of the Pareto/NBD with time-varying covariates.

    Bachmann, Meierer & Näf (2021), section 3: while alive a customer buys at rate
    lambda a(t), and drops out at rate mu b(t), lambda ~ Gamma(r, alpha), mu ~ Gamma(s,
    beta). Drawn exactly by time change (e.g. Cinlar 1975, *Introduction to Stochastic
    Processes*, ch. 4): the lifetime ends when B(t) - B(t_first) reaches E / mu, E ~
    Exp(1), and the purchases are a unit-rate Poisson process in lambda (A(t) -
    A(t_first)), so their count is Poisson(lambda (A(stop) - A(t_first))) and their
    clock values sorted uniforms between A(t_first) and A(stop), mapped back by A^-1.
    """
    n = t_first.size
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    mu = rng.gamma(s, 1.0 / beta, size=n)
    A_first, B_first = clock.clocks(path, t_first)
    A_end, B_end = clock.clocks(path, np.full(n, t_end))
    with np.errstate(divide="ignore", over="ignore"):
        target = B_first + rng.standard_exponential(size=n) / mu
    dead = target < B_end
    stop = np.full(n, t_end)
    stop[dead] = clock.time_at(path[dead], target[dead], "B")
    A_stop = A_end.copy()
    A_stop[dead] = clock.clocks(path[dead], stop[dead])[0]
    means = lam * np.maximum(A_stop - A_first, 0.0)
    _check_poisson_means(means, f"Gamma(r={r}, alpha={alpha:g}) and the covariates")
    counts = rng.poisson(means)
    if int(counts.sum()) > _MAX_TRANSACTIONS:
        raise InvalidDataError(
            f"the parameters imply {int(counts.sum()):,} purchases, more than the "
            f"{_MAX_TRANSACTIONS:,} this function builds; use fewer customers or check the "
            "time unit and the coefficients."
        )
    owners, uniforms = _sorted_uniforms(rng, counts)
    value = A_first[owners] + uniforms * (A_stop - A_first)[owners]
    times = clock.time_at(path[owners], value, "A")
    return owners, np.clip(times, t_first[owners], stop[owners])


def _timestamp_ns(name: str, value: Any) -> int:
    """int64 ns since the epoch; tz-aware times keep their wall time (like summarize)."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise InvalidDataError(
            f"{name}={value!r} is not a date; expected a date string such as '2021-12-31', "
            "a datetime or a pandas Timestamp."
        )
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return int(stamp.as_unit("ns").value)


def _sorted_uniforms(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` sorted uniforms on [0, 1) per group i, groups in order.

    One global integer sort instead of a sort per group: the key puts the group number
    in the high bits and a uniform integer in the low bits, so sorting the keys sorts by
    group, then by value. With a million groups the values keep 42 bits, a resolution
    of 2e-13 (nanoseconds over years).
    """
    owners = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    group_bits = max(1, int(counts.size - 1).bit_length())
    value_bits = 62 - group_bits
    keys = rng.integers(0, 1 << value_bits, size=owners.size, dtype=np.int64)
    keys |= owners << value_bits
    keys.sort()
    values = ((keys & ((1 << value_bits) - 1)) + 0.5) / float(1 << value_bits)
    return owners, values


def simulate_transactions(
    model: Literal["bgnbd", "pnbd", "mbgnbd"],
    n_customers: int,
    *,
    params: Mapping[str, float],
    start: Any = "2020-01-01",
    acquisition_end: Any = None,
    observation_end: Any = "2021-12-31",
    time_unit: str = "D",
    spend: Mapping[str, float] | None = None,
    random_state: RandomState = None,
    covariates: pd.DataFrame | None = None,
    purchase_coefficients: Mapping[str, float] | None = None,
    dropout_coefficients: Mapping[str, float] | None = None,
    customer_id: str = "customer_id",
    covariate_date: str = "date",
) -> pd.DataFrame:
    """Draw a transaction log (one row per purchase) from a continuous-time BTYD model.

    Each customer's first purchase is at a time uniform between ``start`` and
    ``acquisition_end``; the repeat purchases until ``observation_end`` follow ``model``
    with time measured in ``time_unit``: BG/NBD (Fader, Hardie & Lee 2005, section 2),
    Pareto/NBD (Schmittlein, Morrison & Colombo 1987, section 2) or MBG/NBD (Batislam,
    Denizel & Filiztekin 2007, section 2); see :func:`simulate_bgnbd`,
    :func:`simulate_pnbd` and :func:`simulate_mbgnbd`.

    Parameters
    ----------
    model : {"bgnbd", "pnbd", "mbgnbd"}
        The purchase model, by its kind in :mod:`clvmodels.registry`.
    n_customers : int
        Number of customers, >= 1.
    params : mapping
        The model's parameters: ``r, alpha, a, b`` (BG/NBD, MBG/NBD) or
        ``r, alpha, s, beta`` (Pareto/NBD), in ``time_unit``.
    start, acquisition_end : date-like
        First purchases are uniform on ``[start, acquisition_end)``; by default all
        customers buy first exactly at ``start``. Time-zone-aware dates keep their wall
        time (as in ``summarize``); the output is time-zone naive.
    observation_end : date-like, default "2021-12-31"
        End of observation, inclusive: no purchase is later than this timestamp.
    time_unit : str, default "D"
        Unit the rates are expressed in: "h", "D", "W", "M" (30.4375 days), "Y" (365.25
        days) or a multiple such as "7D"; see :mod:`clvmodels.data.timeunits`.
    spend : mapping, optional
        Gamma-Gamma parameters ``p, q, gamma`` (Fader & Hardie 2013): adds ``amount``,
        each purchase (the first included) worth Gamma(p, rate ν) with one
        ν ~ Gamma(q, rate γ) per customer.
    random_state : None, int or numpy.random.Generator, optional
        Seed; the same seed gives the same log.
    covariates : pandas.DataFrame, optional
        Static covariates (one numeric row per customer, in customer order: any model) or,
        with a ``covariate_date`` column, time-varying covariates for ``"pnbd"``: a long
        table as :func:`clvmodels.covariate_history` reads it (one row per period, from
        the row's date to the next one's, the last for one ``time_unit``; with a
        ``customer_id`` column 0 .. n_customers - 1, or without it common to every
        customer), covering each customer from the first purchase to ``observation_end``.
    purchase_coefficients, dropout_coefficients : dict, optional
        Coefficient of each covariate column in each process, in CLVTools'
        parameterisation: alpha_i = alpha exp(-g_p'z_i), and beta_i = beta exp(-g_d'z_i)
        (Pareto/NBD) or a_i, b_i = a, b exp(g_d'z_i) (BG/NBD, MBG/NBD); with time-varying
        covariates the purchase and dropout rates are lambda exp(g_p'z(t)) and
        mu exp(g_d'w(t)) (Bachmann, Meierer & Näf 2021).
    customer_id, covariate_date : str
        The id and date columns of a time-varying ``covariates`` table.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (int64, 0 .. n_customers - 1), ``date`` (datetime64[ns]) and,
        with ``spend``, ``amount`` (float64); sorted by customer, then date. Every
        customer has at least the first purchase.

    Raises
    ------
    InvalidDataError
        Unknown model, missing or non-positive parameters, unparseable dates or dates
        out of order, an unknown time unit, or parameters implying an absurd number of
        purchases.

    Notes
    -----
    Times are continuous (nanosecond timestamps, not whole days). ``summarize`` merges
    purchases within one ``granularity`` window (a day by default), so its frequency is
    below the simulated one when customers buy several times a day; measure rates in a
    unit where that is rare, or summarise with a finer granularity.

    The per-customer draws are those of the summary simulators: the x-th (last) repeat
    purchase time t_x as there, and, given t_x, the x - 1 earlier purchase times are
    sorted iid uniforms on [0, t_x] (order statistics of the Poisson process, see the
    module docstring), sorted for all customers at once.

    With time-varying covariates the purchase times are exact, by time change: see
    :func:`_draw_pnbd_dynamic`.

    Examples
    --------
    >>> import pandas as pd
    >>> from clvmodels.simulate import simulate_transactions
    >>> tx = simulate_transactions(
    ...     "bgnbd", 500, params=dict(r=0.24, alpha=4.41, a=0.79, b=2.43),
    ...     start="2021-01-01", acquisition_end="2021-03-31",
    ...     observation_end="2021-12-31", time_unit="W",
    ...     spend=dict(p=6.25, q=3.74, gamma=15.44), random_state=0)
    >>> list(tx.columns)
    ['customer_id', 'date', 'amount']
    >>> tx["customer_id"].nunique(), bool(tx["date"].max() <= pd.Timestamp("2021-12-31"))
    (500, True)

    A weekly promotion calendar common to every customer, raising purchasing by
    exp(0.6) in its weeks:

    >>> weeks = pd.date_range("2021-01-04", "2022-01-03", freq="7D")
    >>> calendar = pd.DataFrame({"date": weeks, "promo": (weeks.month == 12) * 1.0})
    >>> tx = simulate_transactions(
    ...     "pnbd", 500, params=dict(r=0.8, alpha=6.0, s=0.7, beta=8.0),
    ...     start="2021-01-04", acquisition_end="2021-03-29",
    ...     observation_end="2021-12-31", time_unit="W", covariates=calendar,
    ...     purchase_coefficients={"promo": 0.6}, random_state=0)
    >>> tx["customer_id"].nunique()
    500
    """
    if model not in _MODEL_PARAMS:
        raise InvalidDataError(
            f"model={model!r} is not a simulated model; expected one of "
            f"{', '.join(repr(m) for m in _MODEL_PARAMS)}."
        )
    n = _count("n_customers", n_customers)
    values = _params("params", params, _MODEL_PARAMS[model])
    spend_values = None if spend is None else _params("spend", spend, ("p", "q", "gamma"))
    unit_ns = time_unit_nanoseconds(time_unit)
    start_ns = _timestamp_ns("start", start)
    acquisition_ns = (
        start_ns if acquisition_end is None else _timestamp_ns("acquisition_end", acquisition_end)
    )
    end_ns = _timestamp_ns("observation_end", observation_end)
    if not start_ns < end_ns:
        raise InvalidDataError(
            f"observation_end={observation_end!r} must be after start={start!r}."
        )
    if not start_ns <= acquisition_ns <= end_ns:
        raise InvalidDataError(
            f"acquisition_end={acquisition_end!r} must lie between start={start!r} and "
            f"observation_end={observation_end!r}."
        )
    rng = _rng(random_state)

    first_ns = np.full(n, start_ns, dtype=np.int64)
    if acquisition_ns > start_ns:
        first_ns += np.floor(rng.random(n) * (acquisition_ns - start_ns)).astype(np.int64)
    if covariates is not None and covariate_date in getattr(covariates, "columns", ()):
        if model != "pnbd":
            raise InvalidDataError(
                f"time-varying covariates (a '{covariate_date}' column in covariates) are "
                f"simulated for the Pareto/NBD ('pnbd') only, not {model!r}."
            )
        owners, repeat_ns = _dynamic_repeats(rng, covariates, first_ns, start_ns, end_ns,
                                             time_unit, values, purchase_coefficients,
                                             dropout_coefficients, customer_id,
                                             covariate_date)  # fmt: skip
        # first purchases, then the repeats; a stable sort by customer keeps each in order
        owner = np.r_[np.arange(n, dtype=np.int64), owners]
        order = np.argsort(owner, kind="stable")
        return _frame(rng, owner[order], np.r_[first_ns, repeat_ns][order], end_ns,
                      spend_values)  # fmt: skip
    eta_p, eta_d, _ = _linear_predictors(n, covariates, purchase_coefficients,
                                         dropout_coefficients)  # fmt: skip
    # May be 0 for a customer acquired at observation_end: no repeat purchases then.
    lengths = (end_ns - first_ns) / unit_ns
    if model == "pnbd":
        draws = _draw_pnbd(rng, lengths, values["r"], values["alpha"] * np.exp(-eta_p),
                           values["s"], values["beta"] * np.exp(-eta_d))  # fmt: skip
    else:
        draws = _draw_bgnbd(rng, lengths, values["r"], values["alpha"] * np.exp(-eta_p),
                            values["a"] * np.exp(eta_d), values["b"] * np.exp(eta_d),
                            dropout_at_zero=model == "mbgnbd")  # fmt: skip
    x, last = draws["frequency"], draws["recency"]
    per_customer = x + 1
    total = int(per_customer.sum())
    if total > _MAX_TRANSACTIONS:
        raise InvalidDataError(
            f"params={dict(params)!r} imply {total:,} purchases for {n:,} customers, more "
            f"than the {_MAX_TRANSACTIONS:,} this function builds; use fewer customers, a "
            "shorter observation period, or check the time_unit of the parameters."
        )

    # Layout per customer: first purchase (t = 0), x - 1 sorted earlier repeats, then t_x.
    row_start = np.cumsum(per_customer) - per_customer
    times = np.zeros(total)
    buyers = x > 0
    times[row_start[buyers] + x[buyers]] = last[buyers]
    middle = np.maximum(x - 1, 0)
    owners, uniforms = _sorted_uniforms(rng, middle)
    rank = np.arange(owners.size) - (np.cumsum(middle) - middle)[owners]
    times[row_start[owners] + 1 + rank] = uniforms * last[owners]

    owner = np.repeat(np.arange(n, dtype=np.int64), per_customer)
    date_ns = first_ns[owner] + np.rint(times * unit_ns).astype(np.int64)
    return _frame(rng, owner, date_ns, end_ns, spend_values)


def _frame(rng: np.random.Generator, owner: np.ndarray, date_ns: np.ndarray, end_ns: int,
           spend: dict[str, float] | None) -> pd.DataFrame:  # fmt: skip
    """The log's columns (rows sorted by customer, then date), with Gamma-Gamma amounts."""
    # Rounding to whole nanoseconds must not push a purchase past the end.
    np.minimum(date_ns, end_ns, out=date_ns)
    columns: dict[str, Any] = {"customer_id": owner, "date": date_ns.view("datetime64[ns]")}
    if spend is not None:
        n = int(owner[-1]) + 1 if owner.size else 0
        nu = np.maximum(rng.gamma(spend["q"], 1.0 / spend["gamma"], size=n),
                        np.finfo(np.float64).tiny)  # fmt: skip
        columns["amount"] = rng.gamma(spend["p"], 1.0 / nu[owner])
    return pd.DataFrame(columns)


def _dynamic_repeats(rng: np.random.Generator, table: pd.DataFrame, first_ns: np.ndarray,
                     start_ns: int, end_ns: int, time_unit: str, params: dict[str, float],
                     purchase: Any, dropout: Any, customer_id: str,
                     covariate_date: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Repeat purchases (customer, ns) of the Pareto/NBD with time-varying covariates."""
    from .data.dynamic import read_covariate_rows

    n = first_ns.size
    unit_ns = time_unit_nanoseconds(time_unit)
    rows = read_covariate_rows(table, pd.RangeIndex(n), customer_id=customer_id,
                               covariate_date=covariate_date, time_unit=time_unit)  # fmt: skip
    path = np.zeros(n, dtype=np.int64) if rows.common else np.arange(n, dtype=np.int64)
    _check_cover(rows, path, first_ns, end_ns)
    clock = _clock(rows, start_ns, unit_ns, purchase, dropout)
    t_first = (first_ns - start_ns) / unit_ns
    owners, times = _draw_pnbd_dynamic(rng, clock, path, t_first, (end_ns - start_ns) / unit_ns,
                                       **params)  # fmt: skip
    return owners, start_ns + np.rint(times * unit_ns).astype(np.int64)


def _check_cover(rows: Any, path: np.ndarray, first_ns: np.ndarray, end_ns: int) -> None:
    """Every customer's covariate path must cover their first purchase to the end."""
    n_paths = int(path.max()) + 1
    lowest = np.full(n_paths, np.iinfo(np.int64).max)
    highest = np.full(n_paths, np.iinfo(np.int64).min)
    np.minimum.at(lowest, rows.path, rows.start_ns)
    np.maximum.at(highest, rows.path, rows.end_ns)
    late = lowest[path] > first_ns
    short = highest[path] < end_ns
    for bad, when, what in ((late, first_ns, "their first purchase"),
                            (short, np.full(path.size, end_ns), "observation_end")):  # fmt: skip
        if bad.any():
            i = int(np.argmax(bad))
            who = "every customer" if rows.common else f"customer {i}"
            raise InvalidDataError(
                f"covariates: no covariate values for {who} at "
                f"{pd.Timestamp(int(when[i]))} ({what}); {int(bad.sum()):,} customers lack "
                "them. The table must cover each customer from the first purchase to "
                "observation_end."
            )


def __getattr__(name: str) -> Any:
    # the one spelling of the Pareto/NBD is its kind, "pnbd"; the old name still works
    # for one release, with a warning
    if name == "simulate_pareto_nbd":
        import warnings

        warnings.warn(
            "clvmodels.simulate.simulate_pareto_nbd is now simulate_pnbd (every name of a "
            "model follows its kind, 'pnbd'); the old name will be removed.",
            FutureWarning, stacklevel=2,
        )  # fmt: skip
        return simulate_pnbd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
