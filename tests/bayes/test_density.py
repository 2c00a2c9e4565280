"""The numpy log posterior (``bayes/_density.py``) against PyMC's compiled log density
of the same model: value and gradient at points around the estimate and far from it,
for every model and every prior family it covers; any other prior falls back to PyMC."""

from __future__ import annotations

import numpy as np
import pytest

from clvmodels import bayes, registry
from clvmodels.bayes._density import log_posterior

MODELS = [spec.class_name for spec in registry.MODELS.values()]
PRIORS = {
    "default": None,
    "gamma": ("Gamma", {"alpha": 2.0, "beta": 1.5}),
    "half_normal": ("HalfNormal", {"sigma": 3.0}),
    "exponential": ("Exponential", {"lam": 0.5}),
    "lognormal": ("LogNormal", {"mu": 0.3, "sigma": 1.2}),
}


def _pymc_density(model, arrays, weights):
    pymc_model = model._build(arrays, weights)
    function = pymc_model.logp_dlogp_function(ravel_inputs=True)
    function.set_extra_values({})
    return function


@pytest.mark.parametrize("prior", list(PRIORS))
@pytest.mark.parametrize("name", MODELS)
def test_value_and_gradient_equal_pymcs(name, prior, patterns, mle_fit) -> None:
    cls = getattr(bayes, name)
    priors = {} if PRIORS[prior] is None else {cls.param_names[0]: PRIORS[prior],
                                               cls.param_names[-1]: PRIORS[prior]}
    model = cls(priors=priors)
    arrays, weights = patterns(name)
    density = log_posterior(model._twin(), arrays, weights, model.prior_specs())
    assert density is not None and density.names == list(cls.param_names)
    reference = _pymc_density(model, arrays, weights)
    center = np.log(mle_fit(name).params_.to_numpy())
    rng = np.random.default_rng(3)
    points = [center, *(center + rng.normal(0.0, scale, center.size)
                        for scale in (0.05, 0.5, 2.0) for _ in range(3))]  # fmt: skip
    for u in points:
        value, gradient = density(u)
        expected, expected_gradient = reference(u)
        if not np.isfinite(expected):
            assert value == -np.inf
            continue
        # PyMC's compiled graph differs from its own terms summed one by one by up to
        # 2e-9 relative (Gamma-Gamma with a Gamma prior, gamma = 740); a wrong prior,
        # Jacobian or constant term is off by far more than 1e-8
        assert value == pytest.approx(float(expected), rel=1e-8, abs=1e-6)
        scale = max(1.0, float(np.max(np.abs(expected_gradient))))
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-7, atol=1e-7 * scale)


def test_outside_the_support_is_minus_infinity(patterns) -> None:
    model = bayes.BGNBD()
    density = log_posterior(model._twin(), *patterns("BGNBD"), model.prior_specs())
    value, gradient = density(np.array([800.0, 0.0, 0.0, 0.0]))  # r = e^800 = inf
    assert value == -np.inf and np.all(gradient == 0.0)


def test_other_priors_fall_back_to_pymc(patterns) -> None:
    model = bayes.BGNBD(priors={"r": ("Weibull", {"alpha": 2.0, "beta": 1.0})})
    assert log_posterior(model._twin(), *patterns("BGNBD"), model.prior_specs()) is None
    # a known family under other parameter names, too
    model = bayes.BGNBD(priors={"r": ("Gamma", {"mu": 1.0, "sigma": 0.5})})
    assert log_posterior(model._twin(), *patterns("BGNBD"), model.prior_specs()) is None
