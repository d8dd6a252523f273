"""Per-clip (paired) comparison of two ``rtgan eval --json`` results on the same clips.

Two checkpoints scored on the same split and band-limiter differ per clip by far less than the
clips differ from each other, so the 95 % intervals of the two means in ``rtgan eval``'s table
overlap even where one model is better on almost every clip. This prints, per band-limiter and
domain, the mean over clips of ``candidate - base`` for ViSQOL, SNR (dB) and LSD, with its 95 %
interval ``1.96 s / sqrt(n)`` (:func:`rtgan.evaluate.confidence_interval`: s the sample standard
deviation of the differences, ddof 1; normal approximation), over the clips both files hold.
Positive ViSQOL and SNR and negative LSD differences favour the candidate.

With ``--by-voice`` each domain is also broken down by the clip path's source and, where the
clip lies in a folder below it, that first folder (``val/klettres-data/tn/...``:
``klettres-data/tn``, a voice; ``val/hydrogen-drumkits/KIT/...``: a kit).

Run from the repository root:
``python docs/sr_paired.py BASE.json CANDIDATE.json [CANDIDATE.json ...] [--by-voice]``, each written by
``rtgan eval --checkpoint CKPT --data CORPUS --split val --limiter soxr --json FILE``.
"""
import argparse
import json

from rtgan.evaluate import confidence_interval

METRICS = ("visqol", "snr_db", "lsd")


def clips_by_path(path: str) -> dict[str, dict]:
    """The ``clips`` of an ``rtgan eval --json`` file keyed by corpus path."""
    with open(path) as f:
        return {c["path"]: c for c in json.load(f)["clips"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="rtgan eval --json file of the reference checkpoint")
    ap.add_argument("candidates", nargs="+", help="rtgan eval --json files of the checkpoints compared with it")
    ap.add_argument("--by-voice", action="store_true", help="also one line per source/folder of each domain")
    args = ap.parse_args()
    base = clips_by_path(args.base)
    for path in args.candidates:
        cand = clips_by_path(path)
        print(path)
        shared = [k for k in cand if k in base]
        if not shared:
            raise SystemExit(f"{path}: no clip in common with {args.base}")
        limiters = sorted(set(cand[shared[0]]["limiters"]) & set(base[shared[0]]["limiters"]))
        for lim in limiters:
            for dom in sorted({cand[k]["domain"] for k in shared}):
                keys = [k for k in shared if cand[k]["domain"] == dom]
                print(f"  {lim:8s} {dom:7s} n={len(keys):4d}  " + row(base, cand, keys, lim))
                if args.by_voice:
                    for voice in sorted({group(k) for k in keys}):
                        sub = [k for k in keys if group(k) == voice]
                        print(f"    {voice:30s} n={len(sub):4d}  " + row(base, cand, sub, lim))


def group(path: str) -> str:
    """``source/folder`` of a corpus clip path ``split/source/folder/.../clip.flac``, else ``source``."""
    parts = path.split("/")
    return "/".join(parts[1:3]) if len(parts) > 3 else parts[1]


def row(base: dict, cand: dict, keys: list[str], lim: str) -> str:
    """Paired mean difference ± 95 % interval of every metric over ``keys``."""
    cells = []
    for met in METRICS:
        ci = confidence_interval([cand[k]["limiters"][lim]["model"][met]
                                  - base[k]["limiters"][lim]["model"][met] for k in keys])
        half = "n/a" if ci["ci95"] is None else f"{ci['ci95']:.3f}"
        cells.append(f"{met} {ci['mean']:+.3f} ± {half}")
    return "  ".join(cells)


if __name__ == "__main__":
    main()
