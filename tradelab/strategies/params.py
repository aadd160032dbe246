"""Strategy parameters: frozen dataclasses that numba sees as one float64 vector.

A strategy declares ``class Params(StrategyParams)`` with fields made by :func:`param` (default,
bounds, integer or not, one line of meaning). ``Params(...)`` validates on creation;
``to_array()`` gives the vector a kernel reads by slot (field order); ``grid(**ranges)`` the
``(n_sets, n_params)`` matrix of a sweep, validated as a whole; ``bounds()`` the sweep limits.
Every error names the strategy, the field and the allowed range.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

Constraint = tuple[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]]


def param(default: float, low: float, high: float, *, integer: bool = False, doc: str = "") -> Any:
    """A parameter field with its default, inclusive bounds ``[low, high]`` and meaning."""
    if not low <= default <= high:
        raise ValueError(f"default {default} outside its own bounds [{low}, {high}]")
    return dataclasses.field(
        default=default, metadata={"bounds": (low, high), "integer": integer, "doc": doc}
    )


@dataclasses.dataclass(frozen=True)
class StrategyParams:
    """Base of every strategy's ``Params``; subclasses only declare fields (and constraints)."""

    strategy: ClassVar[str] = "strategy"
    constraints: ClassVar[tuple[Constraint, ...]] = ()
    """Cross-field rules: ``(message, fn(columns) -> bool array of sets that pass)``."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(
                    f"{self.strategy}: {f.name} must be a number, got {type(value).__name__}"
                )
            kind = int if f.metadata["integer"] and float(value).is_integer() else float
            object.__setattr__(self, f.name, kind(value))
        type(self).validate(self.to_array()[None, :])

    # -- description --------------------------------------------------------------------------

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Field names in slot order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def slot(cls, name: str) -> int:
        """Index of field ``name`` in the parameter vector."""
        try:
            return cls.names().index(name)
        except ValueError:
            raise KeyError(f"{cls.strategy} has no parameter {name!r}; it has "
                           f"{', '.join(cls.names())}") from None

    @classmethod
    def bounds(cls) -> dict[str, tuple[float, float]]:
        """``{field: (low, high)}``, inclusive, for sweeps."""
        return {f.name: f.metadata["bounds"] for f in dataclasses.fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, float]:
        out: dict[str, float] = {}
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING:
                raise TypeError(f"{cls.strategy}: parameter {f.name} has no default")
            out[f.name] = f.default
        return out

    @classmethod
    def describe(cls) -> pd.DataFrame:
        """One row per field: default, low, high, integer, meaning."""
        rows = [
            {"name": f.name, "default": f.default, "low": f.metadata["bounds"][0],
             "high": f.metadata["bounds"][1], "integer": f.metadata["integer"],
             "doc": f.metadata["doc"]}
            for f in dataclasses.fields(cls)
        ]
        return pd.DataFrame(rows).set_index("name")

    # -- vectors ------------------------------------------------------------------------------

    def to_array(self) -> np.ndarray:
        """The float64 vector a kernel reads (field order)."""
        return np.array([float(getattr(self, n)) for n in self.names()], dtype=np.float64)

    @classmethod
    def from_array(cls, values: Iterable[float]) -> StrategyParams:
        """The ``Params`` of one row of a grid (validated)."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (len(cls.names()),):
            raise ValueError(f"{cls.strategy}: expected {len(cls.names())} values "
                             f"({', '.join(cls.names())}), got shape {arr.shape}")
        return cls(**dict(zip(cls.names(), arr.tolist())))

    @classmethod
    def grid(cls, **ranges: float | Iterable[float]) -> np.ndarray:
        """The Cartesian product of the given values (others at their defaults), one row per
        parameter set, last field varying fastest: shape ``(n_sets, n_params)``, validated."""
        unknown = sorted(set(ranges) - set(cls.names()))
        if unknown:
            raise KeyError(f"{cls.strategy} has no parameter {', '.join(map(repr, unknown))}; "
                           f"it has {', '.join(cls.names())}")
        axes = []
        for name in cls.names():
            v = ranges.get(name, cls.defaults()[name])
            vals = np.atleast_1d(np.asarray(v, dtype=np.float64)).ravel()
            if vals.size == 0:
                raise ValueError(f"{cls.strategy}: no values given for {name}")
            axes.append(vals)
        rows = np.array(list(itertools.product(*axes)), dtype=np.float64)
        return cls.validate(rows)

    @classmethod
    def validate(cls, grid: np.ndarray) -> np.ndarray:
        """Check a ``(n_sets, n_params)`` matrix (bounds, integers, constraints) and return it
        as a C-contiguous float64 array; raise ``ValueError`` naming the field otherwise."""
        arr = np.require(np.asarray(grid, dtype=np.float64), requirements=["C", "W"])
        names = cls.names()
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ValueError(f"{cls.strategy}: a parameter grid has shape (n_sets, "
                             f"{len(names)}) with columns {', '.join(names)}; got {arr.shape}")
        for j, f in enumerate(dataclasses.fields(cls)):
            col = arr[:, j]
            low, high = f.metadata["bounds"]
            bad = ~(np.isfinite(col) & (col >= low) & (col <= high))
            if f.metadata["integer"]:
                bad |= np.isfinite(col) & (col != np.round(col))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                what = "an integer in" if f.metadata["integer"] else "in"
                where = f" (parameter set {i})" if arr.shape[0] > 1 else ""
                raise ValueError(f"{cls.strategy}: {f.name}={col[i]:g}{where} must be {what} "
                                 f"[{low:g}, {high:g}]")
        cols = {n: arr[:, j] for j, n in enumerate(names)}
        for message, rule in cls.constraints:
            ok = np.asarray(rule(cols), dtype=bool)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                vals = ", ".join(f"{n}={arr[i, j]:g}" for j, n in enumerate(names))
                raise ValueError(f"{cls.strategy}: {message} (got {vals})")
        return arr

    @classmethod
    def frame(cls, grid: np.ndarray) -> pd.DataFrame:
        """A grid as a DataFrame with one column per field (integers as int64)."""
        arr = cls.validate(grid)
        df = pd.DataFrame(arr, columns=list(cls.names()))
        for f in dataclasses.fields(cls):
            if f.metadata["integer"]:
                df[f.name] = df[f.name].astype(np.int64)
        return df


def as_vector(cls: type[StrategyParams], params: StrategyParams | np.ndarray | None) -> np.ndarray:
    """A validated parameter vector from ``Params``, an array or ``None`` (the defaults)."""
    if params is None:
        params = cls()
    if isinstance(params, StrategyParams):
        if not isinstance(params, cls):
            raise TypeError(f"expected {cls.strategy} Params, got {type(params).__qualname__}")
        return params.to_array()
    return cls.validate(params)[0] if np.ndim(params) == 1 else _one_row(cls, params)


def _one_row(cls: type[StrategyParams], params: np.ndarray) -> np.ndarray:
    arr = cls.validate(params)
    if arr.shape[0] != 1:
        raise ValueError(f"{cls.strategy}: expected one parameter set, got {arr.shape[0]}")
    return arr[0]
