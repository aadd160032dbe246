"""The venue's trading accounts: API key and secret, balances per asset, fee rates, permissions.

Balances are :class:`~decimal.Decimal` and move ``free -> locked -> traded``: placing an order
locks what it may spend, a fill spends from the lock and credits the other asset less the fee,
a cancel or expiry unlocks the rest. Secrets never leave this module (not in ``repr``, logs or
responses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tradelab.errors import ConfigError
from tradelab.yamlconfig import read_yaml

DEMO_API_KEY = "tradelab-demo-api-key"
DEMO_SECRET = "tradelab-demo-secret"
DEMO_BALANCES = {"USDT": "100000", "BTC": "1", "ETH": "10"}
DEFAULT_FEE = "0.001"


class InsufficientBalance(Exception):
    """Free balance smaller than what an order needs."""


@dataclass
class Account:
    """One API key's account."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    uid: int
    maker_fee: Decimal = Decimal(DEFAULT_FEE)
    taker_fee: Decimal = Decimal(DEFAULT_FEE)
    can_trade: bool = True
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    usdm_wallet: Decimal | None = None  # USD-M futures wallet (USDT); None: the USDT balance

    def __repr__(self) -> str:
        return f"Account(uid={self.uid}, key=***)"

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked (raises :class:`InsufficientBalance`)."""
        have = self.free.get(asset, Decimal(0))
        if amount > have:
            raise InsufficientBalance(f"{asset}: need {amount}, free {have}")
        self.free[asset] = have - amount
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, Decimal(0)) - amount
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, Decimal(0)) - amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + amount

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}`` of every asset the account has held."""
        assets = set(self.free) | set(self.locked)
        return {a: (self.free.get(a, Decimal(0)), self.locked.get(a, Decimal(0)))
                for a in assets}


def _dec(value: object, what: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return d


def account_from_config(entry: Mapping, uid: int) -> Account:
    """An account from a config entry: ``{"api_key", "secret", "balances": {asset: amount},
    "maker_fee", "taker_fee", "can_trade", "usdm_wallet"}`` (fees are rates, 0.001 = 0.1 %;
    ``usdm_wallet`` is the USD-M futures wallet in USDT, by default the USDT balance)."""
    if not isinstance(entry, Mapping):
        raise ValueError("an account must be a mapping with api_key and secret")
    key, secret = entry.get("api_key"), entry.get("secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise ValueError(f"account #{uid}: api_key and secret must be non-empty strings")
    unknown = set(entry) - {"api_key", "secret", "balances", "maker_fee", "taker_fee",
                            "can_trade", "usdm_wallet"}
    if unknown:
        raise ValueError(f"account #{uid}: unknown fields {sorted(unknown)}")
    balances = entry.get("balances", {})
    if not isinstance(balances, Mapping):
        raise ValueError(f"account #{uid}: balances must map asset -> amount")
    free = {}
    for asset, amount in balances.items():
        d = _dec(amount, f"account #{uid} balance of {asset}")
        if d < 0:
            raise ValueError(f"account #{uid}: balance of {asset} is negative ({amount})")
        free[str(asset).upper()] = d
    return Account(api_key=key, secret=secret, uid=uid,
                   maker_fee=_dec(entry.get("maker_fee", DEFAULT_FEE), f"account #{uid} maker_fee"),
                   taker_fee=_dec(entry.get("taker_fee", DEFAULT_FEE), f"account #{uid} taker_fee"),
                   can_trade=bool(entry.get("can_trade", True)), free=free,
                   usdm_wallet=_wallet(entry.get("usdm_wallet"), uid))


def _wallet(value: object, uid: int) -> Decimal | None:
    if value is None:
        return None
    d = _dec(value, f"account #{uid} usdm_wallet")
    if d < 0:
        raise ValueError(f"account #{uid}: usdm_wallet is negative ({value})")
    return d


def demo_account() -> Account:
    """The built-in demo account (key :data:`DEMO_API_KEY`, secret :data:`DEMO_SECRET`)."""
    return account_from_config({"api_key": DEMO_API_KEY, "secret": DEMO_SECRET,
                                "balances": DEMO_BALANCES}, uid=1)


class Accounts:
    """The venue's accounts by API key."""

    def __init__(self, entries: Sequence[Mapping] | None = None) -> None:
        accounts = ([account_from_config(e, uid=i + 1) for i, e in enumerate(entries)]
                    if entries is not None else [demo_account()])
        self.by_key: dict[str, Account] = {}
        for acc in accounts:
            if acc.api_key in self.by_key:
                raise ValueError(f"account #{acc.uid}: duplicate api_key")
            self.by_key[acc.api_key] = acc

    def get(self, api_key: str | None) -> Account | None:
        return self.by_key.get(api_key) if api_key else None

    def by_uid(self, uid: int) -> Account | None:
        """The account with this ``uid`` (admin use: no key needed)."""
        return next((a for a in self.by_key.values() if a.uid == uid), None)


def load_accounts(path: str | Path) -> list[dict]:
    """The ``accounts:`` list of a YAML file (each entry as :func:`account_from_config` reads
    it), checked; a missing file, bad YAML or a bad entry raises ConfigError naming it."""
    path = Path(path)
    raw = read_yaml(path, "accounts file")
    entries = raw.get("accounts") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty list under 'accounts:'")
    try:
        Accounts(entries)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return entries
