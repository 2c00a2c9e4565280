"""Checks of saved model files, shared by ``clvmodels.load`` (JSON) and
``clvmodels.bayes.load`` (netCDF): strict JSON, known keys, format versions, settings and
parameters as ``fit`` checks them. Every refusal is one line naming the file, the key,
what is wrong and what to do (:class:`Refusal`)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import finite_number, is_integer
from .._version import __version__
from ..exceptions import InvalidDataError

# Largest model file load reads. A saved model takes a few kilobytes; the limit stops a
# wrong path (a data file, a log) from being read into memory before it is refused.
MAX_FILE_BYTES = 50 * 2**20
# Deepest nesting of lists and objects load accepts. A saved state nests at most 5 deep
# (a Bayesian prior: state, settings, priors, [name, parameters]), so deeper is damage;
# refused right after parsing, it reaches none of the recursive code after it.
MAX_JSON_DEPTH = 32


class Refusal:
    """Makes the errors of a file that ``load`` refuses: one line naming the file, the
    key (``where``), what is wrong and what to do."""

    def __init__(self, path: Any, what: str) -> None:
        self.path = path
        self.what = what

    def __call__(self, problem: str, where: str | None = None) -> InvalidDataError:
        place = f"{where} " if where else ""
        return InvalidDataError(
            f"{self.path} is not {self.what}, or damaged: {place}{problem}. Restore the "
            "file from a copy, or fit and save the model again."
        )


def clipped(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters: a message quotes a file, never
    copies it."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def shown(value: Any, width: int = 60) -> str:
    return clipped(repr(value), width)


def listed(names: Sequence[Any], most: int = 10) -> str:
    text = ", ".join(shown(str(n), 40) for n in names[:most])
    return text + (f" and {len(names) - most} more" if len(names) > most else "")


class _UnreadableJSON(ValueError):
    """JSON that ``json`` would accept but a saved model never contains."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) < len(pairs):  # json would keep the last one, silently
        counts = Counter(key for key, _ in pairs)
        repeated = sorted(key for key, count in counts.items() if count > 1)
        raise _UnreadableJSON(f"the key {listed(repeated)} appears twice in one object")
    return mapping


def _json_constant(name: str) -> Any:
    raise _UnreadableJSON(f"{name} is not a JSON number")


def _json_integer(text: str) -> int:
    # Larger integers do not fit a float (json would take up to 4,300 digits).
    if len(text.lstrip("-")) > 308:
        raise _UnreadableJSON(f"an integer of {len(text):,} digits is not a number of a model")
    return int(text)


def parse_json(text: str, refuse: Refusal, where: str | None = None) -> Any:
    """``text`` parsed as strict JSON: no NaN or Infinity, no repeated keys, integers a
    float can hold, nesting at most MAX_JSON_DEPTH deep."""
    too_deep = "is nested too deeply to be a saved model"
    try:
        value = json.loads(
            text, object_pairs_hook=_json_object, parse_constant=_json_constant,
            parse_int=_json_integer,
        )  # fmt: skip
    except RecursionError:
        raise refuse(too_deep, where) from None
    except ValueError as err:  # JSONDecodeError and _UnreadableJSON among them
        detail = clipped(str(err) or type(err).__name__, 120)
        raise refuse(f"is not valid JSON ({detail})", where) from None
    if _too_deep(value):
        raise refuse(too_deep, where)
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests lists and objects more than MAX_JSON_DEPTH deep (walked
    without recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def read_json_file(path: str | Path, refuse: Refusal) -> Any:
    """The JSON in ``path``, refused without parsing when larger than MAX_FILE_BYTES."""
    too_large = (
        f"is larger than {MAX_FILE_BYTES // 2**20} MiB, the most load reads (a saved "
        "model takes a few kilobytes)"
    )
    if os.stat(path).st_size > MAX_FILE_BYTES:
        raise refuse(too_large, "it")
    with open(path, "rb") as file:  # a device or pipe can be larger than it says
        raw = file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(too_large, "it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("is not text (UTF-8), as the JSON of a saved model is", "it") from None
    return parse_json(text, refuse, "it")


def check_format_version(state: dict[str, Any], current: int, path: Any,
                          refuse: Refusal) -> None:  # fmt: skip
    """``format_version`` is a version this clvmodels reads: 1 to ``current``."""
    if "format_version" not in state:
        raise refuse("is missing", "format_version")
    version = state["format_version"]
    if not is_integer(version):
        raise refuse(f"is {shown(version)}, not a whole number", "format_version")
    if version > current:
        raise InvalidDataError(
            f"{path} was written by a newer clvmodels (format_version {shown(version)}; "
            f"clvmodels {__version__} reads format_version {current} and older): upgrade "
            "clvmodels to load it (pip install --upgrade clvmodels)."
        )
    if version < 1:
        raise refuse(f"is {version}; versions start at 1", "format_version")


def check_keys(mapping: Any, required: Sequence[str], optional: Sequence[str], where: str,
                refuse: Refusal) -> None:  # fmt: skip
    """``mapping`` is a JSON object with every ``required`` key and no key that is not
    ``required`` or ``optional``."""
    if not isinstance(mapping, dict):
        raise refuse(f"is {shown(mapping)}, not a JSON object", where)
    unknown = sorted(set(mapping) - set(required) - set(optional))
    if unknown:
        known = listed([*required, *optional]) if required or optional else "none"
        raise refuse(f"has unknown keys {listed(unknown)} (known: {known})", where)
    missing = [key for key in required if key not in mapping]
    if missing:
        raise refuse(f"lacks the keys {listed(missing)}", where)


def saved_settings(cls: Any, settings: Any, refuse: Refusal) -> Any:
    """An unfitted ``cls`` with the saved constructor settings, checked as ``fit``
    checks them. Keys left out take their defaults."""
    check_keys(settings, (), cls._setting_names(), "settings", refuse)
    model = cls(**settings)
    try:
        model._check_settings()
    except InvalidDataError as err:
        raise refuse(f"are not valid: {clipped(str(err), 200).rstrip('.')}",
                     "settings") from None  # fmt: skip
    return model


def saved_parameters(cls: Any, values: Any, where: str, refuse: Refusal, *,
                     names: Sequence[str] | None = None,
                     real: Sequence[str] = ()) -> np.ndarray:  # fmt: skip
    """The parameters saved as ``{name: value}``, in the order of ``names`` (by default
    ``cls.param_names``), each in the support; those in ``real`` (covariate
    coefficients) any finite number."""
    names = list(cls.param_names if names is None else names)
    check_keys(values, names, (), where, refuse)
    params = np.empty(len(names))
    for i, name in enumerate(names):
        number = finite_number(values[name])
        if name in real:
            if number is None:
                raise refuse(f"is {shown(values[name])}; a covariate coefficient is a "
                             "finite number", f"{where}[{name!r}]")  # fmt: skip
        elif number is None or not cls._in_support(number):
            raise refuse(f"is {shown(values[name])}; a parameter of {cls.__name__} is "
                         f"{cls.param_support}", f"{where}[{name!r}]")  # fmt: skip
        params[i] = number
    return params


def saved_covariance(value: Any, k: int, refuse: Refusal) -> np.ndarray:
    """The saved covariance as a (k, k) array: finite numbers, or null everywhere (what
    ``save`` writes where the fit could not estimate it), which becomes NaN."""
    if not (isinstance(value, list) and all(isinstance(row, list) for row in value)):
        raise refuse(f"is {shown(value)}, not a list of rows", "covariance")
    lengths = sorted({len(row) for row in value})
    if len(value) != k or lengths != [k]:
        columns = lengths[0] if len(lengths) == 1 else "/".join(map(str, lengths))
        raise refuse(f"has shape ({len(value)}, {columns}); {k} parameters need ({k}, {k})",
                     "covariance")  # fmt: skip
    entries = [entry for row in value for entry in row]
    if all(entry is None for entry in entries):
        return np.full((k, k), np.nan)
    numbers = [finite_number(entry) for entry in entries]
    for entry, number in zip(entries, numbers, strict=True):
        if number is None:
            raise refuse(f"has the entry {shown(entry)}; entries are finite numbers (or all "
                         "null where the fit could not estimate them)", "covariance")  # fmt: skip
    return np.array(numbers, dtype=np.float64).reshape(k, k)


def check_counts(state: dict[str, Any], refuse: Refusal, *, optional: bool) -> None:
    """``n_customers`` (a sum of weights: positive) and ``n_patterns`` (rows: a whole
    number >= 1); both may be null if ``optional``."""
    customers, patterns = state["n_customers"], state["n_patterns"]
    if not (optional and customers is None):
        number = finite_number(customers)
        if number is None or number <= 0:
            raise refuse(f"is {shown(customers)}, not a positive number", "n_customers")
    if not (optional and patterns is None) and not (is_integer(patterns) and patterns >= 1):
        raise refuse(f"is {shown(patterns)}, not a whole number >= 1", "n_patterns")


def check_time_unit(value: Any, where: str, refuse: Refusal) -> None:
    # Any text: a unit load cannot read was recorded as given, and check_time_units
    # skips it.
    if value is not None and not isinstance(value, str):
        raise refuse(f"is {shown(value)}, not a time unit such as 'W' (or null)", where)
