"""Binance's rules for chaining depth diffs (``U`` first id, ``u`` last id, ``pu`` previous ``u``)
onto a REST snapshot (``lastUpdateId``).

- A diff is *before* a snapshot when it holds nothing newer: spot ``u <= lastUpdateId``, USD-M
  ``u < lastUpdateId``; it is dropped.
- The first diff applied must *straddle* the snapshot id: spot ``U <= lastUpdateId + 1 <= u``,
  USD-M ``U <= lastUpdateId <= u``.
- After that every diff must *continue* the last one applied: spot ``U == last_u + 1``, USD-M
  ``pu == last_u``. Anything else is a gap: the book is out of sync until a new snapshot.

The functions take a diff payload (``U``, ``u``, ``pu`` as Binance sends them) and a market,
``spot`` or ``usdm``; they hold no state.
"""

from __future__ import annotations


def is_before(market: str, diff: dict, snapshot_id: int) -> bool:
    """Whether ``diff`` holds no update newer than ``snapshot_id`` (drop it)."""
    if market == "usdm":
        return diff["u"] < snapshot_id
    return diff["u"] <= snapshot_id


def straddles(market: str, diff: dict, snapshot_id: int) -> bool:
    """Whether ``diff`` is the first one to apply on top of snapshot ``snapshot_id``."""
    if market == "usdm":
        return diff["U"] <= snapshot_id <= diff["u"]
    return diff["U"] <= snapshot_id + 1 <= diff["u"]


def expected_next(market: str, diff: dict, last_u: int) -> tuple[bool, int, int]:
    """``(continues, expected id, id found)`` for ``diff`` after the last applied ``last_u``
    (USD-M compares ``pu`` with ``last_u``, spot ``U`` with ``last_u + 1``)."""
    if market == "usdm":
        got = diff.get("pu")
        return got == last_u, last_u, got  # type: ignore[return-value]
    return diff["U"] == last_u + 1, last_u + 1, diff["U"]


def continues(market: str, diff: dict, last_u: int) -> bool:
    """Whether ``diff`` follows the last applied update ``last_u`` without a gap."""
    return expected_next(market, diff, last_u)[0]


def prev_update_id(diff: dict) -> int:
    """The update id the diff follows: ``pu`` (USD-M) or ``U - 1`` (spot)."""
    return diff["pu"] if "pu" in diff else diff["U"] - 1


def resumes_after(market: str, diff: dict, stored_u: int) -> int | None:
    """The ``last_u`` to continue from when ``diff`` picks up a stream whose last stored update
    is ``stored_u`` (USD-M: ``pu == stored_u``; spot: the diff straddles ``stored_u + 1``), or
    None when it does not continue it."""
    if market == "usdm":
        return stored_u if diff["pu"] == stored_u else None
    return diff["U"] - 1 if diff["U"] <= stored_u + 1 <= diff["u"] else None
