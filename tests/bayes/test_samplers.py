"""The samplers other than PyMC's (clvmodels' own, nutpie, numpyro) and the ArviZ 0.x /
1.x compatibility layer.

The nutpie and numpyro tests run only where those packages are installed
(``pip install "clvmodels[nutpie]"`` / ``"clvmodels[numpyro]"``); the log density that
nutpie samples, the Op's gradient and the ArviZ helpers are tested everywhere.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import clvmodels
from clvmodels import bayes
from clvmodels.bayes import _compat, _samplers
from clvmodels.bayes._op import WeightedLogLikelihood
from clvmodels.exceptions import ConvergenceError
from clvmodels.simulate import simulate_bgnbd

TRUE = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}

# short chains: convergence warnings are expected and beside the point here
pytestmark = pytest.mark.filterwarnings("ignore::clvmodels.exceptions.SamplingWarning")


@pytest.fixture(scope="module")
def small():
    """300 simulated BG/NBD customers."""
    return simulate_bgnbd(300, **TRUE, T=39.0, random_state=11)


@pytest.fixture(scope="module")
def built(small):
    """(Bayesian model, its PyMC model, the Op, the MLE) on ``small``."""
    model = bayes.BGNBD()
    twin = model._fitting_twin()
    twin.fit(small)
    arrays, weights = twin._patterns
    pymc_model = model._build(arrays, weights)
    op = WeightedLogLikelihood(clvmodels.BGNBD(), arrays, weights)
    return model, pymc_model, op, twin.params_.to_numpy()


# ------------------------------------------------------------- the likelihood Op


def test_op_gradient_through_pytensor(built):
    import pytensor
    import pytensor.tensor as pt

    _, _, op, mle = built
    x = pt.dvector("x")
    value, _ = op(x)
    function = pytensor.function([x], [value, pytensor.grad(value, x)])
    point = mle * np.array([1.1, 0.9, 1.2, 0.8])
    got_value, got_gradient = function(point)
    expected_value, expected_gradient = op.value_and_gradient(point)
    assert got_value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(got_gradient, expected_gradient, rtol=1e-10)
    # and the exact gradient is the derivative of the value
    step = 1e-6 * point
    numeric = [
        (op.value_and_gradient(point + np.eye(4)[i] * step[i])[0]
         - op.value_and_gradient(point - np.eye(4)[i] * step[i])[0]) / (2 * step[i])
        for i in range(4)
    ]  # fmt: skip
    np.testing.assert_allclose(expected_gradient, numeric, rtol=1e-5)


def test_op_outside_the_support_is_minus_infinity(built):
    _, _, op, _ = built
    for point in ([-1.0, 1.0, 1.0, 1.0], [np.nan, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]):
        value, gradient = op.value_and_gradient(np.array(point))
        assert value == -np.inf
        np.testing.assert_array_equal(gradient, 0.0)


def test_op_far_in_the_tails_is_minus_infinity_not_an_error(small):
    """Pareto/NBD's quadrature gives up at parameters a step-size search can reach
    (numpyro's did, on CDNOW); that is -inf, a divergence, not a crash."""
    twin = bayes.ParetoNBD()._fitting_twin()
    with contextlib.suppress(ConvergenceError):  # only the patterns are wanted
        twin.fit(small)
    op = WeightedLogLikelihood(clvmodels.ParetoNBD(), *twin._patterns)
    point = np.array([1.13635621e166, 9.28538678e-147, 2.30941900e-186, 1.46359402e95])
    value, gradient = op.value_and_gradient(point)
    assert value == -np.inf
    np.testing.assert_array_equal(gradient, 0.0)


# --------------------------------------------------- the density nutpie samples


def test_density_is_pymcs_log_posterior(built):
    _, pymc_model, _, mle = built
    density = _samplers._Density(pymc_model)
    assert density.names == ["r", "alpha", "a", "b"]
    assert density.ndim == 4
    logp, natural = density.for_chain()
    reference = pymc_model.logp_dlogp_function(ravel_inputs=True)
    reference.set_extra_values({})
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = np.log(mle) + rng.normal(0, 0.3, size=4)
        value, gradient = logp(x)
        expected_value, expected_gradient = reference(x)
        assert float(value) == pytest.approx(float(expected_value), rel=1e-12)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-10)
        np.testing.assert_allclose(np.ravel(natural(x)), np.exp(x), rtol=1e-14)
    start = density.flat_start(pymc_model, dict(zip(density.names, mle, strict=True)))
    np.testing.assert_allclose(start, np.log(mle), rtol=1e-12)


def test_density_copies_are_independent(built):
    _, pymc_model, _, mle = built
    density = _samplers._Density(pymc_model)
    (first, _), (second, _) = density.for_chain(), density.for_chain()
    x, y = np.log(mle), np.log(mle) + 0.5
    value_x = float(first(x)[0])
    second(y)
    assert float(first(x)[0]) == value_x
    assert first is not second


@pytest.mark.parametrize(
    ("seed", "expected"), [(0, 0), (7, 7), (np.int64(3), 3)]
)  # fmt: skip
def test_seeds_pass_through(seed, expected):
    assert _samplers._seed(seed) == expected


def test_other_seeds_are_reduced_deterministically():
    assert _samplers._seed([1, 2]) == _samplers._seed([1, 2])
    assert 0 <= _samplers._seed(-5) < 2**63


# ---------------------------------------------------------- clvmodels' own NUTS


def test_native_and_pymc_samplers_agree(small):
    """The default sampler and PyMC's sample the same posterior: on the log scale both
    sample (a and b have heavy right tails, whose natural-scale sd differs by 30 %
    between seeds of the same sampler), means within 0.15 posterior sd of each other
    (each from 2 x 1000 draws), sd within 15 %."""
    settings = {"chains": 2, "tune": 500, "draws": 1000, "random_seed": 3}
    native = bayes.BGNBD().fit(small, **settings)
    pymc = bayes.BGNBD().fit(small, sampler="pymc", **settings)
    assert native.fit_settings_["sampler"] == "clvmodels"
    _check_fit(native, 2, 1000)
    stats = native.idata_.sample_stats
    assert {"tree_depth", "n_steps", "step_size", "energy", "lp"} <= set(stats.data_vars)
    assert int(stats["diverging"].sum()) == 0
    a, b = np.log(native.posterior_samples()), np.log(pymc.posterior_samples())
    sd = b.std(axis=0)
    np.testing.assert_array_less(np.abs(a.mean(axis=0) - b.mean(axis=0)) / sd, 0.15)
    np.testing.assert_allclose(a.std(axis=0) / sd, 1.0, atol=0.15)
    assert native.diagnostics()["r_hat"].max() < 1.01


def test_native_sampler_is_reproducible(small):
    settings = {"chains": 2, "tune": 100, "draws": 100}
    one = bayes.BGNBD().fit(small, random_seed=5, cores=1, **settings)
    two = bayes.BGNBD().fit(small, random_seed=5, cores=2, **settings)
    np.testing.assert_array_equal(one.posterior_samples(), two.posterior_samples())
    other = bayes.BGNBD().fit(small, random_seed=6, **settings)
    assert not np.array_equal(one.posterior_samples(), other.posterior_samples())


def test_native_sampler_other_transforms(small):
    """A prior with an interval transform (not a log): the identity metric to start,
    and draws mapped back to their natural scale."""
    priors = {"a": ("Uniform", {"lower": 0.01, "upper": 5.0})}
    model = bayes.BGNBD(priors=priors).fit(small, chains=2, tune=300, draws=300,
                                           random_seed=1)  # fmt: skip
    draws = model.idata_.posterior["a"].values
    assert draws.min() > 0.01 and draws.max() < 5.0
    assert model.params_["r"] == pytest.approx(TRUE["r"], rel=0.35)


# ------------------------------------------------------------------ nutpie


def _check_fit(model, chains, draws):
    posterior = model.idata_.posterior
    for name in model.param_names:
        assert posterior[name].dims == ("chain", "draw")
        assert posterior[name].shape == (chains, draws)
    assert "diverging" in model.idata_.sample_stats
    assert model.posterior_samples().shape == (chains * draws, 4)
    # the small data set identifies r and alpha well: close to the truth
    assert model.params_["r"] == pytest.approx(TRUE["r"], rel=0.35)
    assert model.params_["alpha"] == pytest.approx(TRUE["alpha"], rel=0.5)
    table = model.summary()
    assert table["r_hat"].max() < 1.05
    assert np.isfinite(model.loo()["elpd_loo"])


def test_nutpie_fit(small):
    pytest.importorskip("nutpie")
    settings = {"sampler": "nutpie", "chains": 2, "tune": 300, "draws": 300}
    model = bayes.BGNBD().fit(small, random_seed=5, **settings)
    _check_fit(model, 2, 300)
    assert model.fit_settings_["sampler"] == "nutpie"
    again = bayes.BGNBD().fit(small, random_seed=5, **settings)
    np.testing.assert_array_equal(model.posterior_samples(), again.posterior_samples())
    other = bayes.BGNBD().fit(small, random_seed=6, **settings)
    assert not np.array_equal(model.posterior_samples(), other.posterior_samples())


def test_nutpie_other_transforms(small):
    """A prior with an interval transform (not a log): draws on its natural scale."""
    pytest.importorskip("nutpie")
    priors = {"a": ("Uniform", {"lower": 0.01, "upper": 5.0})}
    model = bayes.BGNBD(priors=priors).fit(
        small, sampler="nutpie", chains=2, tune=200, draws=200, random_seed=1
    )
    draws = model.idata_.posterior["a"].values
    assert draws.min() > 0.01
    assert draws.max() < 5.0


# ----------------------------------------------------------------- numpyro


def test_jax_likelihood_value_gradient_and_vmap(built):
    pytest.importorskip("numpyro")
    jax = pytest.importorskip("jax")
    _, _, op, mle = built
    _samplers._register_jax()
    function = _samplers._jax_weighted_loglik(op)

    def value(x):
        return function(x)[0]

    point = jax.numpy.asarray(mle * 1.05)
    expected_value, expected_gradient = op.value_and_gradient(np.asarray(point))
    got_value, got_gradient = jax.jit(jax.value_and_grad(value))(point)
    assert float(got_value) == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(np.asarray(got_gradient), expected_gradient, rtol=1e-10)
    batch = jax.numpy.stack([point, point * 1.1, point * 0.9])
    values, gradients = jax.vmap(jax.value_and_grad(value))(batch)
    for i in range(3):
        v, g = op.value_and_gradient(np.asarray(batch[i]))
        assert float(values[i]) == pytest.approx(v, rel=1e-12)
        np.testing.assert_allclose(np.asarray(gradients[i]), g, rtol=1e-10)


@pytest.mark.slow
def test_numpyro_fit(small):
    pytest.importorskip("numpyro")
    settings = {"sampler": "numpyro", "chains": 2, "tune": 300, "draws": 300}
    model = bayes.BGNBD().fit(small, random_seed=5, **settings)
    _check_fit(model, 2, 300)
    again = bayes.BGNBD().fit(small, random_seed=5, **settings)
    np.testing.assert_array_equal(model.posterior_samples(), again.posterior_samples())


# ------------------------------------------------------------- ArviZ 0.x / 1.x


def test_inference_data_has_a_posterior_group():
    draws = {"r": np.ones((2, 5)), "alpha": np.full((2, 5), 2.0)}
    idata = _compat.inference_data(draws)
    assert idata.posterior["r"].shape == (2, 5)
    assert idata.posterior["alpha"].dims == ("chain", "draw")


def test_psis_log_weights_are_normalised_and_oriented():
    from scipy.special import logsumexp

    rng = np.random.default_rng(3)
    log_likelihood = rng.normal(-2.0, 0.3, size=(6, 2000))  # (items, samples)
    log_weights, khat = _compat.psis_log_weights(log_likelihood)
    assert log_weights.shape == log_likelihood.shape
    assert khat.shape == (6,)
    np.testing.assert_allclose(logsumexp(log_weights, axis=-1), 0.0, atol=1e-10)
    # leave-one-out weights are largest where the item is least likely
    for i in range(6):
        low = np.argmin(log_likelihood[i])
        high = np.argmax(log_likelihood[i])
        assert log_weights[i, low] > log_weights[i, high]
    assert np.all(khat < 0.7)


def test_rhat_and_ess_of_independent_draws():
    rng = np.random.default_rng(4)
    r_hat, ess_bulk, ess_tail = _compat.rhat_ess(rng.normal(size=(4, 1000)))
    assert r_hat == pytest.approx(1.0, abs=0.01)
    assert 3000 < ess_bulk < 5000
    assert 2500 < ess_tail < 5000
    r_hat, _, _ = _compat.rhat_ess(rng.normal(size=(4, 1000)) + np.arange(4)[:, None])
    assert r_hat > 1.5
