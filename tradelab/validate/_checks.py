"""Input checks shared by the validation modules: each error names the argument and the fix."""

from __future__ import annotations

import numbers

import numpy as np

#: scores closer than this times the largest finite |score| among those compared count as tied
TIE_RTOL = 1e-9
#: returns whose variance is below this fraction of their mean square count as constant (a
#: per-period Sharpe ratio above 10**6 is round-off, not a strategy)
FLAT_RTOL = 1e-12


def as_float_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, or a ``TypeError`` naming ``name``."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be numeric (a number or an array of numbers): {exc}"
        raise TypeError(msg) from None


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int within ``[minimum, maximum]``; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_matrix(value, name: str, min_rows: int = 1, min_cols: int = 1) -> np.ndarray:
    """A finite 2-D float64 array (rows = observations) with at least the given shape."""
    m = as_float_array(value, name)
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D (observations x configurations), got shape {m.shape}")
    if m.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {m.shape[0]}")
    if m.shape[1] < min_cols:
        raise ValueError(f"{name} needs at least {min_cols} columns, got {m.shape[1]}")
    if not np.isfinite(m).all():
        bad = np.argwhere(~np.isfinite(m))[0]
        raise ValueError(
            f"{name} holds NaN or inf (first at row {bad[0]}, column {bad[1]}); "
            "fill or drop those periods before validating"
        )
    return m


def scalar_or_array(x: np.ndarray):
    """A 0-d result as a Python float, anything else unchanged."""
    return float(x) if np.ndim(x) == 0 else x


def contiguous_blocks(n: int, k: int) -> np.ndarray:
    """``[start, stop)`` of k contiguous blocks covering ``range(n)``, sizes differing by <= 1.

    The first ``n % k`` blocks hold one extra element, as ``numpy.array_split`` does.
    """
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    stops = np.cumsum(sizes)
    return np.column_stack([stops - sizes, stops])


def tie_tolerance(scores: np.ndarray) -> np.ndarray:
    """Tie tolerance per row of a 2-D score array: TIE_RTOL x the row's largest finite |score|.

    Mathematically equal scores computed along different floating-point paths (or from
    duplicate columns) then tie, while scores meaningfully apart never do. Shape (rows, 1).
    """
    a = np.abs(scores)
    if np.isinf(a).any():
        a = np.where(np.isinf(a), 0.0, a)
    return TIE_RTOL * a.max(axis=1, keepdims=True)


def first_best(scores: np.ndarray) -> np.ndarray:
    """Per row, the lowest-numbered column whose score ties the row's maximum (see above)."""
    best = scores.max(axis=1, keepdims=True)
    return np.argmax(scores >= best - tie_tolerance(scores), axis=1)
