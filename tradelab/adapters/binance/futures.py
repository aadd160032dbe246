"""Binance USD-M futures trading wire format (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``): order
parameters, futures error codes and texts, the JSON of orders, trades, positions, the account and
incomes, and the user-data events ``ORDER_TRADE_UPDATE`` / ``ACCOUNT_UPDATE``.

Signing, timestamps and the common error body are the spot ones (:mod:`.trading`). One-way
position mode (``positionSide`` ``BOTH``), cross margin, USDT as the only margin asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from tradelab.adapters.binance.filters import SymbolFilters
from tradelab.adapters.binance.trading import BinanceError, _decimal, fmt, missing

ORDER_TYPES = ("LIMIT", "MARKET")
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
RESP_TYPES = ("ACK", "RESULT")
MAX_LEVERAGE = 125
DEFAULT_LEVERAGE = 20
MAINT_MARGIN_RATE = Decimal("0.004")
MAX_NOTIONAL = Decimal("1000000000")
WEIGHT = {"usdm:order": 1, "usdm:cancel": 1, "usdm:getOrder": 1, "usdm:openOrders": 1,
          "usdm:cancelAll": 1, "usdm:allOrders": 5, "usdm:userTrades": 5, "usdm:account": 5,
          "usdm:balance": 5, "usdm:positionRisk": 5, "usdm:leverage": 1,
          "usdm:leverageBracket": 1, "usdm:income": 30}

MSG_MARGIN = "Margin is insufficient."
MSG_REDUCE_ONLY = "ReduceOnly Order is rejected."
MSG_POST_ONLY = ("Due to the order could not be executed as maker, the Post Only order will be "
                 "rejected. The order will not be recorded in the order history")
MSG_FOK = ("Due to the order could not be filled immediately, the FOK order has been rejected. "
           "The order will not be recorded in the order history")
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_BAD_SYMBOL = "Invalid symbol."


def margin_insufficient() -> BinanceError:
    return BinanceError(400, -2019, MSG_MARGIN)


def reduce_only_rejected() -> BinanceError:
    return BinanceError(400, -2022, MSG_REDUCE_ONLY)


def post_only_rejected() -> BinanceError:
    return BinanceError(400, -5022, MSG_POST_ONLY)


def fok_rejected() -> BinanceError:
    return BinanceError(400, -5021, MSG_FOK)


def min_notional(floor: Decimal) -> BinanceError:
    return BinanceError(400, -4164, f"Order's notional must be no smaller than {floor.normalize()}"
                                    " (unless you choose reduce only).")


def check_filters(f: SymbolFilters, price: Decimal | None, qty: Decimal, market: bool,
                  ref_price: Decimal | None, reduce_only: bool) -> None:
    """Refuse an order off the instrument's grid or below its notional floor, with the futures
    codes (-4013/-4016 price bounds, -4014 tick, -4004/-4005 quantity bounds, -4023 step, -4164
    notional; reduce-only orders are exempt from the notional floor). ``ref_price`` values a
    market order."""
    if not market:
        assert price is not None
        if f.min_price > 0 and price < f.min_price:
            raise BinanceError(400, -4013, "Price less than min price.")
        if f.max_price > 0 and price > f.max_price:
            raise BinanceError(400, -4016, f"Limit price can't be higher than "
                                           f"{f.max_price.normalize()}.")
        if f.tick_size > 0 and (price - f.min_price) % f.tick_size != 0:
            raise BinanceError(400, -4014, "Price not increased by tick size.")
    lo, hi, step = ((f.market_min_qty, f.market_max_qty, f.market_step_size) if market
                    else (f.min_qty, f.max_qty, f.step_size))
    if qty < lo:
        raise BinanceError(400, -4004, "Quantity less than or equal to zero." if qty <= 0
                           else "Quantity less than min quantity.")
    if hi > 0 and qty > hi:
        raise BinanceError(400, -4005, "Quantity greater than max quantity.")
    if step > 0 and (qty - lo) % step != 0:
        raise BinanceError(400, -4023, "Quantity not increased by step size.")
    value = price if not market else ref_price
    if not reduce_only and value is not None and value * qty < f.min_notional:
        raise min_notional(f.min_notional)


def fmt_qty(x: Decimal) -> str:
    """A quantity as USD-M writes it: at least 3 decimals, more if the amount has them."""
    exp = x.normalize().as_tuple().exponent
    return fmt(x, max(3, -exp if isinstance(exp, int) else 3))


# -- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuturesOrderRequest:
    """A parsed ``POST /fapi/v1/order``."""

    symbol: str
    side: str  # BUY | SELL
    type: str  # LIMIT | MARKET
    time_in_force: str  # GTC | IOC | FOK | GTX ("GTC" for MARKET: unused)
    quantity: Decimal
    price: Decimal | None
    reduce_only: bool
    client_id: str | None
    resp_type: str  # ACK | RESULT


def _bool(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise BinanceError(400, -1130, f"Data sent for parameter '{name}' is not valid.")
    return raw == "true"


def parse_order(params: Mapping[str, str]) -> FuturesOrderRequest:
    """The order a ``POST /fapi/v1/order`` asks for (LIMIT or MARKET, one-way mode)."""
    for name in ("symbol", "side", "type"):
        if not params.get(name):
            raise missing(name)
    side, otype = params["side"].upper(), params["type"].upper()
    if side not in ("BUY", "SELL"):
        raise BinanceError(400, -1117, "Invalid side.")
    if otype not in ORDER_TYPES:
        raise BinanceError(400, -1116, "Invalid orderType.")
    if params.get("positionSide", "BOTH").upper() != "BOTH":
        raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
    qty, price = _decimal(params, "quantity"), _decimal(params, "price")
    if qty is None:
        raise missing("quantity")
    tif = params.get("timeInForce", "").upper()
    if otype == "LIMIT":
        if not tif:
            raise missing("timeInForce")
        if tif not in TIME_IN_FORCE:
            raise BinanceError(400, -1115, "Invalid timeInForce.")
        if price is None:
            raise missing("price")
    elif price is not None:
        raise BinanceError(400, -1106, "Parameter 'price' sent when not required.")
    resp = params.get("newOrderRespType", "ACK").upper()
    if resp not in RESP_TYPES:
        raise BinanceError(400, -1177, "Invalid newOrderRespType.")
    cid = params.get("newClientOrderId") or None
    if cid is not None and len(cid) > 36:
        raise BinanceError(400, -4015, "Client order id is not valid.")
    return FuturesOrderRequest(params["symbol"].upper(), side, otype, tif or "GTC", qty, price,
                               _bool(params, "reduceOnly"), cid, resp)


def parse_leverage(params: Mapping[str, str]) -> int:
    """The ``leverage`` of a ``POST /fapi/v1/leverage`` (1..125, -4028 otherwise)."""
    raw = params.get("leverage")
    if not raw:
        raise missing("leverage")
    try:
        lev = int(raw)
    except ValueError:
        raise BinanceError(400, -4028, f"Leverage {raw} is not valid") from None
    if not 1 <= lev <= MAX_LEVERAGE:
        raise BinanceError(400, -4028, f"Leverage {lev} is not valid")
    return lev


# -- responses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuturesOrderView:
    """What the wire shows of a futures order."""

    symbol: str
    order_id: int
    client_id: str
    price: Decimal
    avg_price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cum_quote: Decimal
    status: str
    time_in_force: str
    type: str
    side: str
    reduce_only: bool
    time_ms: int
    update_ms: int


def order(o: FuturesOrderView, with_time: bool = True) -> dict:
    """An order as ``GET /fapi/v1/order`` writes it (``POST`` and ``DELETE`` omit ``time``)."""
    out = {"orderId": o.order_id, "symbol": o.symbol, "status": o.status,
           "clientOrderId": o.client_id, "price": fmt(o.price), "avgPrice": fmt(o.avg_price),
           "origQty": fmt_qty(o.orig_qty), "executedQty": fmt_qty(o.executed_qty),
           "cumQty": fmt_qty(o.executed_qty), "cumQuote": fmt(o.cum_quote),
           "timeInForce": o.time_in_force, "type": o.type, "reduceOnly": o.reduce_only,
           "closePosition": False, "side": o.side, "positionSide": "BOTH", "stopPrice": "0",
           "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type,
           "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
           "updateTime": o.update_ms}
    if with_time:
        out["time"] = o.time_ms
    return out


@dataclass(frozen=True)
class UserTradeView:
    """One of the account's futures trades."""

    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time_ms: int


def user_trade(t: UserTradeView) -> dict:
    """``GET /fapi/v1/userTrades`` entry."""
    return {"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "side": t.side,
            "price": fmt(t.price), "qty": fmt_qty(t.qty), "realizedPnl": fmt(t.realized_pnl),
            "quoteQty": fmt(t.price * t.qty), "commission": fmt(t.commission),
            "commissionAsset": "USDT", "time": t.time_ms, "positionSide": "BOTH",
            "buyer": t.side == "BUY", "maker": t.maker}


@dataclass(frozen=True)
class PositionView:
    """One symbol's position with its margin figures."""

    symbol: str
    amount: Decimal
    entry: Decimal
    mark: Decimal
    unrealized: Decimal
    leverage: int
    position_margin: Decimal
    order_margin: Decimal
    bid_notional: Decimal
    ask_notional: Decimal
    update_ms: int
    cum_realized: Decimal = Decimal(0)  # realized PnL of the symbol so far (before fees)

    @property
    def notional(self) -> Decimal:
        return self.amount * self.mark


def position_risk(p: PositionView, version: int) -> dict:
    """``GET /fapi/v2|v3/positionRisk`` entry (no liquidation engine: liquidationPrice 0)."""
    common = {"symbol": p.symbol, "positionSide": "BOTH", "positionAmt": fmt_qty(p.amount),
              "entryPrice": fmt(p.entry), "breakEvenPrice": fmt(p.entry),
              "markPrice": fmt(p.mark), "unRealizedProfit": fmt(p.unrealized),
              "liquidationPrice": "0", "isolatedMargin": "0", "notional": fmt(p.notional),
              "isolatedWallet": "0", "updateTime": p.update_ms}
    if version == 2:
        return {**common, "leverage": str(p.leverage), "maxNotionalValue": fmt(MAX_NOTIONAL, 0),
                "marginType": "cross", "isAutoAddMargin": "false"}
    return {**common, "marginAsset": "USDT",
            "initialMargin": fmt(p.position_margin + p.order_margin),
            "maintMargin": fmt(abs(p.notional) * MAINT_MARGIN_RATE),
            "positionInitialMargin": fmt(p.position_margin),
            "openOrderInitialMargin": fmt(p.order_margin), "adl": 0,
            "bidNotional": fmt(p.bid_notional), "askNotional": fmt(p.ask_notional)}


@dataclass(frozen=True)
class AccountView:
    """The USDT margin figures of an account and its positions."""

    wallet: Decimal
    unrealized: Decimal
    position_margin: Decimal
    order_margin: Decimal
    available: Decimal
    positions: list[PositionView]
    can_trade: bool
    update_ms: int

    @property
    def margin_balance(self) -> Decimal:
        return self.wallet + self.unrealized

    @property
    def maint_margin(self) -> Decimal:
        return sum((abs(p.notional) for p in self.positions), Decimal(0)) * MAINT_MARGIN_RATE


def account(a: AccountView, version: int) -> dict:
    """``GET /fapi/v2|v3/account``."""
    im = a.position_margin + a.order_margin
    withdraw = max(Decimal(0), min(a.available, a.wallet))
    asset = {"asset": "USDT", "walletBalance": fmt(a.wallet),
             "unrealizedProfit": fmt(a.unrealized), "marginBalance": fmt(a.margin_balance),
             "maintMargin": fmt(a.maint_margin), "initialMargin": fmt(im),
             "positionInitialMargin": fmt(a.position_margin),
             "openOrderInitialMargin": fmt(a.order_margin), "crossWalletBalance": fmt(a.wallet),
             "crossUnPnl": fmt(a.unrealized), "availableBalance": fmt(a.available),
             "maxWithdrawAmount": fmt(withdraw), "marginAvailable": True,
             "updateTime": a.update_ms}
    positions = []
    for p in a.positions:
        row: dict[str, object] = {
            "symbol": p.symbol, "positionSide": "BOTH", "positionAmt": fmt_qty(p.amount),
            "unrealizedProfit": fmt(p.unrealized), "isolatedMargin": "0",
            "notional": fmt(p.notional), "isolatedWallet": "0",
            "initialMargin": fmt(p.position_margin + p.order_margin),
            "maintMargin": fmt(abs(p.notional) * MAINT_MARGIN_RATE),
            "updateTime": p.update_ms}
        if version == 2:
            row.update({"leverage": str(p.leverage), "entryPrice": fmt(p.entry),
                        "breakEvenPrice": fmt(p.entry), "maxNotional": fmt(MAX_NOTIONAL, 0),
                        "isolated": False, "positionInitialMargin": fmt(p.position_margin),
                        "openOrderInitialMargin": fmt(p.order_margin),
                        "bidNotional": fmt(p.bid_notional), "askNotional": fmt(p.ask_notional)})
        positions.append(row)
    out: dict[str, object] = {
        "totalInitialMargin": fmt(im), "totalMaintMargin": fmt(a.maint_margin),
        "totalWalletBalance": fmt(a.wallet), "totalUnrealizedProfit": fmt(a.unrealized),
        "totalMarginBalance": fmt(a.margin_balance),
        "totalPositionInitialMargin": fmt(a.position_margin),
        "totalOpenOrderInitialMargin": fmt(a.order_margin),
        "totalCrossWalletBalance": fmt(a.wallet), "totalCrossUnPnl": fmt(a.unrealized),
        "availableBalance": fmt(a.available), "maxWithdrawAmount": fmt(withdraw),
        "assets": [asset], "positions": positions}
    if version == 2:
        out = {"feeTier": 0, "canTrade": a.can_trade, "canDeposit": False,
               "canWithdraw": False, "feeBurn": False, "tradeGroupId": -1,
               "updateTime": 0, "multiAssetsMargin": False, **out}
    return out


def balance(a: AccountView, uid: int) -> list[dict]:
    """``GET /fapi/v2/balance``."""
    return [{"accountAlias": f"venue{uid}", "asset": "USDT", "balance": fmt(a.wallet),
             "crossWalletBalance": fmt(a.wallet), "crossUnPnl": fmt(a.unrealized),
             "availableBalance": fmt(a.available),
             "maxWithdrawAmount": fmt(max(Decimal(0), min(a.available, a.wallet))),
             "marginAvailable": True, "updateTime": a.update_ms}]


def leverage_response(symbol: str, lev: int) -> dict:
    return {"leverage": lev, "maxNotionalValue": fmt(MAX_NOTIONAL, 0), "symbol": symbol}


def leverage_brackets(symbols: list[str]) -> list[dict]:
    """``GET /fapi/v1/leverageBracket``: one bracket per symbol (the venue's single tier)."""
    return [{"symbol": s, "brackets": [
        {"bracket": 1, "initialLeverage": MAX_LEVERAGE, "notionalCap": int(MAX_NOTIONAL),
         "notionalFloor": 0, "maintMarginRatio": float(MAINT_MARGIN_RATE), "cum": 0.0}]}
        for s in symbols]


@dataclass(frozen=True)
class IncomeView:
    """One income record: REALIZED_PNL, COMMISSION or FUNDING_FEE (USDT)."""

    tran_id: int
    symbol: str
    kind: str
    amount: Decimal
    time_ms: int
    trade_id: int | None


def income(i: IncomeView) -> dict:
    """``GET /fapi/v1/income`` entry."""
    return {"symbol": i.symbol, "incomeType": i.kind, "income": fmt(i.amount), "asset": "USDT",
            "info": i.kind, "time": i.time_ms, "tranId": i.tran_id,
            "tradeId": "" if i.trade_id is None else str(i.trade_id)}


# -- user-data events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionView:
    """One execution report of a futures order: what happened (``x``) and the order after it."""

    order: FuturesOrderView
    exec_type: str  # NEW | TRADE | CANCELED | EXPIRED
    last_qty: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    trade_id: int = 0
    maker: bool = False
    realized_pnl: Decimal = Decimal(0)
    bid_notional: Decimal = Decimal(0)
    ask_notional: Decimal = Decimal(0)


def order_trade_update(x: ExecutionView, event_ms: int) -> dict:
    """The ``ORDER_TRADE_UPDATE`` user-data event."""
    o = x.order
    body = {"s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": o.time_in_force,
            "q": fmt_qty(o.orig_qty), "p": fmt(o.price), "ap": fmt(o.avg_price), "sp": "0",
            "x": x.exec_type, "X": o.status, "i": o.order_id, "l": fmt_qty(x.last_qty),
            "z": fmt_qty(o.executed_qty), "L": fmt(x.last_price), "T": o.update_ms,
            "t": x.trade_id, "b": fmt(x.bid_notional), "a": fmt(x.ask_notional),
            "m": x.maker, "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": o.type,
            "ps": "BOTH", "cp": False, "rp": fmt(x.realized_pnl), "pP": False, "si": 0,
            "ss": 0, "V": "EXPIRE_MAKER", "pm": "NONE", "gtd": 0}
    if x.exec_type == "TRADE":
        body.update({"N": "USDT", "n": fmt(x.commission)})
    return {"e": "ORDER_TRADE_UPDATE", "E": event_ms, "T": o.update_ms, "o": body}


def account_update(reason: str, wallet: Decimal, balance_change: Decimal,
                   positions: list[PositionView], event_ms: int, tx_ms: int) -> dict:
    """The ``ACCOUNT_UPDATE`` user-data event (reason ``ORDER`` or ``FUNDING_FEE``)."""
    return {"e": "ACCOUNT_UPDATE", "E": event_ms, "T": tx_ms, "a": {
        "m": reason,
        "B": [{"a": "USDT", "wb": fmt(wallet), "cw": fmt(wallet), "bc": fmt(balance_change)}],
        "P": [{"s": p.symbol, "pa": fmt_qty(p.amount), "ep": fmt(p.entry), "bep": fmt(p.entry),
               "cr": fmt(p.cum_realized), "up": fmt(p.unrealized), "mt": "cross", "iw": "0",
               "ps": "BOTH"}
              for p in positions]}}
