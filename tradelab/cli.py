"""The ``tradelab`` command: one entry point, one sub-command per job.

Every sub-command that touches the store takes ``--store DIR`` (default ``data/parquet``, or
``$TRADELAB_STORE``). Errors in input or configuration print one clear line naming the problem
and exit non-zero; nothing stored is changed by a command that failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from tradelab.errors import ImportFailed, StoreError, TradelabError
from tradelab.report.console import print_quality, print_sweep, print_walkforward

app = typer.Typer(
    help="tradelab: collect crypto market data into a Parquet store, query it with DuckDB, "
    "research and validate strategies, and run them on paper or testnet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(
    help="Import recorded or downloaded market data into the store.", no_args_is_help=True
)
app.add_typer(import_app, name="import")

_WIDTH = None if sys.stdout.isatty() else 140  # readable tables in logs and CI output
console = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)
log = logging.getLogger("tradelab")

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="TRADELAB_STORE",
        show_envvar=True,
        help="Store root directory [default: data/parquet].",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on the Dask cluster whose scheduler is at tcp://HOST:PORT [default: the "
        "config's compute.scheduler, else this machine].",
    ),
]
DaskLocalOpt = Annotated[
    int | None,
    typer.Option(
        "--dask-local",
        min=1,
        help="Start a Dask LocalCluster of N worker processes here and run on it.",
    ),
]


@contextmanager
def _backend(compute, scheduler: str | None, dask_local: int | None, workers: int):
    """The Dask backend the options or the config ask for (its address and dashboard printed),
    or None: the command's own local default."""
    from tradelab.compute import ComputeConfig, open_backend

    chosen = (compute or ComputeConfig()).with_cli(scheduler, dask_local)
    if not chosen.distributed:
        yield None
        return
    try:
        opened = open_backend(chosen, workers)
        backend = opened.__enter__()
    except ConnectionError as exc:
        raise TradelabError(str(exc)) from None
    try:
        err.print(f"compute: {backend.describe()}", highlight=False)
        yield backend
    finally:
        opened.__exit__(None, None, None)


@contextmanager
def cli_errors():
    """Turn known errors into one red line and exit code 1 (2 for bad arguments)."""
    try:
        yield
    except (TradelabError, FileNotFoundError, PermissionError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _print_import(reports, run, manifest: Path, as_json: bool) -> int:
    """Summary of an import run; returns the exit code."""
    files = [r.as_dict() for r in reports]
    failed = [r for r in reports if r.status == "failed"]
    if as_json:
        console.print_json(
            json.dumps(
                {"run_id": run.run_id, "manifest": str(manifest), "files": files}, default=str
            )
        )
    else:
        tbl = Table(title=f"import {run.kind} (run {run.run_id})", show_lines=False)
        for col in (
            "file",
            "status",
            "exchange",
            "symbols",
            "lines",
            "rows",
            "skipped",
            "rejected",
            "gaps",
            "sec",
        ):
            tbl.add_column(col, overflow="fold")
        for r in reports:
            style = {"failed": "red", "skipped": "yellow"}.get(r.status, "")
            tbl.add_row(
                Path(r.path).name,
                f"[{style}]{r.status}[/]" if style else r.status,
                r.exchange or "",
                ",".join(r.symbols),
                f"{r.lines:,}",
                " ".join(f"{k}={v:,}" for k, v in sorted(r.rows.items())),
                " ".join(f"{k}={v:,}" for k, v in sorted(r.skipped.items())),
                f"{r.n_rejects:,}",
                str(r.gaps),
                f"{r.elapsed_s:.2f}",
            )
        console.print(tbl)
        for r in reports:
            if r.detail:
                (err if r.status == "failed" else console).print(
                    f"[{'red' if r.status == 'failed' else 'yellow'}]{Path(r.path).name}:[/] "
                    f"{r.detail}"
                )
            for reason, n in r.rejects.items():
                err.print(f"[yellow]{Path(r.path).name}: {n:,} rejected: {reason}[/]")
            if r.book_unsynced:
                err.print(
                    f"[yellow]{Path(r.path).name}: the book of {', '.join(r.book_unsynced)} "
                    "never synced (no snapshot in the file, and the stored book does not end "
                    "where its diffs begin): its deltas were not stored and the file does not "
                    "count as imported; import it again once the recording before it is "
                    "stored[/]"
                )
        if run.reject_path.exists():
            err.print(f"rejected lines with reasons: {run.reject_path}")
        console.print(f"manifest: {manifest}")
    if failed and len(failed) == len(reports):
        return 1
    return 3 if failed else 0


def _known_market(value: str | None) -> str | None:
    """A bad ``--market`` is a usage error (exit 2), found before the store is touched."""
    from tradelab.collect.importers.binance_ws import MARKETS

    if value is not None and value not in MARKETS:
        raise typer.BadParameter(f"unknown market {value!r}: use spot or usdm")
    return value


@import_app.command("binance-ws")
def import_binance_ws(
    files: Annotated[
        list[Path], typer.Argument(help="Recordings: '<recv ns> <json>' lines, gzip or plain.")
    ],
    market: Annotated[
        str | None,
        typer.Option(help="spot or usdm; detected from the messages when omitted.",
                     callback=_known_market),
    ] = None,
    store: StoreOpt = None,
    force: Annotated[bool, typer.Option(help="Import files even if already imported.")] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 if any line was rejected.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import raw Binance websocket recordings (depth diffs, snapshot, trades, bookTicker).

    The book is synced the Binance way (snapshot, then diffs by U/u, pu on USD-M); a sequence
    break is recorded as a gap and deltas resume after the next snapshot. Several files are read
    as one recording in time order; each file is committed on its own, and a failed file
    breaks the chain (the next file's diffs wait for a snapshot, with a gap recorded). A line
    with a bad value is rejected (with its line number); a line of the other market refuses the
    file. Exit codes: 0 all imported, 1 nothing imported, 2 bad arguments, 3 some
    files failed.
    """
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.binance_ws import BinanceWsImporter

    with cli_errors():
        run = ImportRun("binance-ws", store, {"files": [str(f) for f in files], "market": market})
        with _progress() as prog:
            tasks: dict[str, TaskID] = {}

            def progress(path: str, done: int, total: int) -> None:
                if path not in tasks:
                    tasks[path] = prog.add_task(Path(path).name, total=total)
                prog.update(tasks[path], completed=done)

            reports = BinanceWsImporter(run, market, force=force, progress=progress).import_files(
                files
            )
        manifest = run.finish()
    code = _print_import(reports, run, manifest, as_json)
    if strict and any(r.n_rejects for r in reports):
        code = code or 1
    raise typer.Exit(code)


@import_app.command("freqtrade")
def import_freqtrade(
    directory: Annotated[
        Path,
        typer.Argument(help="freqtrade data folder (searched recursively) or one .feather file."),
    ],
    exchange: Annotated[
        str,
        typer.Option(
            help="Exchange the data came from, cryptofeed name "
            "(futures files go to its futures venue)."
        ),
    ],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import freqtrade feather files: OHLCV of any timeframe, -funding_rate, -mark, trades.

    Spot (BTC_USDT-1m.feather) and futures (BTC_USDT_USDT-1m-futures.feather) naming are both
    understood. Re-running skips rows already stored. A file with other columns is refused with
    a message naming it; bad rows are rejected with their row number.
    """
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.freqtrade import FreqtradeImporter

    with cli_errors():
        run = ImportRun("freqtrade", store, {"directory": str(directory), "exchange": exchange})
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} files"),
            console=err,
            transient=True,
        ) as prog:
            task = prog.add_task("freqtrade", total=None)

            def progress(path: str, done: int, total: int) -> None:
                prog.update(
                    task, completed=done, total=total, description=Path(path).name or "done"
                )

            reports = FreqtradeImporter(run, exchange.upper(), progress).import_dir(directory)
        manifest = run.finish()
    raise typer.Exit(_print_import(reports, run, manifest, as_json))


@import_app.command("cryptofeed-capture")
def import_cryptofeed_capture(
    files: Annotated[list[Path], typer.Argument(help="cryptofeed recorder captures "
                                                     "(*.jsonl.zst).")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import cryptofeed's raw captures (Binance, Binance USD-M, Bybit, OKX) through the
    exchange's own cryptofeed parser and the collector's rows, as a live run would store them."""
    from tradelab.collect.importers.base import ImportRun
    from tradelab.collect.importers.cryptofeed_capture import import_captures

    with cli_errors():
        for f in files:
            if not f.is_file():
                raise ImportFailed(f"no such file: {f}")
        run = ImportRun("cryptofeed-capture", store, {"files": [str(f) for f in files]})
        reports = import_captures(files, run)
        manifest = run.finish()
    raise typer.Exit(_print_import(reports, run, manifest, as_json))


@app.command()
def quality(
    exchange: Annotated[str | None, typer.Option(help="Only this exchange.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
    date: Annotated[str | None, typer.Option(help="Only this UTC date (YYYY-MM-DD).")] = None,
    table: Annotated[list[str] | None, typer.Option(help="Only these tables (repeatable).")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every partition, not only those with issues.")
    ] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Data-quality report per partition: counts, span, gaps and resyncs, crossed books,
    out-of-order and duplicate rows, negative latency, OHLCV gaps, funding jitter, rejects."""
    from tradelab.store.quality import quality_report

    with cli_errors():
        report = quality_report(store, exchange, symbol, date, table)
    if as_json:
        console.print_json(json.dumps(report, default=str))
        return
    print_quality(report, show_all, console=console)


@app.command()
def bars(
    exchange: Annotated[str, typer.Argument(help="e.g. BINANCE")],
    symbol: Annotated[str, typer.Argument(help="e.g. BTC-USDT")],
    interval: Annotated[str, typer.Argument(help="1s .. 1d, e.g. 1m, 15m, 4h")],
    start: Annotated[str | None, typer.Option(help="UTC start (inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="UTC end (exclusive).")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write all bars to this CSV file.")] = None,
    store: StoreOpt = None,
) -> None:
    """OHLCV bars from stored candles, or aggregated from finer candles or from trades."""
    from tradelab.store.catalog import Catalog

    with cli_errors():
        df = Catalog(store).bars(exchange, symbol, interval, start, end)
    if csv:
        with cli_errors():
            try:
                csv.parent.mkdir(parents=True, exist_ok=True)
                df.to_csv(csv)
            except OSError as exc:
                raise StoreError(f"cannot write {csv}: {exc.strerror or exc}") from None
        console.print(f"{len(df):,} bars written to {csv}")
        return
    console.print(f"{len(df):,} bars of {interval} from {df.attrs.get('source')}")
    console.print(df.drop(columns=["ts"]).to_string(max_rows=20))


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(
            help="SQL over the views trades, book, bbo, funding, "
            "open_interest, ohlcv, quality_events."
        ),
    ],
    store: StoreOpt = None,
    max_rows: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Run SQL against the store through DuckDB (partition columns: exchange, symbol, date)."""
    from tradelab.store.catalog import Catalog

    with cli_errors():
        df = Catalog(store).sql(query)
    console.print(df.to_string(max_rows=max_rows))


@app.command("ls")
def list_store(
    table: Annotated[str | None, typer.Option(help="Only this table.")] = None,
    store: StoreOpt = None,
) -> None:
    """What the store holds: per table, exchange and symbol, the dates, files and size."""
    from tradelab.store.catalog import Catalog

    with cli_errors():
        parts = Catalog(store).partitions(table)
    if parts.empty:
        console.print("the store is empty")
        return
    g = parts.groupby(["table", "exchange", "symbol"]).agg(
        first=("date", "min"),
        last=("date", "max"),
        days=("date", "count"),
        files=("files", "sum"),
        mb=("bytes", lambda b: round(b.sum() / 1e6, 2)),
    )
    console.print(g.to_string())


@app.command()
def venue(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Recordings to replay ('<recv ns> <json>' lines, gzip or plain).")] = None,
    replay: Annotated[bool, typer.Option("--replay", help="Replay the FILES (recordings of "
                                                           "different markets play together, "
                                                           "merged by time).")] = False,
    synthetic: Annotated[bool, typer.Option(help="Serve a synthetic zero-intelligence order "
                                                 "flow instead of recordings.")] = False,
    symbols: Annotated[str, typer.Option(help="Synthetic: comma-separated raw symbols, "
                                              "e.g. BTCUSDT,ETHUSDT.")] = "BTCUSDT",
    market: Annotated[str, typer.Option(help="Synthetic: spot or usdm (or both: "
                                             "spot,usdm).")] = "spot,usdm",
    seed: Annotated[int, typer.Option(help="Synthetic: random seed.")] = 7,
    speed: Annotated[float, typer.Option(help="Replay speed: 1 real time, 10 ten times "
                                              "faster, 0 as fast as clients read.")] = 1.0,
    port: Annotated[int, typer.Option(help="Plain HTTP/ws port on 127.0.0.1.")] = 9080,
    tls_port: Annotated[int | None, typer.Option(help="TLS (https/wss) port [default: "
                                                      "port + 1].")] = None,
    history: Annotated[Path | None, typer.Option(help="freqtrade folder whose candles and "
                                                      "funding the REST API serves.")] = None,
    synth_history_days: Annotated[float, typer.Option(
        help="Serve this many days of synthetic candles/funding history (for backfill).")] = 0.0,
    wait_clients: Annotated[int, typer.Option(help="Start the replay once this many clients "
                                                   "have subscribed.")] = 1,
    exit_at_end: Annotated[bool, typer.Option(help="Stop when the replay ends (default: keep "
                                                   "serving REST).")] = False,
    rate_limit: Annotated[int, typer.Option(help="REST request weight per minute before "
                                                 "429s.")] = 6000,
    slow_client: Annotated[str | None, typer.Option(
        help="A client that cannot keep up: 'disconnect' drops it (close 1008) as Binance "
             "does, without slowing anyone else; 'wait' slows the replay to it. [default: "
             "disconnect, or wait with --speed 0]")] = None,
    accounts: Annotated[Path | None, typer.Option(
        help="YAML file of trading accounts (api_key, secret, balances, maker_fee, taker_fee, "
             "can_trade) [default: the built-in demo account].")] = None,
    latency: Annotated[str | None, typer.Option(
        help="Order latency on the venue clock: ENTRY_MS[/RESPONSE_MS], or a YAML file with "
             "the backtest config's latency: block (constant, per_action, or table: a CSV of "
             "req_ts,exch_ts,resp_ts ns) [default: 0].")] = None,
    queue_model: Annotated[str, typer.Option(
        help="Queue-position model of resting orders: risk_averse, power, power2, power3, "
             "log, log2 (as the event backtester's queue.model).")] = "risk_averse",
    queue_n: Annotated[float, typer.Option(help="Exponent of the power queue models.")] = 2.0,
    journal: Annotated[Path | None, typer.Option(
        help="Keep the trading state (orders, fills, balances, id counters) in this journal "
             "file: it survives a restart of the venue [default: off, state lives in "
             "memory].")] = None,
) -> None:
    """A local exchange on 127.0.0.1 speaking the Binance spot and USD-M protocol.

    REST: /api/v3 and /fapi/v1 (exchangeInfo, depth, klines, aggTrades, premiumIndex,
    fundingRate, openInterest); signed spot trading on /api/v3 (order, order/test, openOrders,
    allOrders, account, myTrades). Websockets: /spot/stream?streams=... and
    /usdm/stream?streams=... (also /ws and SUBSCRIBE), plain and TLS. Faults: POST
    /venue/fault {"kind": "drop_diff" | "disconnect" | "stall" | "malformed" | "rate_limit" |
    "reject_orders" | "delay_ack" | "drop_exec_report" | "order_5xx" |
    "disconnect_user_stream", "symbol": "BTCUSDT", "count": 1, "seconds": 2}. Orders take
    effect after --latency on the venue clock (the exchange time of the stream; see README
    "Trading on the local venue"); --journal keeps the trading state across restarts.
    """
    import asyncio

    from tradelab.venue.run import run_venue

    with cli_errors():
        if not (replay or files or synthetic or history or synth_history_days):
            raise ValueError("nothing to serve: pass --replay FILE..., --synthetic, --history "
                             "DIR or --synth-history-days N")
        from tradelab.matching.types import QUEUE_MODELS

        if queue_model not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {queue_model!r}: use one of "
                             f"{', '.join(QUEUE_MODELS)}")
        if (replay or files) and synthetic:
            raise ValueError("choose recordings (--replay FILE...) or --synthetic, not both")
        asyncio.run(run_venue(
            files=list(files or []), synthetic=synthetic,
            symbols=[x.strip().upper() for x in symbols.split(",") if x.strip()],
            markets=[x.strip() for x in market.split(",") if x.strip()], seed=seed,
            speed=speed, port=port, tls_port=port + 1 if tls_port is None else tls_port,
            history=history, synth_history_days=synth_history_days,
            wait_clients=wait_clients, exit_at_end=exit_at_end, rate_limit=rate_limit,
            slow_client=slow_client or ("wait" if speed <= 0 else "disconnect"),
            accounts=accounts, console=err, latency=latency, queue_model=queue_model,
            queue_n=queue_n, journal=journal))


@app.command()
def collect(
    config: Annotated[Path, typer.Option(help="Collector config (YAML).")] = Path(
        "configs/collect.yaml"),
    duration_s: Annotated[float | None, typer.Option(help="Stop after this many seconds "
                                                          "(default: until Ctrl-C).")] = None,
    store: StoreOpt = None,
    venue: Annotated[str | None, typer.Option(help="HOST:PORT of a local venue: Binance feeds "
                                                   "go there, other exchanges are left out.")
                     ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate the config and print the plan, "
                                               "without connecting.")] = False,
) -> None:
    """Collect live market data with cryptofeed into the store.

    L2 book (deltas plus snapshots), trades, best bid/ask, funding and open interest from
    Binance spot, Binance USD-M, Bybit and OKX. A stats line per feed every few seconds; a JSON
    summary at the end. Ctrl-C / SIGTERM flush everything and exit 0.
    """
    import asyncio

    from tradelab.collect.run import plan, run_collect

    with cli_errors():
        cfg, notes = plan(config, venue)
        for note in notes:
            err.print(f"[yellow]{note}[/]")
        if dry_run:
            console.print_json(json.dumps({"store": str(store or cfg.store or "data/parquet"),
                                           "feeds": [f.model_dump() for f in cfg.feeds]}))
            return
        summary = asyncio.run(run_collect(cfg, store, duration_s, err))
    console.print_json(json.dumps(summary, default=str))


@app.command()
def backfill(
    symbols: Annotated[str, typer.Option(help="ccxt symbols, comma-separated: BTC/USDT (spot), "
                                              "BTC/USDT:USDT (USD-M perpetual).")],
    since: Annotated[str, typer.Option(help="UTC start, e.g. 2025-05-20.")],
    until: Annotated[str | None, typer.Option(help="UTC end, exclusive [default: now].")] = None,
    exchange: Annotated[str, typer.Option(help="binance (spot and USD-M).")] = "binance",
    timeframe: Annotated[str, typer.Option(help="Candle interval, e.g. 1m, 1h.")] = "1m",
    ohlcv: Annotated[bool, typer.Option(help="Backfill candles.")] = True,
    funding: Annotated[bool, typer.Option(help="Also settled funding rates (perpetuals).")
                       ] = False,
    trades: Annotated[bool, typer.Option(help="Also aggregate trades.")] = False,
    store: StoreOpt = None,
    venue: Annotated[str | None, typer.Option(help="HOST:PORT of a local venue instead of "
                                                   "Binance.")] = None,
    rate_limit_ms: Annotated[float | None, typer.Option(
        help="ccxt's base request interval (it throttles by Binance's weights).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """History through ccxt: paginated, rate-limit aware, resumable (continues from what the
    store holds), idempotent (no duplicate rows after a re-run)."""
    import time as _time

    from tradelab.adapters.binance.symbols import CCXT_EXCHANGE, market_of_ccxt
    from tradelab.collect.backfill import Backfill
    from tradelab.core.timeutil import to_ns

    with cli_errors():
        if exchange.lower() not in CCXT_EXCHANGE.values():
            raise ValueError(f"unsupported exchange {exchange!r}: binance (spot and USD-M)")
        start = to_ns(since) // 1_000_000
        end = to_ns(until) // 1_000_000 if until else int(_time.time() * 1000)
        jobs = []
        for sym in [x.strip() for x in symbols.split(",") if x.strip()]:
            if ohlcv:
                jobs.append(("ohlcv", sym))
            if funding and market_of_ccxt(sym) == "usdm":
                jobs.append(("funding", sym))
            elif funding:
                err.print(f"{sym}: spot, so no funding rates (perpetuals only)")
            if trades:
                jobs.append(("trades", sym))
        if not jobs:
            raise ValueError("nothing to do: choose --ohlcv, --funding or --trades")
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.fields[rows]:,} rows, {task.fields[pages]} pages"),
                      TimeElapsedColumn(), console=err, transient=True) as prog:
            tasks: dict[str, TaskID] = {}

            def progress(rep) -> None:
                key = f"{rep.kind} {rep.symbol}"
                if key not in tasks:
                    tasks[key] = prog.add_task(key, total=rep.end_ms - rep.start_ms, rows=0,
                                               pages=0)
                prog.update(tasks[key], rows=rep.stored, pages=rep.pages)

            bf = Backfill(store, venue=venue, rate_limit_ms=rate_limit_ms, progress=progress)
            reports = []
            for kind, sym in jobs:
                if kind == "ohlcv":
                    reports.append(bf.ohlcv(sym, timeframe, start, end))
                elif kind == "funding":
                    reports.append(bf.funding(sym, start, end))
                else:
                    reports.append(bf.trades(sym, start, end))
    if as_json:
        console.print_json(json.dumps([r.as_dict() for r in reports], default=str))
        return
    tbl = Table(title=f"backfill into {bf.root}")
    for col in ("job", "symbol", "store as", "pages", "fetched", "stored", "already there",
                "retries", "resumed", "sec"):
        tbl.add_column(col)
    for r in reports:
        tbl.add_row(r.kind, r.symbol, f"{r.exchange} {r.store_symbol}", str(r.pages),
                    f"{r.fetched:,}", f"{r.stored:,}", f"{r.skipped_existing:,}",
                    ", ".join(f"{k} {v}" for k, v in r.retries.items()) or "0",
                    "yes" if r.resumed_from_ms else "no", f"{r.elapsed_s:.1f}")
    console.print(tbl)


@app.command()
def sweep(
    config: Annotated[Path, typer.Option(help="Sweep config (YAML), e.g. "
                                              "configs/sweeps/keltner_btc_eth_1m.yaml.")],
    store: StoreOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [default: the "
                                                     "config's].")] = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not write the run or its "
                                                            "trials.")] = False,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a strategy's whole parameter grid through vectorbt, in chunks on every core (or on
    a Dask cluster: --scheduler, --dask-local).

    Per symbol: metrics for every set (returns, CAGR, Sharpe, Sortino, Calmar, drawdown, hit
    rate, expectancy, profit factor, trades, exposure, turnover, fees, PSR statistics), the
    best set's PSR and Deflated Sharpe Ratio over every trial of the family, PBO, and the bias
    checks. Saved under <store>/runs/<run_id>/. Each chunk is written as it arrives: an
    interrupted sweep, run again, resumes from the chunks already written.
    """
    from tradelab.backtest.vector.config import load_sweep_config
    from tradelab.backtest.vector.engine import run_sweep

    with cli_errors():
        cfg = load_sweep_config(config)
        if workers:
            cfg = cfg.model_copy(update={"workers": workers})
        with _backend(cfg.compute, scheduler, dask_local, cfg.workers) as backend, \
                Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} chunks"), TimeElapsedColumn(),
                      console=err, transient=True) as prog:
            tasks: dict[str, TaskID] = {}

            def progress(symbol: str, done: int, total: int) -> None:
                if symbol not in tasks:
                    tasks[symbol] = prog.add_task(f"{cfg.strategy} {symbol}", total=total)
                prog.update(tasks[symbol], completed=done)

            results = run_sweep(cfg, store, progress=progress, save=not no_save,
                                backend=backend)
    if as_json:
        console.print_json(json.dumps([{"run_id": r.run_id, "symbol": r.symbol,
                                        "scores": r.scores, "bias": r.bias,
                                        "timings": r.timings, "path": str(r.path)}
                                       for r in results], default=str))
        return
    for r in results:
        print_sweep(r, console=console)


@app.command()
def walkforward(
    run_ids: Annotated[list[str], typer.Argument(help="Sweep runs (see 'tradelab runs').")],
    train: Annotated[int, typer.Option(help="Training window, in the run's periods.")],
    test: Annotated[int, typer.Option(help="Test window, in the run's periods.")],
    step: Annotated[int | None, typer.Option(help="Periods between windows [default: test].")
                    ] = None,
    anchored: Annotated[bool, typer.Option(help="Expanding training windows from the start.")
                        ] = False,
    workers: Annotated[int, typer.Option(help="Local worker processes when several runs are "
                                              "given.")] = 1,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk-forward over saved sweeps: best set in-sample, traded out of sample, stitched;
    parameter stability across windows; PSR and DSR (all trials of the family) of the OOS.
    Several runs are walked in parallel (--workers, or a Dask cluster: the workers read the
    runs from the store, so it must be on a filesystem they share)."""
    from tradelab.backtest.vector.walkforward import walk_forward_runs
    from tradelab.compute import InProcess, LocalPool

    with cli_errors(), _backend(None, scheduler, dask_local, workers) as backend:
        if backend is None:
            backend = LocalPool(workers) if workers > 1 and len(run_ids) > 1 else InProcess()
        results = walk_forward_runs(run_ids, train, test, step=step, anchored=anchored,
                                    store=store, backend=backend)
    if as_json:
        docs = [{k: v for k, v in res.items() if k not in ("windows", "oos_returns")}
                for res in results]
        console.print_json(json.dumps(docs[0] if len(docs) == 1 else docs, default=str))
        return
    for res in results:
        print_walkforward(res, console=console)


@app.command()
def backtest(
    config: Annotated[Path, typer.Option(help="Event backtest config (YAML), e.g. "
                                              "configs/backtests/mm_btcusdt_perp.yaml.")],
    store: StoreOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes for a grid [default: "
                                                     "the config's].")] = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Event-driven L2 backtest: replay book and trades through the matching core with queue
    position, latency, fees and funding; a `grid:` in the config runs every set in parallel
    and registers the trials. Saved under <store>/runs/<run_id>/ (orders, fills, equity,
    report.json with the sweep metrics and the PnL decomposition)."""
    from tradelab.backtest.event.config import load_backtest_config
    from tradelab.backtest.event.run import run_grid
    from tradelab.store.paths import resolve_root

    with cli_errors():
        cfg = load_backtest_config(config)
        if workers:
            cfg = cfg.model_copy(update={"workers": workers})
        with _backend(cfg.compute, scheduler, dask_local, cfg.workers) as backend:
            results = run_grid(cfg, resolve_root(store), backend)
    if as_json:
        console.print_json(json.dumps([{"run_id": r.run_id, "params": r.params,
                                        "metrics": r.metrics, "pnl": r.pnl, "stats": r.stats,
                                        "path": str(r.path)} for r in results], default=str))
        return
    tbl = Table(title=f"event backtest {cfg.name} {cfg.symbol}")
    for col in ("run id", "params", "fills", "maker", "volume", "pnl", "spread", "fees",
                "adverse 1s", "adverse 5s", "sharpe"):
        tbl.add_column(col, justify="left" if col in ("run id", "params") else "right")
    for r in results:
        shown = sorted(cfg.grid) or sorted(r.params)
        tbl.add_row(r.run_id, ", ".join(f"{k}={r.params[k]:g}" for k in shown),
                    f"{r.stats['fills']:,}", f"{r.stats['maker_fills']:,}",
                    f"{r.stats['volume']:g}", f"{r.pnl['total']:.2f}",
                    f"{r.pnl['spread_captured']:.2f}", f"{r.pnl['fees']:.2f}",
                    f"{r.pnl['adverse_selection_1s']:.2f}", f"{r.pnl['adverse_selection_5s']:.2f}",
                    f"{r.metrics['sharpe']:.2f}")
    console.print(tbl)


@app.command()
def runs(store: StoreOpt = None) -> None:
    """Sweep runs in the store: strategy, symbol, sets, best Sharpe, DSR, PBO."""
    from tradelab.backtest.runs import RunStore
    from tradelab.store.paths import resolve_root

    with cli_errors():
        rs = RunStore(resolve_root(store))
        ids = rs.list_runs()
    if not ids:
        console.print("no sweep runs yet: tradelab sweep --config configs/sweeps/...")
        return
    tbl = Table(title="sweep runs")
    for col in ("run id", "sets", "best sharpe", "PSR", "DSR", "trials", "PBO"):
        tbl.add_column(col, justify="right" if col != "run id" else "left")
    for rid in ids:
        rep = json.loads((rs.root / rid / "report.json").read_text())
        if rep.get("kind") == "event":  # event backtests have no sweep scores
            continue
        sc = rep["scores"]
        tbl.add_row(rid, f"{rep['timings']['sets']:,}", f"{sc['best']['sharpe']:.2f}",
                    f"{sc.get('psr', float('nan')):.3f}", f"{sc.get('dsr', float('nan')):.3f}",
                    f"{sc['n_trials']:,}", f"{sc.get('pbo', float('nan')):.2f}")
    console.print(tbl)


@app.command()
def promote(
    strategy: Annotated[str, typer.Argument(help="The strategy (or family) to promote.")],
    run: Annotated[str, typer.Option("--run", help="The sweep run whose chosen set is judged.")],
    config: Annotated[Path, typer.Option(help="Promotion gates (YAML).")
                      ] = Path("configs/promotion.yaml"),
    out: Annotated[Path, typer.Option(help="Where a promoted config is written.")
                   ] = Path("configs/promoted"),
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge a sweep run by the gates of configs/promotion.yaml (DSR over every trial of the
    family, PBO, OOS Sharpe, trades, look-ahead and warm-up checks, event backtest agreement).
    A pass writes <out>/<strategy>.yaml; a failure prints each failed gate and writes nothing
    (exit code 3)."""
    from tradelab.report.promotion import evaluate, load_promotion_config, write_promoted
    from tradelab.store.paths import resolve_root

    with cli_errors():
        cfg = load_promotion_config(config)
        root = resolve_root(store)
        verdict = evaluate(run, root, cfg, strategy=strategy)
        path = write_promoted(verdict, root, cfg, out) if verdict.passed else None
    if as_json:
        console.print_json(json.dumps(verdict.as_dict() | {"written": str(path) if path else None},
                                      default=str))
    else:
        for g in verdict.gates:
            mark = "[green]pass[/]" if g.passed else "[bold red]FAIL[/]"
            console.print(f"{mark} {g.line()}", highlight=False)
        if path:
            console.print(f"[green]promoted[/] {strategy} ({run}): {path}")
        else:
            console.print(f"[bold red]not promoted[/] {strategy} ({run}): "
                          f"{len(verdict.failed)} gate(s) failed; nothing written")
    if not verdict.passed:
        raise typer.Exit(3)


@app.command("exec-smoke")
def exec_smoke_cmd(
    symbol: Annotated[str, typer.Option(help="Raw Binance symbol.")] = "BTCUSDT",
    market: Annotated[str, typer.Option(help="spot or usdm.")] = "spot",
    venue: Annotated[str | None, typer.Option(help="HOST:PORT of a local venue (default: "
                                                   "Binance's testnet).")] = None,
    iterations: Annotated[int, typer.Option("--iterations", "--iters",
                                            help="Measured place+cancel rounds.")] = 50,
    warmup: Annotated[int, typer.Option(help="Rounds first, excluded from the figures.")] = 5,
    transport: Annotated[str, typer.Option(help="rest (ccxt) or ws_api (ccxt.pro over the "
                                                "WebSocket API).")] = "rest",
    discount_bps: Annotated[float, typer.Option(help="How far below the best bid the "
                                                     "orders rest.")] = 500.0,
    user_stream: Annotated[bool, typer.Option(help="Measure place/cancel-to-ack on the "
                                                   "user-data stream.")] = True,
    out_json: Annotated[Path | None, typer.Option(help="Write the report here.")] = None,
) -> None:
    """Place and cancel far-from-market orders N times and report the round trips and
    place-to-ack times (p50/p95/p99, warm-up excluded), errors, ack timeouts and rate-limit
    waits as JSON; its latency_table feeds the backtester's recorded latency model. Keys from
    TRADELAB_API_KEY / TRADELAB_API_SECRET or .env."""
    from tradelab.adapters.binance.symbols import ccxt_symbol_of_raw
    from tradelab.live.app import fetch_filters
    from tradelab.live.cli import BINANCE_REST, read_keys
    from tradelab.live.smoke import exec_smoke

    with cli_errors():
        key, secret = read_keys()
        if not key or not secret:
            raise TradelabError("exec-smoke needs TRADELAB_API_KEY and TRADELAB_API_SECRET "
                                "(or a .env file)")
        rest = f"http://{venue}" if venue else None
        ccxt_sym = ccxt_symbol_of_raw(symbol.upper(), market)

        async def run() -> dict:
            filters = await fetch_filters(rest or BINANCE_REST[market], market, symbol.upper())
            return await exec_smoke(rest=rest, market=market, symbol=symbol.upper(),
                                    ccxt_symbol=ccxt_sym, api_key=key, api_secret=secret,
                                    filters=filters, iterations=iterations, warmup=warmup,
                                    transport=transport, discount_bps=discount_bps,
                                    user_stream=user_stream)

        report = asyncio.run(run())
    text = json.dumps(report, indent=2)
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(text)
    g = report["stats_global"]
    console.print(f"[bold]exec-smoke[/] {transport} {symbol}: {report['succeeded_measured']}/"
                  f"{iterations} rounds; place rtt p50/p99 "
                  f"{_us(g['place_rtt_us']['p50'])}/{_us(g['place_rtt_us']['p99'])}, "
                  f"cancel {_us(g['cancel_rtt_us']['p50'])}/{_us(g['cancel_rtt_us']['p99'])}, "
                  f"place-to-ack {_us(g['place_to_ack_us']['p50'])}; errors {report['errors']}")
    if not out_json:
        console.print_json(json.dumps({k: v for k, v in report.items()
                                       if k != "latency_table"}))


@app.command("store-run")
def store_run(
    run_dir: Annotated[Path, typer.Argument(help="A runner's run directory (its journal.log).")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a runner's journal into the store as the orders, fills, positions, pnl and
    risk_events tables under its run id, each symbol under its partition, in one transaction:
    for a run that was killed before it could, or ran with --no-store. Storing a run twice
    stores every row once."""
    from tradelab.live.persist import persist_run
    from tradelab.store.paths import resolve_root

    with cli_errors():
        root = resolve_root(store, create=True)
        counts = persist_run(run_dir, root)
    if as_json:
        console.print_json(json.dumps({"store": str(root), "rows": counts}))
        return
    for sym, tables in counts.items():
        console.print(f"{sym}: " + ", ".join(f"{n} {t}" for t, n in tables.items()))
    console.print(f"stored in {root} (query: tradelab sql \"SELECT * FROM fills\")")


def _us(v: float | None) -> str:
    return "-" if v is None else f"{v / 1000:.2f} ms"


@app.command()
def nightly(
    config: Annotated[Path, typer.Option(help="Nightly jobs (YAML).")
                      ] = Path("configs/nightly.yaml"),
    store: StoreOpt = None,
    parallel: Annotated[int | None, typer.Option(help="Jobs at once [default: the "
                                                      "config's].")] = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the nightly: every notebook job with papermill (several at once), exported to
    offline HTML with the code hidden, tearsheets, reports/<date>/index.html and
    reports/index.html. A failing job is shown with its error; the others still run (exit
    code 1 when any failed)."""
    from rich.progress import SpinnerColumn

    from tradelab.report.nightly import load_nightly_config, run_nightly

    with cli_errors():
        cfg = load_nightly_config(config)
        upd: dict = {}
        if store is not None:
            upd["store"] = store
        if parallel:
            upd["parallel"] = parallel
        cfg = cfg.model_copy(update=upd)
        with _backend(cfg.compute, scheduler, dask_local, cfg.parallel) as backend, \
                Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                         TextColumn("{task.completed}/{task.total} jobs"), TimeElapsedColumn(),
                         console=err, transient=False) as prog:
            overall = prog.add_task("nightly", total=len(cfg.jobs))

            def progress(name: str, state: str) -> None:
                if state != "queued":
                    prog.advance(overall)
                    colour = "green" if state == "ok" else "red"
                    prog.console.print(f"[{colour}]{state}[/] {name}")

            summary = run_nightly(cfg, progress=progress, backend=backend)
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    else:
        tbl = Table(title=f"nightly {summary['date']}")
        for col in ("job", "status", "seconds", "OOS Sharpe", "DSR", "PBO", "promotion"):
            tbl.add_column(col)
        for r in summary["jobs"]:
            f = r.get("figures") or {}
            v = r.get("verdict")
            tbl.add_row(r["name"], r["status"], f"{r.get('seconds') or 0:.1f}",
                        *(f"{f[k]:.3f}" if isinstance(f.get(k), float) else "-"
                          for k in ("oos_sharpe", "dsr", "pbo")),
                        "-" if v is None else ("PROMOTE" if v["passed"] else "refused"))
        console.print(tbl)
        for r in summary["jobs"]:
            if r.get("error"):
                console.print(f"[bold red]{r['name']} failed:[/] {r['error']}", highlight=False)
        console.print(f"index: {summary['index']}")
    if summary["failed"]:
        raise typer.Exit(1)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="A saved run (see 'tradelab runs').")],
    out: Annotated[Path, typer.Option(help="Where the HTML is written.")] = Path("reports/runs"),
    store: StoreOpt = None,
) -> None:
    """Render one saved run's report now: the walk-forward notebook for a sweep run (with its
    quantstats tearsheet), the event-backtest notebook for an event run; offline HTML."""
    from tradelab.report.figures import run_files
    from tradelab.report.nightly import NightlyConfig, NightlyJob, run_nightly
    from tradelab.store.paths import resolve_root

    with cli_errors():
        root = resolve_root(store)
        rep, _ = run_files(root, run_id)
        event = rep.get("kind") == "event"
        job = NightlyJob(name=run_id, notebook=Path("notebooks") / (
            "event_backtest.ipynb" if event else "walkforward.ipynb"),
            parameters={"run_id": run_id}, tearsheet=not event)
        summary = run_nightly(NightlyConfig(store=root, out=out, parallel=1, jobs=[job]),
                              date=run_id)
    r = summary["jobs"][0]
    if r["status"] != "ok":
        err.print(f"[bold red]error:[/] {r['error']}")
        raise typer.Exit(1)
    console.print(f"report: {Path(summary['index']).parent / run_id / r['html']}")
    if r.get("tearsheet"):
        console.print(f"tearsheet: {Path(summary['index']).parent / run_id / r['tearsheet']}")


@app.command()
def demo(
    workdir: Annotated[
        Path,
        typer.Option(help="Where the demo keeps its raw files and store (recreated on every run)."),
    ] = Path(".demo"),
    days: Annotated[float, typer.Option(help="Days of synthetic market.")] = 7.0,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic market.")] = 7,
    reports: Annotated[Path, typer.Option(help="Where charts are written.")] = Path("reports/demo"),
    collect_s: Annotated[float, typer.Option(help="Seconds of live collection from the local "
                                                  "venue (0 skips that step).")] = 20.0,
    paper_s: Annotated[float, typer.Option(help="Seconds of paper trading at the end "
                                                "(0 skips that step).")] = 30.0,
) -> None:
    """The end-to-end demo: a synthetic market written as freqtrade files and a Binance
    recording, imported into a fresh store, quality-checked and queried; then the local venue
    serves a synthetic order flow that the real cryptofeed collector records, and ccxt
    backfills candles from it; the nightly and the promotion gates; last, the promoted strategy
    (or a named demo strategy, forced) trades on paper against the local venue. No keys, no
    network beyond 127.0.0.1."""
    from tradelab.demo import run_demo

    with cli_errors():
        run_demo(workdir, days, seed, reports, console, collect_s, paper_s)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
