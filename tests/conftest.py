import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on a 2-core CI machine: one intra-op thread keeps them predictable."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


from helpers import EXAMPLES  # noqa: E402
CLIPS = {"music_wesnoth_nunc_dimittis.flac": ("train", "music"), "drums_BJA_Pacific.flac": ("train", "music"),
         "speech_klettres_en_car-dog.flac": ("val", "speech")}


@pytest.fixture()
def corpus(tmp_path):
    """A three-clip corpus of the shipped real examples: two train clips, one val clip."""
    root = tmp_path / "corpus"
    rows = []
    for name, (split, domain) in CLIPS.items():
        dst = root / split / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / name, dst)
        info = sf.info(dst)
        rows.append({"path": f"{split}/{name}", "split": split, "domain": domain, "source": "examples",
                     "sample_rate": info.samplerate, "bandwidth_hz": 20000.0,
                     "duration_seconds": info.duration, "num_samples": info.frames})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


# --------------------------------------------------------------------------- JACK server (test_live, test_midi_control)
def _jack_running() -> bool:
    return shutil.which("jack_lsp") is not None and subprocess.run(
        ["jack_lsp"], capture_output=True, timeout=10).returncode == 0


def _start_jackd(realtime: bool):
    """jackd with the dummy driver (48 kHz, 256-frame periods); None if it did not come up."""
    cmd = ["jackd", "-R" if realtime else "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        if proc.poll() is not None:
            return None
        if _jack_running():
            return proc
        time.sleep(0.1)
    proc.kill()
    return None


@pytest.fixture(scope="module")
def jack_server():
    """A JACK server with the dummy driver: reused if one runs, else started here (realtime
    scheduling if allowed, else --no-realtime) and stopped after the module. Skips where JACK
    or PortAudio is missing, unless RTGAN_REQUIRE_AUDIO_SERVER=1 (set by CI): then it fails.
    While it runs, a 0 µs CPU wake-up latency request is held where the machine grants it
    (/dev/cpu_dma_latency, as ``rtgan live --cpu-dma-latency 0`` does; README, live soak: it took
    a passthrough client from 24 xruns a minute to 0 on this VM), as one tunes an audio machine."""
    required = os.environ.get("RTGAN_REQUIRE_AUDIO_SERVER") == "1"

    def unavailable(why):
        if required:
            pytest.fail(why)
        pytest.skip(why)

    proc = None
    if not _jack_running():
        if shutil.which("jackd") is None:
            unavailable("jackd not installed (apt-get install jackd2)")
        proc = _start_jackd(realtime=True) or _start_jackd(realtime=False)
        if proc is None:
            unavailable("jackd did not start")
    try:
        import sounddevice as sd
        sd._terminate()  # PortAudio lists host APIs when it initialises: look again now JACK runs
        sd._initialize()
        if not any("JACK" in api["name"] for api in sd.query_hostapis()):
            raise OSError("PortAudio has no JACK host API")
    except (ImportError, OSError) as e:
        if proc is not None:
            proc.terminate()
        unavailable(f"no JACK through PortAudio: {e}")
    from rtgan.engine import rt
    with rt.cpu_dma_latency(0):
        yield
    if proc is not None:
        import sounddevice as sd
        sd._terminate()  # PortAudio must let go of the server before it stops
        proc.terminate()
        proc.wait(timeout=10)
        sd._initialize()
