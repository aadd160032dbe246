"""The durable append-only JSON log: round trip, torn tails, corruption, and a real SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradelab.errors import StoreError
from tradelab.store.jsonlog import JsonLog, read_log

ROOT = Path(__file__).resolve().parents[1]


def test_records_round_trip_with_their_sequence(tmp_path):
    p = tmp_path / "j" / "run.log"
    with JsonLog(p) as j:
        assert j.append({"type": "order", "qty": "0.001"})["seq"] == 1
        assert [r["seq"] for r in j.append_many([{"a": 1}, {"a": 2}])] == [2, 3]
        with pytest.raises(ValueError, match="assigned by the log"):
            j.append({"seq": 9})
    with JsonLog(p) as j:
        assert [r["seq"] for r in j.records] == [1, 2, 3]
        assert j.records[0] == {"type": "order", "qty": "0.001", "seq": 1}
        assert j.append({"a": 3})["seq"] == 4
    assert [r["seq"] for r in read_log(p)] == [1, 2, 3, 4]
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_a_torn_last_record_is_cut_and_appends_continue_cleanly(tmp_path, caplog):
    p = tmp_path / "run.log"
    with JsonLog(p) as j:
        j.append_many([{"i": 0}, {"i": 1}])
    whole = p.read_bytes()
    with JsonLog(p) as j:
        j.append({"i": 2})
    third = p.read_bytes()[len(whole):]
    p.write_bytes(whole + third[: len(third) // 2])  # killed mid-write
    assert [r["i"] for r in read_log(p)] == [0, 1]  # readers skip it
    with JsonLog(p) as j:
        assert j.torn_tail == len(third) // 2 and [r["i"] for r in j.records] == [0, 1]
        assert j.append({"i": 2})["seq"] == 3
    assert "torn last record" in caplog.text
    assert [r["i"] for r in read_log(p)] == [0, 1, 2] and p.read_bytes() == whole + third


def test_corruption_before_the_end_is_an_error_naming_the_line(tmp_path):
    p = tmp_path / "run.log"
    with JsonLog(p) as j:
        j.append_many([{"px": "60000.10"}, {"px": "60000.20"}, {"px": "60000.30"}])
    data = bytearray(p.read_bytes())
    i = data.index(b"60000.20")
    data[i + 6] = ord("9")  # one flipped digit in line 2: the checksum catches it
    p.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"run.log: line 2 is corrupt \(checksum mismatch\)"):
        JsonLog(p)
    with pytest.raises(StoreError, match="line 2 is corrupt"):
        read_log(p)


def test_a_missing_record_is_detected(tmp_path):
    p = tmp_path / "run.log"
    with JsonLog(p) as j:
        j.append_many([{"n": 1}, {"n": 2}, {"n": 3}])
    lines = p.read_bytes().split(b"\n")
    p.write_bytes(b"\n".join([lines[0], lines[2], b""]))
    with pytest.raises(StoreError, match="line 2 has seq 3, expected 2"):
        JsonLog(p)


def test_acknowledged_records_survive_a_sigkill(tmp_path):
    p = tmp_path / "run.log"
    code = textwrap.dedent(f"""
        import sys
        from tradelab.store.jsonlog import JsonLog
        j = JsonLog({str(p)!r})
        for i in range(100000):
            j.append({{"i": i, "pad": "x" * 200}})
            print(i, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    acked = -1
    for line in proc.stdout:
        acked = int(line)
        if acked >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with JsonLog(p) as j:
        got = [r["i"] for r in j.records]
    assert got[: acked + 1] == list(range(acked + 1))  # every acknowledged record is there
    assert got == list(range(len(got)))  # and nothing else is out of place
