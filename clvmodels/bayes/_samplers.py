"""NUTS other than PyMC's: clvmodels' own (the default) and the optional nutpie and numpyro.

Each returns the same thing as PyMC's own sampler, an ArviZ object whose ``posterior``
holds every parameter on its natural scale (chain, draw) and whose ``sample_stats`` has
``diverging``, so everything downstream of ``BayesianModel._sample`` is shared.

- **clvmodels** (:func:`sample_native`) runs the numpy NUTS of
  :mod:`clvmodels.bayes._nuts` on PyMC's compiled log density (:class:`_Density`), with
  chains in forked processes; it has no progress bar.
- **nutpie** samples a log density written here in Python: PyMC's compiled log
  posterior on the unconstrained (log) scale -- priors, Jacobian and the shared
  :class:`~clvmodels.bayes._op.WeightedLogLikelihood` -- with its gradient, through
  ``nutpie.compiled_pyfunc.from_pyfunc``. It is set up in about a second, where
  ``nutpie.compile_pymc_model`` spends some 25 s compiling the model with numba only to
  run the numpy Op in numba's object mode. nutpie calls back into Python for each
  gradient, and runs its chains one after another (see ``_sample_nutpie``).
- **numpyro** runs PyMC's JAX path; the likelihood Op is given a JAX implementation that
  calls the numpy likelihood through ``jax.pure_callback`` with a custom JVP giving its
  exact gradient from the same call.

nutpie, numpyro and JAX are imported only here, and only when asked for.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any, NamedTuple

import numpy as np

from ..exceptions import InvalidDataError

__all__ = ["sample_external", "sample_native"]

# Jittered starts tried per chain before falling back to the unjittered start.
_JITTER_TRIES = 20


def sample_external(
    sampler: str, model: Any, initvals: dict[str, float], *, draws: int, tune: int,
    chains: int, cores: int, random_seed: int, target_accept: float, progressbar: bool,
) -> Any:  # fmt: skip
    """Sample ``model`` with ``sampler`` ("nutpie" or "numpyro")."""
    settings = {
        "draws": draws, "tune": tune, "chains": chains, "cores": cores,
        "random_seed": _seed(random_seed), "target_accept": target_accept,
        "progressbar": progressbar,
    }  # fmt: skip
    if sampler == "nutpie":
        return _sample_nutpie(model, initvals, **settings)
    if sampler == "numpyro":
        return _sample_numpyro(model, initvals, **settings)
    raise InvalidDataError(f"sampler={sampler!r}: use 'pymc', 'nutpie' or 'numpyro'.")


def _seed(random_seed: Any) -> int:
    """One integer in [0, 2**63) for the samplers' own generators."""
    if random_seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
    if isinstance(random_seed, int | np.integer):
        value = int(random_seed)
        if 0 <= value < 2**63:
            return value
        return int(np.random.SeedSequence(abs(value)).generate_state(1, np.uint64)[0] >> 1)
    # anything else numpy takes as a seed (a Generator, a sequence of integers)
    return int(np.random.default_rng(random_seed).integers(2**63))


# ------------------------------------------------------------------ nutpie


class _Density:
    """The log posterior of a PyMC model on its unconstrained scale, as numpy
    functions of one flat vector: ``logp_and_gradient`` and ``natural`` (the free
    variables on their natural scale). Each compiled PyTensor function keeps its own
    storage, so a chain (a nutpie thread) gets its own copy through ``for_chain``."""

    def __init__(self, model: Any) -> None:
        import pytensor
        from pymc.pytensorf import join_nonshared_inputs

        self.names = [rv.name for rv in model.free_RVs]
        self.value_vars = list(model.value_vars)
        point = model.initial_point()
        self.sizes = [int(np.asarray(point[v.name]).size) for v in self.value_vars]
        self.shapes = [tuple(np.shape(point[v.name])) for v in self.value_vars]
        natural = {v.name: v for v in model.unobserved_value_vars}
        outputs = [model.logp(), *(natural[name] for name in self.names)]
        joined, flat = join_nonshared_inputs(point, outputs, self.value_vars)
        logp, values = joined[0], list(joined[1:])
        gradient = pytensor.grad(logp, flat)
        self.ndim = int(sum(self.sizes))
        mode = _c_mode()
        self._logp = pytensor.function(
            [flat], [logp, gradient], mode=mode, on_unused_input="ignore"
        )
        self._natural = pytensor.function([flat], values, mode=mode, on_unused_input="ignore")
        self._lock = threading.Lock()

    def log_scale(self, model: Any) -> bool:
        """Whether every free variable is a scalar sampled on the log scale (then the
        unconstrained vector is the log of the parameters, in the order of ``names``)."""
        transforms = getattr(model, "rvs_to_transforms", {})
        return all(
            size == 1 and type(transforms.get(rv)).__name__ == "LogTransform"
            for rv, size in zip(model.free_RVs, self.sizes, strict=True)
        )

    def for_chain(self) -> tuple[Any, Any]:
        with self._lock:  # copying reads the shared function's state
            return self._logp.copy(), self._natural.copy()

    def flat_start(self, model: Any, initvals: dict[str, float]) -> np.ndarray:
        """``initvals`` on the unconstrained scale, as one vector."""
        from pymc.initial_point import make_initial_point_fn

        make_point = make_initial_point_fn(
            model=model, overrides=initvals, jitter_rvs=set(), return_transformed=True
        )
        point = make_point(0)
        return np.concatenate(
            [np.asarray(point[v.name], dtype=np.float64).ravel() for v in self.value_vars]
        )


def _c_mode() -> Any:
    """PyTensor's C virtual machine where a C compiler is available, else the default.

    PyTensor 3 compiles with numba by default, and runs the numpy likelihood Op in
    numba's object mode; called from nutpie's (non-Python) threads that transition
    costs about 200 us per gradient, more than the likelihood itself on CDNOW (CDNOW
    BG/NBD, 4 x 2000 iterations: 12 s under numba, 5.5 s under the C VM, whose C code
    is cached after the first compilation). PyTensor 2's default is the C VM already.
    """
    import pytensor
    from pytensor.compile.mode import Mode

    return Mode(linker="cvm") if pytensor.config.cxx else None


def _finite_logp(logp: Any, x: np.ndarray) -> bool:
    with np.errstate(all="ignore"):
        value, gradient = logp(x)
    return bool(np.isfinite(value) and np.all(np.isfinite(gradient)))


def _sample_nutpie(model, initvals, *, draws, tune, chains, cores, random_seed,
                   target_accept, progressbar) -> Any:  # fmt: skip
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    density = _Density(model)
    start = density.flat_start(model, initvals)
    check, _ = density.for_chain()
    if not _finite_logp(check, start):
        start = np.zeros_like(start)

    def make_logp_fn():
        logp, _ = density.for_chain()

        def logp_and_gradient(x, **_shared):
            with np.errstate(all="ignore"):
                value, gradient = logp(x)
            value = float(value)
            gradient = np.ascontiguousarray(gradient, dtype=np.float64)
            if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
                # a divergence for nutpie, never a crash
                return -np.inf, np.zeros_like(gradient)
            return value, gradient

        return logp_and_gradient

    def make_expand_fn(seed1, seed2, chain):
        _, natural = density.for_chain()

        def expand(x, **_shared):
            values = natural(x)
            return {
                name: np.asarray(value, dtype=np.float64).reshape(shape)
                for name, value, shape in zip(density.names, values, density.shapes, strict=True)
            }

        return expand

    def make_initial_point(seed):
        # PyMC's jitter (uniform on +-1, unconstrained scale) around the start, retried
        # where the posterior is not finite
        rng = np.random.default_rng([random_seed, int(seed) % 2**63])
        logp, _ = density.for_chain()
        for _ in range(_JITTER_TRIES):
            point = start + rng.uniform(-1.0, 1.0, size=start.shape)
            if _finite_logp(logp, point):
                return point
        return start.copy()

    compiled = from_pyfunc(
        ndim=density.ndim,
        make_logp_fn=make_logp_fn,
        make_expand_fn=make_expand_fn,
        expanded_dtypes=[np.dtype("float64")] * len(density.names),
        expanded_shapes=density.shapes,
        expanded_names=density.names,
        make_initial_point_fn=make_initial_point,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        return nutpie.sample(
            # One thread: nutpie runs chains as threads of this process and the numpy
            # likelihood holds the GIL, so a second thread only adds contention (CDNOW
            # BG/NBD: 6.4 s on one, 8.2 s on two; 21,000 patterns: 9.2 s and 9.5 s).
            # The draws do not depend on it: each chain has its own seed.
            compiled, draws=draws, tune=tune, chains=chains, cores=1, seed=random_seed,
            target_accept=target_accept, progress_bar=progressbar, save_warmup=False,
            # a mass matrix that learns the posterior correlations (as the dense one of
            # sampler="pymc"): on CDNOW's BG/NBD, 3 instead of 9 gradients per draw
            low_rank_modified_mass_matrix=True,
        )  # fmt: skip


# ----------------------------------------------------------------- numpyro

_JAX_REGISTERED = False


def _register_jax() -> None:
    """Give :class:`WeightedLogLikelihood` a JAX implementation (once per process)."""
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    from pytensor.link.jax.dispatch import jax_funcify

    from ._op import WeightedLogLikelihood

    jax_funcify.register(WeightedLogLikelihood)(_jax_weighted_loglik)
    _JAX_REGISTERED = True


def _pure_callback(callback: Any, result_shapes: Any, *args: Any) -> Any:
    """``jax.pure_callback``, evaluated one point at a time under ``vmap``."""
    import jax

    try:
        return jax.pure_callback(callback, result_shapes, *args, vmap_method="sequential")
    except TypeError:  # JAX older than 0.4.34: no vmap_method
        return jax.pure_callback(callback, result_shapes, *args, vectorized=False)


def _jax_weighted_loglik(op: Any, node: Any = None, **kwargs: Any) -> Any:
    import jax
    import jax.numpy as jnp

    def host(params: Any) -> tuple[np.ndarray, np.ndarray]:
        value, gradient = op.value_and_gradient(np.asarray(params, dtype=np.float64))
        return np.asarray(value, dtype=np.float64), np.asarray(gradient, dtype=np.float64)

    def evaluate(params: Any) -> tuple[Any, Any]:
        shapes = (
            jax.ShapeDtypeStruct((), jnp.float64),
            jax.ShapeDtypeStruct(params.shape, jnp.float64),
        )
        return _pure_callback(host, shapes, params)

    @jax.custom_jvp
    def weighted_loglik(params: Any) -> tuple[Any, Any]:
        return evaluate(params)

    @weighted_loglik.defjvp
    def weighted_loglik_jvp(primals: Any, tangents: Any) -> tuple[Any, Any]:
        (params,), (tangent,) = primals, tangents
        value, gradient = evaluate(params)
        # the gradient output is never differentiated (as in the Op's own grad)
        return (value, gradient), (jnp.dot(gradient, tangent), jnp.zeros_like(gradient))

    return weighted_loglik


def _sample_numpyro(model, initvals, *, draws, tune, chains, cores, random_seed,
                    target_accept, progressbar) -> Any:  # fmt: skip
    import logging

    # PyMC's own driver of numpyro; pm.sample reaches it too, but its way of passing
    # NUTS settings differs between PyMC 5 and 6, and this function's does not
    from pymc.sampling.jax import sample_jax_nuts

    _register_jax()
    pymc_logger = logging.getLogger("pymc")
    level = pymc_logger.level
    if not progressbar:  # "Compiling..." and "Sampling..." lines are progress too
        pymc_logger.setLevel(logging.WARNING)
    try:
        with model, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*not enough devices.*")
            return sample_jax_nuts(
                draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                random_seed=random_seed, initvals=initvals, model=model,
                # dense mass matrix, as for sampler="pymc": 5 instead of 15 gradients
                # per draw on CDNOW's BG/NBD
                nuts_kwargs={"dense_mass": True}, progressbar=progressbar,
                compute_convergence_checks=False, nuts_sampler="numpyro",
            )  # fmt: skip
    finally:
        pymc_logger.setLevel(level)


# ---------------------------------------------------------------- clvmodels


# Chains start at normal draws around the estimate with this many times its standard
# errors: dispersed enough for r_hat to mean something, close enough that no tuning is
# spent walking in from far away.
START_SPREAD = 2.0


def dispersed_starts(center: np.ndarray, log_covariance: np.ndarray, chains: int,
                     rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """One start per chain (rows), on the log scale: ``center`` plus normal draws with
    ``START_SPREAD`` times the standard errors of ``log_covariance``."""
    offsets = rng.multivariate_normal(np.zeros(center.size), log_covariance, size=chains)
    return center + START_SPREAD * offsets


def sample_native(model: Any, initvals: dict[str, float], *, draws: int, tune: int, chains: int,
                  cores: int, random_seed: Any, target_accept: float,
                  log_covariance: np.ndarray | None, density: Any = None) -> Any:  # fmt: skip
    """Sample with the numpy NUTS of :mod:`clvmodels.bayes._nuts`.

    The log density is ``density`` (the numpy log posterior of
    :mod:`clvmodels.bayes._density`, on the log parameters) where given, else PyMC's
    ``model`` compiled (:class:`_Density`). Chains start as with ``sampler="pymc"``: at
    normal draws around the maximum-likelihood estimate with twice its standard errors
    on the log scale, the metric at that covariance, where they are known; else
    jittered by +-1 around the start, with the identity metric.
    """
    from ._compat import inference_data
    from ._nuts import sample_nuts

    seed = _seed(random_seed)
    target = _native_target(model, density)
    rng = np.random.default_rng([seed, 7])
    informed = target.log_scale and log_covariance is not None
    if informed:
        center = target.flat_start(initvals)
        starts = dispersed_starts(center, log_covariance, chains, rng)
        for chain in range(chains):  # (the estimate itself where a draw is not finite)
            if not _finite_logp(target.logp, starts[chain]):
                starts[chain] = center
    else:
        center = target.flat_start(initvals)
        if not _finite_logp(target.logp, center):
            center = np.zeros_like(center)
        starts = np.tile(center, (chains, 1))
        for chain in range(chains):
            for _ in range(_JITTER_TRIES):
                point = center + rng.uniform(-1.0, 1.0, size=center.shape)
                if _finite_logp(target.logp, point):
                    starts[chain] = point
                    break

    def logp_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = target.logp(x)
        return float(value), gradient

    result = sample_nuts(
        logp_and_gradient, starts, draws=draws, tune=tune, random_seed=seed,
        covariance=log_covariance if informed else None, target_accept=target_accept,
        cores=cores,
    )  # fmt: skip
    flat = result.draws.reshape(-1, target.ndim)
    values = target.natural(flat)
    posterior = {
        name: values[:, k].reshape(chains, draws) for k, name in enumerate(target.names)
    }
    return inference_data(posterior, result.stats)


class _Target(NamedTuple):
    """What the native sampler runs on: the log density of one flat vector, the
    parameters' names, its size, whether it is the parameters' working scale (the log of
    positive ones, covariate coefficients as they are; the scale of the maximum-
    likelihood covariance), the natural values of draws (rows) and the flat start for
    given natural values."""

    logp: Any
    names: list[str]
    ndim: int
    log_scale: bool
    natural: Any
    flat_start: Any


def _native_target(model: Any, density: Any) -> _Target:
    if density is not None:  # the numpy log posterior, on its working scale
        return _Target(
            density, list(density.names), density.ndim, True, density.natural,
            lambda initvals: density.working([initvals[name] for name in density.names]),
        )  # fmt: skip
    compiled = _Density(model)
    logp, natural = compiled.for_chain()
    if compiled.log_scale(model):
        to_natural = np.exp
    else:
        def to_natural(flat: np.ndarray) -> np.ndarray:
            return np.array([np.concatenate([np.ravel(v) for v in natural(x)]) for x in flat])
    return _Target(
        logp, compiled.names, compiled.ndim, compiled.log_scale(model), to_natural,
        lambda initvals: compiled.flat_start(model, initvals),
    )  # fmt: skip
