"""The ledger: every complete line survives, a cut-short last line is recovered with a warning, any other bad
line is a clear error; one sweep per experiment."""

import json

import pytest

from training.sweep import SweepError, ledger


def planned(run_id, index=0):
    return {"run_id": run_id, "index": index, "repeat": 1, "kind": "ray", "config_hash": "abc", "cpus": 1,
            "scale": {"workers": 1}}


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "ledger.jsonl")


def write_events(path, *events):
    writer = ledger.LedgerWriter(path)
    for kind, fields in events:
        writer.append(kind, **fields)
    writer.close()


def test_replay_follows_each_run_through_its_attempts(path):
    write_events(path, ("planned", planned("a")), ("planned", planned("b", 1)),
                 ("started", {"run_id": "a", "attempt": 1, "pid": 1}),
                 ("failed", {"run_id": "a", "attempt": 1, "error": "boom", "exit_code": 1, "retryable": True}),
                 ("started", {"run_id": "a", "attempt": 2, "pid": 2}),
                 ("interrupted", {"run_id": "a", "attempt": 2, "error": "killed"}),
                 ("started", {"run_id": "a", "attempt": 3, "pid": 3}),
                 ("succeeded", {"run_id": "a", "attempt": 3, "training_time_seconds": 5.0}),
                 ("started", {"run_id": "b", "attempt": 1, "pid": 4}))
    states, stopped = ledger.replay(ledger.read_ledger(path, repair=False), path)
    assert list(states) == ["a", "b"] and stopped is None
    a, b = states["a"], states["b"]
    assert a.state == "succeeded" and [t["outcome"] for t in a.attempts] == ["failed", "interrupted", "succeeded"]
    assert a.failures == 1 and a.attempts[0]["error"] == "boom"
    assert b.state == "running" and b.attempts[-1]["pid"] == 4


def test_a_cut_short_last_line_is_dropped_with_a_warning_and_repaired(path, capsys):
    write_events(path, ("planned", planned("a")))
    whole = open(path, "rb").read()
    open(path, "ab").write(b'{"v": 1, "event": "star')
    events = ledger.read_ledger(path, repair=False)
    assert [e["event"] for _, e in events] == ["planned"]
    assert "line 2 was cut short" in capsys.readouterr().err
    assert open(path, "rb").read().endswith(b"star")  # only the lock holder repairs
    ledger.read_ledger(path, repair=True)
    assert open(path, "rb").read() == whole


def test_a_whole_last_line_without_its_newline_is_kept(path, capsys):
    write_events(path, ("planned", planned("a")))
    open(path, "ab").write(json.dumps({"v": 1, "ts": "t", "event": "planned", **planned("b", 1)}).encode())
    events = ledger.read_ledger(path, repair=True)
    assert [e["run_id"] for _, e in events] == ["a", "b"]
    assert "had no newline" in capsys.readouterr().err
    assert open(path, "rb").read().endswith(b"}\n")


@pytest.mark.parametrize("bad", [b"not json", b'{"v": 1, "event": "exploded"}', b'{"v": 9, "event": "planned"}',
                                 b'{"v": 1, "event": "started"}', b"\xff\xfe"])
def test_a_bad_line_in_the_middle_is_an_error_naming_the_line(path, bad):
    write_events(path, ("planned", planned("a")))
    data = open(path, "rb").read()
    open(path, "wb").write(data + bad + b"\n" + data)
    with pytest.raises(SweepError, match="line 2 is corrupt") as err:
        ledger.read_ledger(path, repair=True)
    assert err.value.code == 1
    assert open(path, "rb").read() == data + bad + b"\n" + data


def test_events_for_unplanned_or_idle_runs_are_corruption(tmp_path):
    ghost, idle = str(tmp_path / "ghost.jsonl"), str(tmp_path / "idle.jsonl")
    write_events(ghost, ("started", {"run_id": "ghost", "attempt": 1}))
    with pytest.raises(SweepError, match="line 1 is corrupt .*never planned"):
        ledger.replay(ledger.read_ledger(ghost, repair=False), ghost)
    write_events(idle, ("planned", planned("a")), ("succeeded", {"run_id": "a", "attempt": 1}))
    with pytest.raises(SweepError, match="line 2 is corrupt .*not running"):
        ledger.replay(ledger.read_ledger(idle, repair=False), idle)


def test_one_sweep_per_experiment_and_the_lock_dies_with_its_holder(tmp_path):
    folder = str(tmp_path / "exp")
    first = ledger.SweepLock(folder).acquire()
    assert ledger.lock_holder(folder) is not None
    with pytest.raises(SweepError, match="already being run by another sweep") as err:
        ledger.SweepLock(folder).acquire()
    assert err.value.code == 1
    first.release()
    assert ledger.lock_holder(folder) is None
    ledger.SweepLock(folder).acquire().release()


def test_fresh_moves_the_old_experiment_aside_and_deletes_nothing(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "ledger.jsonl").write_text("x\n")
    moved = ledger.move_aside(str(folder))
    assert not folder.exists() and open(f"{moved}/ledger.jsonl").read() == "x\n" and moved.endswith(".old")
