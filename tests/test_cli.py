"""The ``tradelab`` command as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

COMMANDS = [[], ["import"], ["import", "binance-ws"], ["import", "freqtrade"], ["quality"],
            ["bars"], ["sql"], ["ls"], ["backtest"]]


def tradelab(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "tradelab.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "tradelab")
def test_every_command_explains_itself(cmd):
    res = tradelab(*cmd, "--help")
    assert res.returncode == 0, res.stderr
    assert "Usage:" in res.stdout and len(res.stdout) > 200


def test_store_path_that_is_a_file_is_a_clear_error(tmp_path):
    afile = tmp_path / "store.txt"
    afile.write_text("oops")
    rec = tmp_path / "r.gz"
    with gzip.open(rec, "wb") as fh:
        fh.write(b'1 {"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"BTCUSDT",'
                 b'"t":1,"p":"1","q":"1","m":true,"M":true}}\n')
    for args in (["import", "binance-ws", rec, "--store", afile], ["quality", "--store", afile],
                 ["ls", "--store", afile]):
        res = tradelab(*args)
        assert res.returncode == 1
        assert f"store path '{afile}' is a file, not a directory" in res.stderr
        assert "Traceback" not in res.stderr
    assert afile.read_text() == "oops"


def test_missing_store_and_unknown_symbol_name_the_problem(tmp_path):
    res = tradelab("bars", "BINANCE", "BTC-USDT", "1m", "--store", tmp_path / "nope")
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_import_exit_codes_and_json(tmp_path):
    store = tmp_path / "store"
    good = tmp_path / "good.gz"
    with gzip.open(good, "wb") as fh:
        for i in range(3):
            fh.write(b'1704067200000000000 {"stream":"btcusdt@trade","data":{"e":"trade",'
                     b'"E":1704067200000,"T":1704067200000,"s":"BTCUSDT","t":%d,"p":"42000.5",'
                     b'"q":"0.1","m":false,"M":true}}\n' % i)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    res = tradelab("import", "binance-ws", good, "--store", store, "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["files"][0]["rows"] == {"trades": 3} and doc["files"][0]["market"] == "spot"
    res = tradelab("import", "binance-ws", junk, "--store", store)
    assert res.returncode == 1 and "junk.txt" in res.stderr
    res = tradelab("import", "binance-ws", good, junk, "--store", store, "--force")
    assert res.returncode == 3  # some files failed
    # --force re-reads the file, but the store keeps each trade once (issue 9: it used to be 6)
    res = tradelab("sql", "SELECT count(*) AS n FROM trades", "--store", store)
    assert res.returncode == 0 and "3" in res.stdout and "6" not in res.stdout
    res = tradelab("quality", "--store", store, "--json")
    assert json.loads(res.stdout)["summary"]["rows"] == {"trades": 3}
    res = tradelab("bars", "BINANCE", "BTC-USDT", "1m", "--store", store)
    assert res.returncode == 0 and "from trades" in res.stdout


def test_bad_arguments_exit_2(tmp_path):
    res = tradelab("import", "binance-ws", tmp_path / "x.gz", "--market", "coinm", "--store",
                   tmp_path)
    assert res.returncode == 2 and "unknown market 'coinm'" in res.stderr
    assert not (tmp_path / "_imports").exists() and not any(tmp_path.iterdir())
    res = tradelab("import", "binance-ws", tmp_path / "missing.gz", "--store", tmp_path)
    assert res.returncode == 1 and "no such file" in res.stderr


def test_import_names_bad_lines_and_an_unsynced_book(tmp_path):
    """A NaN price is rejected by line number; a file whose book never synced says so and is
    imported again next time (not skipped as already imported)."""
    store = tmp_path / "store"
    rec = tmp_path / "second_half.txt"
    diff = (b'1704067200100000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",'
            b'"E":1704067200100,"s":"BTCUSDT","U":11,"u":12,"b":[["42000.1","1"]],"a":[]}}\n')
    trade = (b'1704067200000000000 {"stream":"btcusdt@trade","data":{"e":"trade",'
             b'"E":1704067200000,"T":1704067200000,"s":"BTCUSDT","t":1,"p":"%s",'
             b'"q":"0.1","m":false,"M":true}}\n')
    rec.write_bytes(trade % b"42000.5" + diff + trade % b"NaN")
    for _ in range(2):
        res = tradelab("import", "binance-ws", rec, "--store", store)
        assert res.returncode == 0, res.stderr
        err = " ".join(res.stderr.split())
        assert "1 rejected: bad value in trade" in err
        assert "the book of BTC-USDT never synced" in err and "import it again" in err
    rejects = [json.loads(ln) for p in (store / "_imports").glob("*.rejects.jsonl")
               for ln in p.read_text().splitlines()]
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        (3, "bad value in trade")] * 2
    res = tradelab("sql", "SELECT count(*) AS n FROM trades", "--store", store)
    assert res.returncode == 0 and " 1 " in f" {res.stdout.split()[-1]} "
