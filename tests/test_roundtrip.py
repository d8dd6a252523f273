"""`rtgan latency` without a loopback: a clear message, never a row of NaN (no audio server needed)."""
import json

from rtgan.cli.main import main
from rtgan.engine import roundtrip
from rtgan.engine.roundtrip import RoundTrip, format_roundtrip_table, missing_clicks_message


def _rt(found: int, measured: float = 512.0) -> RoundTrip:
    nan = float("nan")
    return RoundTrip(48000, 256, measured if found else nan, 3.0 if found else nan, found, 8, 512.0, 24)


def test_table_without_clicks_says_so_instead_of_nan():
    text = format_roundtrip_table([("device only", _rt(0)), ("with sr-hifigan", _rt(0))])
    assert "nan" not in text.lower()
    assert text.count("no click came back") == 2 and "0/8" in text
    good = format_roundtrip_table([("device only", _rt(8))])
    assert "512  10.67 ms" in good and "8/8" in good and "no click" not in good
    # rows stay aligned whether or not clicks came back
    lines = format_roundtrip_table([("device only", _rt(8)), ("with sr-hifigan", _rt(0))]).splitlines()
    assert len(lines[2]) == len(lines[3])


def test_missing_clicks_message_says_what_to_connect():
    assert missing_clicks_message([("device only", _rt(8)), ("with m", _rt(7))]) is None
    msg = missing_clicks_message([("device only", _rt(0))])
    assert "cable" in msg and "--jack-loopback" in msg and "output" in msg and "input" in msg
    jack = missing_clicks_message([("device only", _rt(0))], jack_loopback=True)
    assert "jack_lsp" in jack
    partial = missing_clicks_message([("device only", _rt(8)), ("with m", _rt(0))])
    assert "with m" in partial


def test_json_has_null_not_nan():
    d = _rt(0).to_dict()
    assert d["measured"] is None and d["spread"] is None
    json.loads(json.dumps(d, allow_nan=False))
    assert _rt(8).to_dict()["measured"] == 512.0


def test_latency_command_without_loopback_exits_nonzero_with_the_message(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(roundtrip, "measure_roundtrip", lambda *a, **kw: _rt(0))
    out = tmp_path / "rt.json"
    assert main(["latency", "--json", str(out)]) == 1
    captured = capsys.readouterr()
    assert "nan" not in captured.out.lower() and "no click came back" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtgan latency: no click came back") and "cable" in err[0]
    assert json.loads(out.read_text())["device only"]["measured"] is None


def test_latency_command_with_clicks_is_quiet_on_stderr(monkeypatch, capsys):
    monkeypatch.setattr(roundtrip, "measure_roundtrip", lambda *a, **kw: _rt(8))
    assert main(["latency"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "512  10.67 ms" in captured.out
