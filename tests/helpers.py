"""Shared test helpers."""
from pathlib import Path

import torch
import torch.nn.functional as F

from rtgan.models import registry
from rtgan.models.base import Generator
from rtgan.models.layers import PaddedConv1d, PixelShuffle1d, PixelUnshuffle1d, Reach, align_phase, cached_conv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def random_model(name: str, preset: str = "tiny", seed: int = 0):
    """A generator with random weights everywhere (zero-initialised layers included), eval mode.

    Trained generators start as the identity (zero output conv); streaming tests need a
    model whose every layer matters. ``name`` may also be a toy of :data:`TOYS`.
    """
    torch.manual_seed(seed)
    m = TOYS[name]() if name in TOYS else registry.build(name, preset)
    with torch.no_grad():
        for p in m.parameters():
            if torch.count_nonzero(p) == 0:
                p.normal_(0.0, 0.1)
    return m.eval()


def burst_noise(batch: int, samples: int, segment: int = 32) -> torch.Tensor:
    """White noise ``(batch, 1, samples)`` whose level jumps every ``segment`` samples (0.3 times
    a log-uniform gain in [0.01, 1]): not stationary, so even a model whose output follows the
    input's spectral envelope (a vocoder) gives an output that changes when shifted by a sample."""
    gain = 10.0 ** (-2.0 * torch.rand(batch, 1, -(-samples // segment))).repeat_interleave(segment, dim=-1)
    return 0.3 * torch.randn(batch, 1, samples) * gain[..., :samples]


#: Block sizes every streaming test runs (1, a power of two, one past it, a typical block,
#: one past a large power of two).
BLOCK_SIZES = [1, 64, 65, 256, 4097]


class Upsample2Toy(Generator):
    """A toy with different input and output rates: 8 kHz in, 16 kHz out (twice the frames).

    Superpixel by 2, a centered conv (lookahead), a causal conv to 4 channels, subpixel by 2
    back to the input rate (2 channels), subpixel by 2 again to twice the input rate (1
    channel). Every layer has a bias, so silence does not give silence. Not registered: the
    grids add it to the registered models (:data:`CASES`).
    """

    name = "toy-up2"

    def __init__(self):
        super().__init__()
        self.config = type("ToyConfig", (), {"sample_rate": 8000})()
        self.unshuffle, self.shuffle = PixelUnshuffle1d(2), PixelShuffle1d(2)
        self.c1 = PaddedConv1d(2, 6, 5, "centered", bias=True)
        self.c2 = PaddedConv1d(6, 4, 3, "causal", bias=True)
        self.act = torch.nn.LeakyReLU(0.2)

    @property
    def sample_rate_out(self):
        return 16000

    @property
    def total_stride(self):
        return 2

    def forward(self, x):
        self.check_input(x)
        h = self.c2(self.act(self.c1(self.unshuffle(x))))
        return self.shuffle(self.shuffle(h))

    def stream_forward(self, x, cur):
        h, d = align_phase(x, 0, 2, cur)
        h, d = self.unshuffle(h), d // 2
        h, d = cached_conv(self.c1, h, d, cur)
        h, d = cached_conv(self.c2, self.act(h), d, cur)
        # two subpixel layers: input frames, then output frames (twice as many)
        return self.shuffle(self.shuffle(h)), 4 * d

    def reach(self):
        # exact at the output's stride of 1/2 input frame
        return self.c2.reach(self.c1.reach(Reach().unshuffle(2))).shuffle(2).shuffle(2)


#: Test-only models the streaming grids run beside the registered ones.
TOYS = {"toy-up2": Upsample2Toy}
def _distinct_generators() -> list[str]:
    """Registered streamable names, one per network: a name that only registers a subclass of
    another registered class, adding no methods (sr16-gan, sr16-wgan: sr16-unet trained another
    way; xfer-flute: xfer-violin's network for another instrument), runs that class's graph."""
    names = [n for n in registry.available() if registry.entry(n).generator.kind == "streamable"]
    classes = {n: registry.entry(n).generator for n in names}

    def adds_methods(c):
        return any(callable(v) or isinstance(v, property) for k, v in vars(c).items() if not k.startswith("__"))

    def same_graph(a, b):  # a is b's subclass, and nothing between them defines a method
        return (a is not b and issubclass(a, b)
                and not any(adds_methods(c) for c in a.__mro__[:a.__mro__.index(b)]))

    return [n for n in names if not any(same_graph(classes[n], classes[m]) for m in names)]


#: Every registered streamable generator (note models have no stream) at its tiny preset, the shipped live preset, and the toys.
CASES = [(name, "tiny") for name in _distinct_generators()] + [("sr-hifigan", "live")] + [(n, "tiny") for n in TOYS]


def whole_file(model, x, pad=8192):
    """Reference: one forward pass over the whole signal with ``pad`` zeros each side,
    cropped to ``model.output_length(frames)`` output frames."""
    t = x.shape[-1]
    tail = pad + (-(t + 2 * pad) % model.total_stride)
    with torch.no_grad():
        y = model(F.pad(x, (pad, tail)))
    start = model.output_length(pad)
    return y[..., start:start + model.output_length(t)]


class Pointwise(Generator):
    """Test generator base: sample-wise (stride 1, no receptive field beyond the sample, no
    latency) at 48 kHz; subclasses define ``forward``."""

    name = "pointwise"

    def __init__(self):
        super().__init__()
        self.config = type("C", (), {"sample_rate": 48000})()

    @property
    def total_stride(self):
        return 1

    def reach(self):
        return Reach()

    def stream_forward(self, x, cur):
        return self.forward(x), 0


def piano_violin(prog: str, f, t):
    """The toy instruments of the pair-set tests: 'piano' (program 0) decaying sines, 'violin' (40) the
    same notes as sustained sawtooth-like tones (five harmonics); ``f`` Hz per sample, ``t`` seconds."""
    import numpy as np
    phase = 2 * np.pi * np.cumsum(f) / 16000
    if prog == "0":
        return 0.3 * np.sin(phase) * np.exp(-8 * (t % 0.25))
    if prog == "40":
        return 0.2 * sum(np.sin(h * phase) / h for h in range(1, 6))
    raise ValueError(f"piano_violin: no toy instrument for program {prog}")


def write_pair_set(root: Path, render=piano_violin, programs=("0", "40"), splits=("train", "train", "val", "val",
                   "test", "test"), seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """A pair set in :mod:`rtgan.data.pairs`'s layout (``pairs.jsonl`` + ``PPP/pK.flac``), one piece per
    entry of ``splits``: random notes of 0.25 s (110-415 Hz, seeded) rendered by ``render(program, f, t)``
    for each of ``programs`` (input program 0)."""
    import json
    import numpy as np
    import soundfile as sf
    rows, rng = [], np.random.default_rng(0)
    n = int(seconds * sample_rate)
    notes = int(seconds * 4)
    for k, split in enumerate(splits):
        t = np.arange(n) / sample_rate
        f = (110.0 * 2 ** (rng.integers(0, 24, size=notes) / 12))[np.repeat(np.arange(notes), n // notes)]
        paths = {}
        for prog in programs:
            rel = f"{int(prog):03d}/p{k}.flac"
            (root / rel).parent.mkdir(exist_ok=True)
            sf.write(root / rel, render(prog, f, t).astype(np.float32), sample_rate, subtype="PCM_24")
            paths[prog] = rel
        rows.append({"id": f"p{k}", "piece": f"p{k}", "input_program": 0, "paths": paths, "sample_rate": sample_rate,
                     "samples": n, "seconds": seconds, "split": split})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


# --------------------------------------------------------------------------- JACK: the machine's own xruns
def passthrough_xruns(duration: float, play=None, block_size: int = 256, sample_rate: int = 48000,
                      startup_s: float = 0.5) -> int:
    """xruns a passthrough client counts on the default PortAudio device (the JACK test server):
    a callback that copies input to output and computes nothing, run for ``startup_s +
    duration`` seconds, its xruns after ``startup_s`` counted by ``rtgan live``'s own rule
    (:meth:`rtgan.engine.live.BlockCounters.count_status`), under the live loop's conditions
    (:func:`rtgan.engine.device.audio_thread_conditions`). ``play(stop)``, if given, runs in a
    thread meanwhile, as beside the live run it is compared with (MIDI sources, recorders);
    ``stop`` is set when the stream ends.

    It measures what the machine drops with no compute at all: on the shared 2-core VMs this
    runs on, the hypervisor takes the vCPUs away for milliseconds now and then, and JACK counts
    an xrun for every client then (README, "Live soak").
    """
    import math
    import threading
    import time

    import sounddevice as sd

    from rtgan.engine.device import audio_thread_conditions
    from rtgan.engine.live import BlockCounters, LiveStats

    counter = BlockCounters()
    counter.stats, counter.startup_blocks = LiveStats(), math.ceil(startup_s * sample_rate / block_size)

    def callback(indata, outdata, frames, time_info, status):
        counter.count_status(status)
        outdata[:] = indata
        counter.stats.blocks += 1

    stop = threading.Event()
    t = threading.Thread(target=play, args=(stop,)) if play is not None else None
    try:
        with audio_thread_conditions(), sd.Stream(samplerate=sample_rate, blocksize=block_size, channels=1,
                                                  dtype="float32", callback=callback, latency="low"):
            if t is not None:
                t.start()
            time.sleep(startup_s + duration)
    finally:
        stop.set()
        if t is not None:
            t.join()
    assert counter.stats.blocks >= 0.9 * duration * sample_rate / block_size, counter.stats
    return counter.stats.xruns


def no_more_xruns_than_the_machine(xruns: int, duration: float, controls: list, play=None) -> bool:
    """Whether a live run's ``xruns`` over ``duration`` seconds pass: 0, or no more than a
    passthrough client counts over the same time right after it (:func:`passthrough_xruns`, run
    only when ``xruns > 0``; its count is appended to ``controls``). The JACK tests retry until
    a run passes: a run with more xruns than a client that computes nothing is rtgan's doing."""
    if xruns == 0:
        return True
    controls.append(passthrough_xruns(duration, play))
    return xruns <= controls[-1]
