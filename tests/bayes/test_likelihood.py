"""The Bayesian likelihood is the maximum-likelihood twin's: the Op's value and exact
gradient against the twin's per-pattern ``_loglik`` and its fitted ``log_likelihood_``,
and PyMC's log posterior minus the priors and Jacobians against the Op."""

from __future__ import annotations

import numpy as np
import pytest

from clvmodels import bayes
from clvmodels.bayes._op import WeightedLogLikelihood


def _random_params(center: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` parameter vectors within a factor of about e of ``center``."""
    return [center * np.exp(rng.normal(0.0, 0.5, size=center.size)) for _ in range(n)]


def test_op_is_the_weighted_twin_likelihood(model_name, patterns, mle_fit, numeric_derivative):
    name = model_name
    arrays, weights = patterns(name)
    mle = mle_fit(name)
    twin = type(mle)()
    op = WeightedLogLikelihood(twin, arrays, weights)
    rng = np.random.default_rng(sum(map(ord, name)))
    for params in _random_params(mle.params_.to_numpy(), rng, 4):
        value, gradient = op.value_and_gradient(params)
        per_pattern, _ = twin._loglik(params, arrays, False)
        expected = float(np.sum(weights * np.broadcast_to(per_pattern, weights.shape)))
        np.testing.assert_allclose(value, expected, rtol=1e-12)
        assert gradient.shape == params.shape
        numeric = [
            numeric_derivative(lambda p: op.value_and_gradient(p)[0], params, j)
            for j in range(params.size)
        ]
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-6 * abs(value))
    # at the twin's own estimate: its log-likelihood, and a vanishing gradient
    value, gradient = op.value_and_gradient(mle.params_.to_numpy())
    np.testing.assert_allclose(value, mle.log_likelihood_, rtol=1e-12)
    assert np.all(np.abs(gradient * mle.params_.to_numpy()) < 1e-3 * float(weights.sum()) ** 0.5)


@pytest.mark.parametrize("params", [[-1.0, 1, 1, 1], [0.0, 1, 1, 1], [np.nan, 1, 1, 1],
                                    [np.inf, 1, 1, 1]])  # fmt: skip
def test_op_outside_the_support_is_minus_inf_not_an_error(params, patterns):
    arrays, weights = patterns("BGNBD")
    op = WeightedLogLikelihood(bayes.BGNBD.twin_class(), arrays, weights)
    value, gradient = op.value_and_gradient(np.array(params, dtype=np.float64))
    assert value == -np.inf
    np.testing.assert_array_equal(gradient, np.zeros(4))


def test_op_in_a_pytensor_graph_gives_value_and_gradient(patterns):
    import pytensor
    import pytensor.tensor as pt

    arrays, weights = patterns("BGNBD")
    op = WeightedLogLikelihood(bayes.BGNBD.twin_class(), arrays, weights)
    x = pt.dvector("x")
    value, _ = op(x)
    function = pytensor.function([x], [value, pytensor.grad(value, x)])
    params = np.array([0.25, 4.0, 0.8, 2.5])
    got_value, got_gradient = function(params)
    expected_value, expected_gradient = op.value_and_gradient(params)
    assert float(got_value) == expected_value
    np.testing.assert_array_equal(got_gradient, expected_gradient)


def test_pymc_log_posterior_is_priors_plus_the_twin_likelihood(model_name, patterns, mle_fit):
    name = model_name
    import pymc as pm

    arrays, weights = patterns(name)
    mle = mle_fit(name)
    model_class = getattr(bayes, name)
    bayesian = model_class()
    model = bayesian._build(arrays, weights)
    names = list(model_class.param_names)
    # every default prior is LogNormal: sampled as log(parameter)
    assert [v.name for v in model.value_vars] == [f"{n}_log__" for n in names]
    function = model.logp_dlogp_function(ravel_inputs=True)
    function.set_extra_values({})
    op = WeightedLogLikelihood(type(mle)(), arrays, weights)
    specs = bayesian.prior_specs()
    rng = np.random.default_rng(7)
    for params in [mle.params_.to_numpy(), *_random_params(mle.params_.to_numpy(), rng, 3)]:
        log_params = np.log(params)
        total, gradient = function(log_params)
        prior = 0.0
        prior_gradient = np.empty(len(names))
        for i, n in enumerate(names):
            distribution, parameters = specs[n]
            assert distribution == "LogNormal"
            dist = getattr(pm, distribution).dist(**parameters)
            # log-density of log(theta): the prior's density at theta times theta
            prior += float(pm.logp(dist, params[i]).eval()) + log_params[i]
            mu, sigma = parameters["mu"], parameters["sigma"]
            prior_gradient[i] = -(log_params[i] - mu) / sigma**2
        value, op_gradient = op.value_and_gradient(params)
        np.testing.assert_allclose(float(total) - prior, value, rtol=1e-10)
        # d/dlog(theta) = theta * d/dtheta
        np.testing.assert_allclose(
            gradient, prior_gradient + params * op_gradient, rtol=1e-8, atol=1e-8
        )
