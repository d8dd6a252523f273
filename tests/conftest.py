import json
import shutil
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
