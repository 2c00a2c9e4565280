"""The models clvmodels knows, each declared once.

A :class:`ModelSpec` holds everything the rest of the package needs to know about a
model without importing it: its kind (the name in experiment files and saved models),
its label for people, its role, its parameters, where its maximum-likelihood and
Bayesian classes and its simulator live, and its default priors. ``load``, the YAML
schema, the runner, the command line, the plots and ``clvmodels.__init__`` read this
table; adding a model means its module and one entry here.

Classes are named by module and attribute and imported on first use
(:func:`model_class`), so this module imports nothing of clvmodels and every layer may
read it.

Examples
--------
>>> from clvmodels import registry
>>> spec = registry.get("bgnbd")
>>> spec.label, spec.parameters
('BG/NBD', ('r', 'alpha', 'a', 'b'))
>>> registry.model_class("bgnbd").__name__
'BGNBD'
>>> [spec.kind for spec in registry.purchase_models()]
['bgnbd', 'pnbd', 'mbgnbd', 'bgbb']
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "MODELS",
    "ModelSpec",
    "Prior",
    "get",
    "kinds",
    "model_class",
    "purchase_models",
    "simulator",
]

Prior = tuple[str, dict[str, float]]
# Weakly informative defaults on the log scale: shapes within a few orders of magnitude
# of 1, scales (in the data's time or currency units) within a wider range.
_SHAPE: Prior = ("LogNormal", {"mu": 0.0, "sigma": 2.0})
_SCALE: Prior = ("LogNormal", {"mu": 0.0, "sigma": 3.0})


@dataclass(frozen=True)
class ModelSpec:
    """One model: what every part of clvmodels needs to know about it.

    Attributes
    ----------
    kind : str
        The model's name in experiment files, saved models and ``simulate_transactions``.
    label : str
        The model's name for people (``"BG/NBD"``).
    role : {"purchase", "spend", "retention"}
        Purchase models predict transactions per customer (``discrete`` ones count
        transaction opportunities), the spend model the value of transactions, and a
        retention model a contractual cohort.
    parameters : tuple of str
        Parameter names, in the order of ``params_``; every one is a positive finite
        number.
    class_name : str
        Name of the class in ``module`` and in :mod:`clvmodels.bayes`.
    module : str
        Module of the maximum-likelihood class.
    simulator : str
        Name of the simulator in :mod:`clvmodels.simulate`.
    priors : dict
        Default prior of each parameter of the Bayesian model: ``(distribution,
        parameters)`` as PyMC names them.
    discrete : bool
        Fitted on transaction opportunities (BG/BB) rather than continuous time.
    in_experiments : bool
        Whether experiment files can run it (a retention model is fitted on cohort
        counts, not on a transaction log).
    """

    kind: str
    label: str
    role: Literal["purchase", "spend", "retention"]
    parameters: tuple[str, ...]
    class_name: str
    module: str
    simulator: str
    priors: dict[str, Prior] = field(default_factory=dict)
    discrete: bool = False
    in_experiments: bool = True

    @property
    def continuous_purchase(self) -> bool:
        """A purchase model in continuous time (BG/NBD, Pareto/NBD, MBG/NBD)."""
        return self.role == "purchase" and not self.discrete


MODELS: dict[str, ModelSpec] = {
    spec.kind: spec
    for spec in (
        ModelSpec(
            kind="bgnbd", label="BG/NBD", role="purchase", parameters=("r", "alpha", "a", "b"),
            class_name="BGNBD", module="clvmodels.models.bgnbd", simulator="simulate_bgnbd",
            priors={"r": _SHAPE, "alpha": _SCALE, "a": _SHAPE, "b": _SHAPE},
        ),
        ModelSpec(
            kind="pnbd", label="Pareto/NBD", role="purchase",
            parameters=("r", "alpha", "s", "beta"), class_name="ParetoNBD",
            module="clvmodels.models.pnbd", simulator="simulate_pnbd",
            priors={"r": _SHAPE, "alpha": _SCALE, "s": _SHAPE, "beta": _SCALE},
        ),
        ModelSpec(
            kind="mbgnbd", label="MBG/NBD", role="purchase",
            parameters=("r", "alpha", "a", "b"), class_name="MBGNBD",
            module="clvmodels.models.mbgnbd", simulator="simulate_mbgnbd",
            priors={"r": _SHAPE, "alpha": _SCALE, "a": _SHAPE, "b": _SHAPE},
        ),
        ModelSpec(
            kind="bgbb", label="BG/BB", role="purchase",
            parameters=("alpha", "beta", "gamma", "delta"), class_name="BGBB",
            module="clvmodels.models.bgbb", simulator="simulate_bgbb", discrete=True,
            priors={"alpha": _SHAPE, "beta": _SHAPE, "gamma": _SHAPE, "delta": _SHAPE},
        ),
        ModelSpec(
            kind="gamma_gamma", label="Gamma-Gamma", role="spend",
            parameters=("p", "q", "gamma"), class_name="GammaGamma",
            module="clvmodels.models.gamma_gamma", simulator="simulate_gamma_gamma",
            priors={"p": _SHAPE, "q": _SHAPE, "gamma": _SCALE},
        ),
        ModelSpec(
            kind="sbg", label="shifted beta-geometric", role="retention",
            parameters=("alpha", "beta"), class_name="ShiftedBetaGeometric",
            module="clvmodels.models.sbg", simulator="simulate_sbg",
            priors={"alpha": _SHAPE, "beta": _SHAPE}, in_experiments=False,
        ),
    )
}  # fmt: skip

_BAYES_MODULE = "clvmodels.bayes.models"


def kinds() -> tuple[str, ...]:
    """Every model kind, in the order of :data:`MODELS`.

    Examples
    --------
    >>> kinds()
    ('bgnbd', 'pnbd', 'mbgnbd', 'bgbb', 'gamma_gamma', 'sbg')
    """
    return tuple(MODELS)


def get(kind: str) -> ModelSpec:
    """The declaration of ``kind``; an unknown kind is a ``KeyError`` naming the kinds.

    Examples
    --------
    >>> get("pnbd").label
    'Pareto/NBD'
    """
    try:
        return MODELS[kind]
    except (KeyError, TypeError):
        raise KeyError(
            f"{kind!r} is not a model kind; the kinds are {', '.join(MODELS)}"
        ) from None


def purchase_models() -> list[ModelSpec]:
    """The purchase models (BG/NBD, Pareto/NBD, MBG/NBD, BG/BB)."""
    return [spec for spec in MODELS.values() if spec.role == "purchase"]


def model_class(kind: str, *, bayesian: bool = False) -> Any:
    """The class of ``kind``: maximum likelihood, or its twin in :mod:`clvmodels.bayes`
    (which imports PyMC).

    Examples
    --------
    >>> model_class("gamma_gamma").__module__
    'clvmodels.models.gamma_gamma'
    """
    spec = get(kind)
    module = importlib.import_module(_BAYES_MODULE if bayesian else spec.module)
    return getattr(module, spec.class_name)


def simulator(kind: str) -> Any:
    """The simulator of ``kind`` in :mod:`clvmodels.simulate`.

    Examples
    --------
    >>> simulator("bgnbd").__name__
    'simulate_bgnbd'
    """
    return getattr(importlib.import_module("clvmodels.simulate"), get(kind).simulator)
