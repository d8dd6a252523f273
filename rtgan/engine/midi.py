"""MIDI control of live parameters with python-rtmidi: CC messages set a :class:`ParameterBank`.

A controller's CC ``c`` with value ``v`` (0..127) sets the parameter mapped to ``c`` to
``Parameter.from_unit(v / 127)`` (linear or log over its declared range); the bank glides
to it (:mod:`rtgan.engine.params`), so 128 steps never reach the audio as steps.

The map (:func:`default_map`, printed at start; a JSON file overrides it, :func:`load_map`):

* CC 1 (modulation wheel), then CC 21, 22, ...: the model's own parameters, in the order
  the model declares them;
* CC 91 (effects 1 depth, GM's reverb send): ``wet``; CC 7 (channel volume): ``gain``.

Messages arrive on python-rtmidi's thread, never the audio thread. Nothing a port sends can
stop or glitch the stream: malformed messages (wrong length, a data byte above 127, a status
byte missing), CCs that are not mapped and channel-mode messages (CC 120-127) are ignored
with a rate-limited log line (:class:`RateLimitedLog`); other well-formed messages (notes,
pitch bend, clock) are counted and ignored, but notes go to a note player where one listens
(``on_note``: a note model, :mod:`rtgan.engine.voices`). A source port that disappears is reported once
by :meth:`MidiControl.poll`, which the status loop calls; the stream goes on, and control
resumes if the port comes back.

APIs: JACK's MIDI (python-rtmidi's ``UNIX_JACK``, where a JACK server runs) or ALSA's
sequencer (``LINUX_ALSA``, where ``/dev/snd/seq`` exists); ``"auto"`` picks the first that works.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from .params import ParameterBank

log = logging.getLogger(__name__)

#: highest controller number that is a control change (120-127 are channel-mode messages)
MAX_CC = 119
#: the CCs model parameters get, in declaration order
MODEL_CCS = (1,) + tuple(range(21, 32))
#: the engine parameters' CCs
ENGINE_CCS = {"wet": 91, "gain": 7}
APIS = ("auto", "jack", "alsa")
#: seconds between checks that the source port still exists, while it sends nothing (see MidiControl.maybe_poll)
POLL_INTERVAL_S = 10.0


class MidiError(RuntimeError):
    """A MIDI port or map that cannot be used (one line, for the command line)."""


def default_map(bank: ParameterBank) -> dict[int, str]:
    """The default CC map of ``bank``'s parameters: ``{cc: parameter name}`` (module docstring)."""
    out: dict[int, str] = {}
    model = [p.name for p in bank.params if p.name not in ENGINE_CCS]
    for cc, name in zip(MODEL_CCS, model):
        out[cc] = name
    for name, cc in ENGINE_CCS.items():
        if name in bank:
            out[cc] = name
    return out


def load_map(path: str | Path, bank: ParameterBank) -> dict[int, str]:
    """A CC map from a JSON file: an object ``{"CC": "parameter", ...}``, e.g. ``{"74": "decay", "91": "wet"}``.

    Raises:
        MidiError: unreadable or malformed JSON, a key that is not a controller number
            0-119, or a parameter ``bank`` does not have (each a one-line message naming the file).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise MidiError(f"{path}: cannot read the MIDI map ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MidiError(f"{path}: not a JSON MIDI map ({e})") from None
    if not isinstance(data, dict) or not data:
        raise MidiError(f'{path}: a MIDI map is a JSON object {{"CC": "parameter", ...}}, e.g. {{"91": "wet"}}')
    out: dict[int, str] = {}
    for key, name in data.items():
        try:
            cc = int(key)
        except (TypeError, ValueError):
            cc = -1
        if not 0 <= cc <= MAX_CC or str(key).strip() != str(cc):
            raise MidiError(f"{path}: {key!r} is not a controller number 0-{MAX_CC}")
        if not isinstance(name, str) or name not in bank:
            raise MidiError(f"{path}: CC {cc} -> {name!r}: not a parameter; this processor has "
                            f"{', '.join(p.name for p in bank.params)}")
        out[cc] = name
    return out


def describe_map(midi_map: dict[int, str], bank: ParameterBank) -> str:
    """One line per mapped CC: ``CC  91 -> wet: mix ..., 0..1, default 1``."""
    return "\n".join(f"  CC {cc:3d} -> {bank.declaration(name).describe()}" for cc, name in sorted(midi_map.items()))


class RateLimitedLog:
    """At most one line per ``interval_s`` seconds per kind of event; the next line says how
    many were left out. Thread-safe; ``emit`` receives each line (default: the module logger)."""

    def __init__(self, interval_s: float = 2.0, emit: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = float(interval_s)
        self.emit = emit if emit is not None else (lambda line: log.warning("%s", line))
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, line: str) -> bool:
        """Log ``line`` unless a line of ``kind`` went out less than ``interval_s`` ago; True if logged."""
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            held = self._held.pop(kind, 0)
            self._last[kind] = now
        self.emit(line + (f" ({held} more like it not shown)" if held else ""))
        return True


def _rtmidi():
    try:
        import rtmidi
    except ImportError:
        raise MidiError("MIDI needs python-rtmidi: pip install python-rtmidi (or pip install 'rtgan[live]')") from None
    return rtmidi


def _jack_server_running() -> bool:
    """Whether a JACK server answers (``jack_lsp``, from JACK's tools)."""
    import shutil
    import subprocess
    if shutil.which("jack_lsp") is None:
        return False
    try:
        return subprocess.run(["jack_lsp"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_api(api: str = "auto") -> tuple[str, int]:
    """``(name, rtmidi API constant)`` for ``api`` in :data:`APIS`.

    Raises:
        MidiError: an unknown name, python-rtmidi missing or built without the API, or for
            ``"auto"`` neither a JACK server nor ALSA's sequencer (``/dev/snd/seq``) present.
    """
    if api not in APIS:
        raise MidiError(f"MIDI API must be one of {', '.join(APIS)}, got {api!r}")
    rtmidi = _rtmidi()
    compiled = set(rtmidi.get_compiled_api())
    consts = {"jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}
    if api != "auto":
        if consts[api] not in compiled:
            raise MidiError(f"this python-rtmidi was built without the {api} MIDI API")
        return api, consts[api]
    if consts["jack"] in compiled and _jack_server_running():
        return "jack", consts["jack"]
    if consts["alsa"] in compiled and os.path.exists("/dev/snd/seq"):
        return "alsa", consts["alsa"]
    raise MidiError("no MIDI system: start a JACK server (jackd) or load ALSA's sequencer (/dev/snd/seq missing)")


def list_ports(api: str = "auto") -> list[str]:
    """Names of the MIDI sources one can listen to (``rtgan midi-ports``).

    Raises:
        MidiError: as :func:`resolve_api`.
    """
    _, const = resolve_api(api)
    midi_in = _rtmidi().MidiIn(const, name="rtgan-list")
    try:
        return list(midi_in.get_ports())
    finally:
        midi_in.delete()


def pick_port(ports: list[str], port: str | int) -> int:
    """Index of ``port`` in ``ports``: an index, an exact name, or a unique part of a name.

    Raises:
        MidiError: no port, or several, match (the message lists the ports).
    """
    listing = ", ".join(f"{i}: {p}" for i, p in enumerate(ports)) or "none"
    s = str(port)
    if s.isdigit() and int(s) < len(ports) and s not in ports:
        return int(s)
    if s in ports:
        return ports.index(s)
    hits = [i for i, p in enumerate(ports) if s.lower() in p.lower()]
    if len(hits) == 1:
        return hits[0]
    raise MidiError(f"MIDI port {s!r} {'is ambiguous' if hits else 'not found'}; ports: {listing} "
                    "(see 'rtgan midi-ports')")


class MidiControl:
    """Listens to one MIDI source and sets ``bank``'s parameters from its CC messages.

    Args:
        bank: the processor's :class:`ParameterBank` (``processor.params``).
        midi_map: ``{cc: parameter name}`` (default :func:`default_map`).
        learn: a parameter name: the next CC moved is bound to it (replacing what that CC
            did), then learning stops.
        channel: listen to this MIDI channel only (1-16); None: all.
        log_line: receives the rate-limited log lines (default: the module logger).
        on_note: called on python-rtmidi's thread for each well-formed note message as
            ``on_note(on, note, velocity, channel)`` (a note-on with velocity 0 is a note-off,
            ``on`` False); None: notes are counted and ignored. It must not block.

    Raises:
        KeyError: ``learn`` or a mapped name is not in ``bank``.
        ValueError: ``channel`` outside 1-16.
    """

    def __init__(self, bank: ParameterBank, midi_map: dict[int, str] | None = None, learn: str | None = None,
                 channel: int | None = None, log_line: Callable[[str], None] | None = None,
                 on_note: Callable[[bool, int, int, int], None] | None = None) -> None:
        self.bank = bank
        self.on_note = on_note
        self.map = dict(default_map(bank) if midi_map is None else midi_map)
        for name in list(self.map.values()) + ([learn] if learn else []):
            bank.declaration(name)
        if channel is not None and not 1 <= channel <= 16:
            raise ValueError(f"MIDI channel must be 1-16, got {channel}")
        self.learn, self.channel = learn, channel
        self.limited = RateLimitedLog(emit=log_line)
        self.say = log_line if log_line is not None else (lambda line: log.warning("%s", line))
        self.counts = {"applied": 0, "notes": 0, "malformed": 0, "unmapped": 0, "ignored": 0, "errors": 0}
        self._last_message = self._last_poll = time.monotonic()
        self.port_name: str | None = None
        self.connected = False
        self._midi_in = None
        self._api: int | None = None
        self._selector = ""

    # ------------------------------------------------------------ messages
    def handle(self, message) -> str | None:
        """Apply one MIDI message (a sequence of byte values). Never raises.

        (Also notes the time: a port that sends is there, :meth:`maybe_poll` need not list ports.)

        Returns:
            ``"<name> = <value>"`` when a parameter was set, None otherwise.
        """
        self._last_message = time.monotonic()
        try:
            return self._handle(message)
        except Exception as e:  # a bug here must not reach python-rtmidi's thread, let alone the stream
            self.counts["errors"] += 1
            self.limited("error", f"MIDI: message {message!r} not handled ({type(e).__name__}: {e})")
            return None

    def _handle(self, message) -> str | None:
        msg = list(message) if isinstance(message, (list, tuple, bytes, bytearray)) else None
        if not msg or not all(isinstance(b, int) and 0 <= b <= 255 for b in msg) or msg[0] < 0x80:
            self.counts["malformed"] += 1
            self.limited("malformed", f"MIDI: ignored malformed message {message!r} (no status byte or not bytes)")
            return None
        status = msg[0]
        if status & 0xF0 in (0x80, 0x90) and self.on_note is not None:
            return self._note(msg)
        if status & 0xF0 != 0xB0:  # not a control change: notes, bend, clock, sysex ...
            self.counts["ignored"] += 1
            return None
        if len(msg) != 3 or msg[1] > 127 or msg[2] > 127:
            self.counts["malformed"] += 1
            self.limited("malformed", f"MIDI: ignored malformed control change {msg!r} (3 bytes, data 0-127)")
            return None
        channel, cc, value = (status & 0x0F) + 1, msg[1], msg[2]
        if self.channel is not None and channel != self.channel:
            self.counts["ignored"] += 1
            return None
        if cc > MAX_CC:
            self.counts["unmapped"] += 1
            self.limited("mode", f"MIDI: ignored channel-mode message CC {cc} on channel {channel}")
            return None
        if self.learn is not None:
            name, self.learn = self.learn, None
            self.map = {c: n for c, n in self.map.items() if c != cc}
            self.map[cc] = name
            self.say(f"MIDI learn: CC {cc} -> {name}")
        name = self.map.get(cc)
        if name is None:
            self.counts["unmapped"] += 1
            self.limited(f"cc{cc}", f"MIDI: CC {cc} (channel {channel}) is not mapped; mapped: "
                                    + ", ".join(f"CC {c} -> {n}" for c, n in sorted(self.map.items())))
            return None
        v = self.bank.set_unit(name, value / 127.0)
        self.counts["applied"] += 1
        return f"{name} = {v:g}"

    def _note(self, msg: list[int]) -> str | None:
        if len(msg) != 3 or msg[1] > 127 or msg[2] > 127:
            self.counts["malformed"] += 1
            self.limited("malformed", f"MIDI: ignored malformed note message {msg!r} (3 bytes, data 0-127)")
            return None
        channel = (msg[0] & 0x0F) + 1
        if self.channel is not None and channel != self.channel:
            self.counts["ignored"] += 1
            return None
        on = msg[0] & 0xF0 == 0x90 and msg[2] > 0
        self.on_note(on, msg[1], msg[2] if on else 0, channel)
        self.counts["notes"] += 1
        return f"note {'on' if on else 'off'} {msg[1]}"

    # ------------------------------------------------------------ ports
    def open(self, port: str | int, api: str = "auto", client_name: str = "rtgan") -> str:
        """Listen to ``port`` (see :func:`pick_port`) through ``api``; returns the port's name.

        Raises:
            MidiError: no MIDI system, no such port, or the port cannot be opened.
        """
        rtmidi = _rtmidi()
        _, self._api = resolve_api(api)
        midi_in = rtmidi.MidiIn(self._api, name=client_name)
        try:
            ports = list(midi_in.get_ports())
            i = pick_port(ports, port)
            midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
            midi_in.set_error_callback(lambda kind, text, _data=None: self.limited(
                "rtmidi", f"MIDI: {text.strip()}"))
            self._listen(midi_in, i)
        except MidiError:
            midi_in.delete()
            raise
        except Exception as e:  # rtmidi's SystemError / RtMidiError
            midi_in.delete()
            raise MidiError(f"cannot open MIDI port {port!r}: {e}") from None
        self._midi_in, self.port_name, self.connected = midi_in, ports[i], True
        # how to find the port again if it comes back (a JACK or USB client may return under
        # a new number): the user's name or part of it; an index only by the exact name
        self._selector = self.port_name if str(port).isdigit() else str(port)
        return self.port_name

    def _listen(self, midi_in, index: int) -> None:
        """Open port ``index`` with :meth:`handle` as its callback (python-rtmidi drops the
        callback when a port closes: it is set again on every open)."""
        midi_in.cancel_callback()
        midi_in.set_callback(lambda event, _data=None: self.handle(event[0]))
        midi_in.open_port(index, "midi_in")

    def poll(self) -> bool:
        """Check that the source port still exists (call from a non-audio thread, say once a
        second): report a disappearance once, reconnect when a port matching what :meth:`open`
        was given (a name or part of one) is listed again. Returns ``connected``."""
        if self._midi_in is None or self.port_name is None:
            return False
        try:
            ports = list(self._midi_in.get_ports())
        except Exception:  # the MIDI system itself went away
            ports = []
        if self.connected and self.port_name not in ports:
            self.connected = False
            self.say(f"MIDI: port {self.port_name!r} disappeared; the stream goes on without MIDI control "
                     "until it comes back")
        elif not self.connected:
            try:
                i = pick_port(ports, self._selector)
            except MidiError:
                return False  # not back (or ambiguous): keep waiting
            try:
                self._midi_in.close_port()
                self._listen(self._midi_in, i)
                self.connected, self.port_name = True, ports[i]
                self.say(f"MIDI: port {self.port_name!r} is back")
            except Exception as e:
                self.limited("reopen", f"MIDI: cannot reopen {ports[i]!r}: {e}")
        return self.connected

    def maybe_poll(self, interval_s: float = POLL_INTERVAL_S) -> bool:
        """:meth:`poll` at most every ``interval_s`` seconds, and not while messages arrive (a port
        that sends exists). For the live loop's tick: listing ports on a JACK server costs the
        audio graph a cycle (measured on the JACK dummy driver: one xrun per listing, none
        without), so it is done rarely. Returns ``connected``."""
        now = time.monotonic()
        if self.connected and (now - self._last_poll < interval_s or now - self._last_message < interval_s):
            return True
        self._last_poll = now
        return self.poll()

    def close(self) -> None:
        """Stop listening and release the port."""
        if self._midi_in is not None:
            try:
                self._midi_in.cancel_callback()
                self._midi_in.close_port()
            finally:
                self._midi_in.delete()
                self._midi_in = None
                self.connected = False

    def __enter__(self) -> "MidiControl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
