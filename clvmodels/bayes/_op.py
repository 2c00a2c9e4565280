"""The shared log-likelihood as a PyTensor Op.

The Bayesian models do not restate their likelihoods in PyTensor: they call the very
numpy function the maximum-likelihood twin maximises (``BaseModel._weighted_loglik``,
with its exact gradient), on the compressed patterns and their weights. So the two can never
disagree, and the cost of one evaluation grows with distinct patterns, not customers.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from ._density import PatternLikelihood

__all__ = ["WeightedLogLikelihood"]


class WeightedLogLikelihood(Op):
    """``params -> (sum_k w_k log L_k(params), its gradient)`` for one model and data.

    Parameters
    ----------
    twin : BaseModel
        An instance of the maximum-likelihood class; only its ``_weighted_loglik`` is
        used.
    arrays : dict of numpy.ndarray
        The prepared pattern arrays (``twin._prepare`` already applied).
    weights : numpy.ndarray
        Customers per pattern.

    Both outputs come from one call, so PyMC's joint logp-and-gradient function
    evaluates the likelihood once per leapfrog step. Parameter vectors outside the
    support (or where the likelihood is not finite) give -inf and a zero gradient,
    which NUTS treats as a divergence, never as a crash.
    """

    __props__ = ()
    itypes: ClassVar[list[Any]] = [pt.dvector]
    otypes: ClassVar[list[Any]] = [pt.dscalar, pt.dvector]

    def __init__(self, twin: Any, arrays: dict[str, np.ndarray], weights: np.ndarray) -> None:
        self.likelihood = PatternLikelihood(twin, arrays, weights)
        _register_numba()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def make_node(self, params: Any) -> Apply:
        params = pt.as_tensor_variable(params)
        return Apply(self, [params], [pt.dscalar(), pt.dvector()])

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        return self.likelihood.value_and_gradient(params)

    def perform(self, node: Apply, inputs: list[Any], outputs: list[Any]) -> None:
        value, gradient = self.value_and_gradient(inputs[0])
        outputs[0][0] = np.asarray(value, dtype=np.float64)
        outputs[1][0] = gradient

    def pullback(self, inputs: list[Any], outputs: list[Any], cotangents: list[Any]) -> list[Any]:
        # PyTensor >= 3. Only the value output is ever differentiated (the gradient is
        # not), and its gradient is the node's own second output.
        return [cotangents[0] * outputs[1]]

    def grad(self, inputs: list[Any], output_gradients: list[Any]) -> list[Any]:
        # PyTensor 2 (PyMC 5); PyTensor 3 calls pullback
        _, gradient = self(inputs[0])
        return [output_gradients[0] * gradient]


_NUMBA_REGISTERED = False


def _register_numba() -> None:
    """PyTensor 3 (PyMC 6) compiles with numba by default. A numpy Op has no numba
    implementation, so PyTensor runs its ``perform`` in numba's object mode, warning at
    every compilation; the same fallback is registered here, without the warning. Under
    PyTensor 2 (C backend by default) numba is not even imported."""
    global _NUMBA_REGISTERED
    if _NUMBA_REGISTERED:
        return
    _NUMBA_REGISTERED = True
    from pytensor.compile.mode import get_default_mode

    if "numba" not in type(get_default_mode().linker).__name__.lower():
        return
    try:
        from pytensor.link.numba.dispatch.basic import generate_fallback_impl, numba_funcify
    except ImportError:  # another PyTensor layout: its own fallback (and warning) apply
        return

    @numba_funcify.register(WeightedLogLikelihood)
    def _object_mode(op: Any, node: Any = None, storage_map: Any = None, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*object mode.*", category=UserWarning)
            return generate_fallback_impl(op, node, storage_map, **kwargs)
