"""Alerts: stale feed, drawdown and reject bursts, to the log and optionally a webhook or a
Telegram bot.

Each alert kind has a cooldown, so a flapping condition does not flood anyone. Delivery runs in
the background with a timeout; a failed delivery is logged and counted, never raised into the
runner's loop. The Telegram bot token is a secret: it is read from the environment
(``TRADELAB_TELEGRAM_TOKEN``) and never logged (URLs are logged without it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter, deque
from dataclasses import dataclass

import aiohttp

log = logging.getLogger("tradelab.live.alerts")
NS = 1_000_000_000
TELEGRAM_API = "https://api.telegram.org"


@dataclass(frozen=True)
class AlertConfig:
    """Where alerts go and when the rules fire."""

    webhook_url: str | None = None
    telegram_chat_id: str | None = None
    telegram_api: str = TELEGRAM_API  # a local server in tests
    cooldown_s: float = 60.0
    reject_burst: int = 5  # rejects ...
    reject_window_s: float = 10.0  # ... within this window
    drawdown_pct: float = 0.02  # of peak equity
    timeout_s: float = 5.0


class Alerter:
    """Raises alerts from the runner's events and delivers them."""

    def __init__(self, cfg: AlertConfig, run_id: str) -> None:
        self.cfg = cfg
        self.run_id = run_id
        self.token = os.environ.get("TRADELAB_TELEGRAM_TOKEN")
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.raised: list[tuple[int, str, str]] = []
        self._last: dict[str, int] = {}
        self._rejects: deque[int] = deque()
        self._peak = 0.0
        self._tasks: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- rules -------------------------------------------------------------------------------

    def on_reject(self, now_ns: int, symbol: str, why: str) -> bool:
        """An order was rejected; a burst raises ``reject_burst``."""
        self._rejects.append(now_ns)
        while self._rejects and self._rejects[0] < now_ns - self.cfg.reject_window_s * NS:
            self._rejects.popleft()
        if len(self._rejects) >= self.cfg.reject_burst:
            return self.alert(now_ns, "reject_burst",
                              f"{len(self._rejects)} rejects in {self.cfg.reject_window_s:g} s "
                              f"(last: {symbol} {why})")
        return False

    def on_stale(self, now_ns: int, detail: str) -> bool:
        return self.alert(now_ns, "stale_feed", detail)

    def on_equity(self, now_ns: int, equity: float) -> bool:
        """Drawdown from the run's peak equity beyond ``drawdown_pct`` raises ``drawdown``."""
        self._peak = max(self._peak, equity)
        if self._peak > 0 and 1 - equity / self._peak > self.cfg.drawdown_pct:
            dd = 1 - equity / self._peak
            return self.alert(now_ns, "drawdown", f"drawdown {dd:.2%} from the run's peak "
                                                  f"{self._peak:.2f}")
        return False

    # -- delivery ----------------------------------------------------------------------------

    def alert(self, now_ns: int, kind: str, message: str) -> bool:
        """Raise an alert (False if the kind is cooling down)."""
        last = self._last.get(kind)
        if last is not None and now_ns - last < self.cfg.cooldown_s * NS:
            return False
        self._last[kind] = now_ns
        self.raised.append((now_ns, kind, message))
        log.warning("ALERT %s [%s]: %s", kind, self.run_id, message)
        text = f"tradelab {self.run_id}: {kind}: {message}"
        if self.cfg.webhook_url:
            self._spawn(kind, self.cfg.webhook_url, self.cfg.webhook_url,
                        {"run_id": self.run_id, "kind": kind, "message": message,
                         "ts_ns": now_ns})
        if self.token and self.cfg.telegram_chat_id:
            url = f"{self.cfg.telegram_api}/bot{self.token}/sendMessage"
            shown = f"{self.cfg.telegram_api}/bot<token>/sendMessage"
            self._spawn(kind, url, shown, {"chat_id": self.cfg.telegram_chat_id, "text": text})
        return True

    def _spawn(self, kind: str, url: str, shown: str, body: dict) -> None:
        task = asyncio.get_running_loop().create_task(self._post(kind, url, shown, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, kind: str, url: str, shown: str, body: dict) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.cfg.timeout_s))
        try:
            async with self._session.post(url, json=body) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"HTTP {resp.status}")
            self.sent[kind] += 1
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            self.failed[kind] += 1
            log.error("alert %s could not be delivered to %s: %s", kind, shown,
                      str(exc).replace(self.token or "\0", "<token>"))

    async def close(self) -> None:
        """Wait for deliveries in flight (up to their timeout), then close the session."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["AlertConfig", "Alerter"]
