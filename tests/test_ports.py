"""Ports: what a model reads and writes, and the lengths and latencies that follow from them."""
from fractions import Fraction

import pytest

from rtgan.models import registry
from rtgan.models.ports import KINDS, Port, input_length, output_length

from helpers import random_model


def test_port_rates_are_exact():
    mel = Port("mel", 128, Fraction(22050, 256))  # a mel frame every 256 samples at 22.05 kHz
    audio = Port.audio(22050)
    assert audio.rate / mel.rate == 256
    assert Port("audio", 1, 16000.0).rate == Fraction(16000)
    assert mel.ms(1) == pytest.approx(1000 * 256 / 22050)
    assert str(audio) == "audio x1 at 22050 Hz"


@pytest.mark.parametrize("bad", [dict(signal="video", channels=1, rate=1), dict(signal="audio", channels=0, rate=1),
                                 dict(signal="audio", channels=1, rate=0), dict(signal="audio", channels=1, rate=-5)])
def test_bad_ports_are_refused(bad):
    with pytest.raises(ValueError):
        Port(**bad)


def test_lengths_round_up():
    assert output_length(5, Fraction(2)) == 10
    assert output_length(5, Fraction(1, 2)) == 3  # ceil(2.5)
    assert output_length(3, Fraction(3, 2)) == 5  # ceil(4.5)
    assert input_length(10, Fraction(2)) == 5 and input_length(11, Fraction(2)) == 6
    assert input_length(3, Fraction(1, 2)) == 6


def test_models_declare_their_ports_and_kind():
    for name in registry.available():
        m = registry.build(name, "tiny")
        assert m.kind in KINDS
        if m.kind == "note":  # no input stream: a note from control values
            assert m.port_out == Port.audio(m.sample_rate_out)
            continue
        assert m.port_out.rate / m.port_in.rate == m.rate_ratio
    sr = registry.build("sr-hifigan", "tiny")
    assert sr.port_in == sr.port_out == Port.audio(48000)
    toy = random_model("toy-up2")
    assert (toy.port_in.rate, toy.port_out.rate, toy.rate_ratio) == (8000, 16000, 2)
    assert toy.output_length(1001) == 2002
    assert toy.out_granule == 2 * toy.stream_granule
