"""Calibrate the level of the band a super-resolution model generates, on the validation split.

sr-hifigan's output is ``y_hat = x + g r`` with ``r = tanh(f(x))`` (see
:class:`rtgan.models.sr_hifigan.SRHiFiGANConfig.residual_gain`). Above 8 kHz the phase of
the original is mostly unpredictable: a band of the right level whose phase is uncorrelated
with the original's doubles the error energy there, so a full-level band costs SNR (about
3 dB where that band is 1 % of the energy), while a band that is too quiet sounds dull and
costs LSD and ViSQOL. ``g`` trades the two; it is chosen here, after training, on the
validation split only.

For one clip the SNR of ``x + g r`` against the target ``y`` is a closed form in ``g``: with
``e = y - x``, ``||y - x - g r||^2 = ||e||^2 - 2 g <e, r> + g^2 ||r||^2``, so a whole grid of
gains costs one model pass per clip. The rule: the largest ``g`` of the grid whose mean SNR
per domain (music, speech) stays at least ``spline SNR - margin_db`` for every band-limiter
given, where ``spline`` is the cubic-spline baseline of :mod:`rtgan.evaluate`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .audio.bandlimit import band_limit
from .audio.degrade import spline_upsample
from .data.dataset import evenly_spaced, load_manifest, voice_group
from .engine.overlap_save import context, offline
from .metrics import snr

__all__ = ["DEFAULT_EQ_BANDS_HZ", "DEFAULT_GAINS", "balanced_pick", "calibrate_residual_gain", "calibrate_xfer_gain",
           "envelope_targets", "eq_points", "fit_envelope", "match_residual_eq", "with_eq", "with_mirror"]

#: Gains tried, 0.05 to 1 in steps of 0.05.
DEFAULT_GAINS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))


#: Band edges (Hz) of the matching EQ: the band an 8 kHz-limited input lacks, in six parts.
DEFAULT_EQ_BANDS_HZ: tuple[float, ...] = (7500.0, 9000.0, 11000.0, 13500.0, 16500.0, 20000.0, 24000.0)


def eq_points(target_energy: np.ndarray, residual_energy: np.ndarray, edges: tuple[float, ...] = DEFAULT_EQ_BANDS_HZ,
              max_boost_db: float = 6.0, stop_hz: float = 7000.0) -> tuple[tuple[float, float], ...]:
    """A matching-EQ curve from per-band energies of the original and of the generated band.

    For band ``b`` (between ``edges[b]`` and ``edges[b + 1]``) the gain that brings the
    generated band to the original's level in a typical clip is
    ``a_b = sqrt(median_c(E_cb / R_cb))`` over clips ``c`` (the median, not the mean, so a few
    clips with an empty band do not set it). The curve is ``a_b / a_0`` (the first band, where
    the original's energy above the input's band mostly is, stays at 1, and the overall level
    is left to :func:`calibrate_residual_gain`), capped at ``max_boost_db`` above the first
    band, placed at each band's centre, with gain 0 up to ``stop_hz`` (the input's own band:
    the EQ keeps the generated signal out of it).

    Args:
        target_energy: ``(clips, bands)`` energy of the original minus the band-limited input per band.
        residual_energy: ``(clips, bands)`` energy of the model's residual per band.
        edges: ``bands + 1`` increasing band edges in Hz, the first above ``stop_hz``.
        max_boost_db: largest gain (dB) of any band relative to the first.
        stop_hz: the curve is 0 from 0 Hz to here.

    Returns:
        ``((0, 0), (stop_hz, 0), (centre_0, 1), (centre_1, a_1 / a_0), ...)``: points for
        :attr:`rtgan.models.sr_hifigan.SRHiFiGANConfig.residual_eq`.

    Raises:
        ValueError: shapes that do not match the edges, edges not increasing or not above ``stop_hz``.
    """
    te, re_ = np.asarray(target_energy, np.float64), np.asarray(residual_energy, np.float64)
    nb = len(edges) - 1
    if te.ndim != 2 or te.shape != re_.shape or te.shape[1] != nb or te.shape[0] == 0:
        raise ValueError(f"energies must both be (clips, {nb}), got {te.shape} and {re_.shape}")
    if any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] <= stop_hz:
        raise ValueError(f"band edges must increase from above stop_hz ({stop_hz:g} Hz), got {edges}")
    tiny = 1e-20
    a = np.sqrt(np.median((te + tiny) / (re_ + tiny), axis=0))
    rel = np.minimum(a / a[0], 10 ** (max_boost_db / 20))
    centres = [(lo + hi) / 2 for lo, hi in zip(edges[:-1], edges[1:])]
    return ((0.0, 0.0), (float(stop_hz), 0.0)) + tuple((float(f), round(float(g), 4)) for f, g in zip(centres, rel))


def with_eq(model, points):
    """A copy of an sr-hifigan ``model`` with ``residual_eq = points`` (same weights; ``()``: none)."""
    return _with_config(model, residual_eq=tuple(points))


@torch.no_grad()
def match_residual_eq(model, corpus: str | Path, split: str = "val", limiters: tuple[str, ...] = ("soxr", "kaiser"),
                      edges: tuple[float, ...] = DEFAULT_EQ_BANDS_HZ, max_boost_db: float = 6.0,
                      min_bandwidth_hz: float = 16000.0, max_clips: int | None = None, progress: bool = True) -> dict:
    """Measure a matching EQ for ``model``'s generated band on ``split`` (see :func:`eq_points`).

    Per clip and band-limiter, the original's energy above the input (``y - x``) and the
    residual's (``model(x) - x``, with any EQ and mirror the model carries removed) are summed
    per band of ``edges`` (FFT bins); :func:`eq_points` turns them into the curve.

    Returns:
        ``{"points": curve, "edges", "max_boost_db", "split", "limiters", "clips",
        "level_db": {domain: per-band median level of the residual relative to the original,
        dB, before the EQ}}``.

    Raises:
        ValueError: no usable clip (see :func:`calibrate_residual_gain`).
    """
    plain = (_with_config(model, residual_eq=(), mirror_gain=0.0)
             if model.config.residual_eq or model.config.mirror_gain else model.eval())
    rows = _sr_rows(plain, corpus, split, min_bandwidth_hz, max_clips)
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"EQ on {split}", unit="clip", dynamic_ncols=True)
    te, re_, doms = [], [], []
    for r in it:
        y, _ = sf.read(Path(corpus) / r["path"], dtype="float32", always_2d=True)
        y = np.ascontiguousarray(y.mean(axis=1))
        f = np.fft.rfftfreq(len(y), 1.0 / plain.sample_rate_out)
        bands = [(f >= lo) & (f < hi) for lo, hi in zip(edges[:-1], edges[1:])]
        bands[-1] |= f >= edges[-1]
        for lim in limiters:
            x48, _ = band_limit(lim, y)
            res = offline(plain, torch.from_numpy(x48)[None, None])[0, 0].numpy().astype(np.float64) - x48
            pe = np.abs(np.fft.rfft(y.astype(np.float64) - x48)) ** 2
            pr = np.abs(np.fft.rfft(res)) ** 2
            te.append([pe[b].sum() for b in bands])
            re_.append([pr[b].sum() for b in bands])
            doms.append(r["domain"])
    te, re_ = np.asarray(te), np.asarray(re_)
    level = 10 * np.log10((re_ + 1e-20) / (te + 1e-20))
    return {"points": eq_points(te, re_, edges, max_boost_db), "edges": list(edges), "max_boost_db": max_boost_db,
            "split": split, "limiters": list(limiters), "clips": len(rows),
            "level_db": {d: [round(float(v), 2) for v in np.median(level[np.asarray(doms) == d], axis=0)]
                         for d in sorted(set(doms))}}


def envelope_targets(y: np.ndarray, r: np.ndarray, sample_rate: int, bandwidth_hz: float, window: int,
                     clip: tuple[float, float] = (-12.0, 6.0)) -> np.ndarray:
    """The oracle log gain of a generated band: ``log(E_y'(t) / E_r'(t))`` per sample.

    ``y'`` and ``r'`` are the original ``y`` and the generated band ``r`` (both ``(samples,)``)
    above ``bandwidth_hz`` (8th-order Butterworth high-pass, forward-backward: zero phase);
    ``E_s(t)`` is the mean of ``s^2`` over ``window`` samples centred on ``t`` (plus 1e-12).
    ``sqrt(exp(.))`` of it is the factor that brings ``r``'s short-term level above the
    input's band to the original's (what :class:`.models.layers.envelope.EnvelopeGain`
    estimates causally). Clipped to ``clip`` (a silent original or band gives no finite target).

    Raises:
        ValueError: shapes differ, or ``bandwidth_hz`` not below the Nyquist frequency.
    """
    from scipy import signal
    from scipy.ndimage import uniform_filter1d

    y, r = np.asarray(y, np.float64), np.asarray(r, np.float64)
    if y.shape != r.shape or y.ndim != 1:
        raise ValueError(f"y and r must be (samples,) of one length, got {y.shape} and {r.shape}")
    if not 0 < bandwidth_hz < sample_rate / 2:
        raise ValueError(f"bandwidth_hz must be in (0, {sample_rate / 2}), got {bandwidth_hz}")
    sos = signal.butter(8, bandwidth_hz, "highpass", fs=sample_rate, output="sos")
    e = [uniform_filter1d(signal.sosfiltfilt(sos, s) ** 2, window, mode="nearest") + 1e-12 for s in (y, r)]
    return np.clip(np.log(e[0]) - np.log(e[1]), *clip)


def _plain(model):
    """``model``'s network with gain 1 and no EQ, envelope head or mirror: ``model(x) - x = tanh(f(x))``."""
    return _with_config(model, residual_gain=1.0, residual_eq=(), envelope_hidden=0, mirror_gain=0.0)


def fit_envelope(model, corpus: str | Path, hidden: int = 32, clips_per_domain: int = 400, seconds: float = 6.0,
                 steps: int = 6000, batch: int = 512, lr: float = 1e-3, seed: int = 0, min_level_db: float = -70.0,
                 holdout_every: int = 5, min_bandwidth_hz: float = 16000.0, balance: str | None = None,
                 progress: bool = True):
    """Fit an envelope head (:class:`.models.layers.envelope.EnvelopeGain`) for an sr-hifigan ``model``.

    Data: up to ``clips_per_domain`` train-split clips per domain, with ``balance`` ``"split_key"``
    shared out equally over their groups (:func:`balanced_pick`: the voice of a speech clip, the
    piece or kit of a music clip), with ``None`` evenly spaced in manifest order,
    the first ``seconds`` of each, band-limited by the training band-limiters
    (:func:`.models.sr_hifigan_training.train_degradations`, seeded: never an evaluation one).
    Per clip the network's band ``r = tanh(f(x))`` is made, the head's causal features of
    ``(x, r)`` are taken every ``window`` samples (the head's short window, 10 ms) where the
    input's level over that window is above ``min_level_db`` dBFS, with the target of
    :func:`envelope_targets` there. The MLP is fitted by least squares (Adam, ``steps``
    mini-batches of ``batch`` frames, each drawn from one domain, the domains equally often), the feature
    standardisation folded into its first layer. Every ``holdout_every``-th clip of a domain is
    held out and scored (R^2 of the log gain), not trained on.

    Returns:
        ``(new_model, report)``: a copy of ``model`` with ``envelope_hidden = hidden`` and the
        fitted head (the rest of its config and weights unchanged); ``report`` has the
        clips, frames, held-out R^2 per domain and overall, and the settings.

    Raises:
        ValueError: no usable train clip, a domain without frames above the level floor, or bad settings.
    """
    from .audio.degrade import degrade
    from .models.layers.envelope import N_FEATURES, EnvelopeGain
    from .models.sr_hifigan_training import train_degradations

    if balance not in (None, "split_key"):
        raise ValueError(f"fit_envelope: balance must be None or 'split_key', got {balance!r}")
    if hidden < 1 or clips_per_domain < 1 or seconds <= 0 or steps < 1 or batch < 1 or holdout_every < 2:
        raise ValueError("fit_envelope: need hidden >= 1, clips_per_domain >= 1, holdout_every >= 2, seconds > 0, "
                         f"steps >= 1, batch >= 1; got {hidden}, {clips_per_domain}, {holdout_every}, {seconds}, "
                         f"{steps}, {batch}")
    plain = _plain(model)
    c = model.config
    rate = plain.sample_rate_in
    head = EnvelopeGain(rate, c.input_bandwidth_hz, hidden, plain.total_stride, c.envelope_max_gain)
    win = head.short
    rows_all = _sr_rows(plain, corpus, "train", min_bandwidth_hz, None)
    rows = []
    domains = sorted({r["domain"] for r in rows_all})
    for domain in domains:
        dr = [r for r in rows_all if r["domain"] == domain]
        rows += balanced_pick(dr, clips_per_domain) if balance else _evenly(dr, clips_per_domain)
    rng = np.random.default_rng(seed)
    degs = train_degradations()
    data = {(d, h): ([], []) for d in domains for h in (False, True)}
    count = {d: 0 for d in domains}
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc="envelope data (train)", unit="clip", dynamic_ncols=True)
    for row in it:
        y, _ = sf.read(Path(corpus) / row["path"], dtype="float32", always_2d=True, frames=int(seconds * rate))
        y = np.ascontiguousarray(y.mean(axis=1))
        x = degrade(y, rate, degs[int(rng.integers(len(degs)))], rng=rng)
        x = np.pad(x, (0, -len(x) % plain.total_stride))  # whole frames for the level reference
        y = np.pad(y, (0, len(x) - len(y)))
        xt = torch.from_numpy(x)[None, None]
        with torch.no_grad():
            rt = offline(plain, xt) - xt
            feats = head.features(xt, rt)[0].numpy()
        t = envelope_targets(y, rt[0, 0].numpy(), rate, c.input_bandwidth_hz, win)
        idx = np.arange(win - 1, len(x), win)
        cm = np.cumsum(np.concatenate([[0.0], x.astype(np.float64) ** 2]))
        level = 10 * np.log10((cm[idx + 1] - cm[np.maximum(idx + 1 - win, 0)]) / win + 1e-12)
        keep = idx[level > min_level_db]
        held = count[row["domain"]] % holdout_every == holdout_every - 1
        count[row["domain"]] += 1
        data[(row["domain"], held)][0].append(feats[:, keep].T)
        data[(row["domain"], held)][1].append(t[keep])
    cat = {k: (np.concatenate(f) if f else np.zeros((0, N_FEATURES)), np.concatenate(t) if t else np.zeros(0))
           for k, (f, t) in data.items()}
    train = [cat[(d, False)] for d in domains]
    if any(len(t) == 0 for _, t in train):
        raise ValueError("fit_envelope: a domain has no frames above the level floor")
    mlp, mean, std, losses = _fit_mlp(train, hidden, steps, batch, lr, seed)
    r2 = {}
    with torch.no_grad():
        for d in domains:
            f, t = cat[(d, True)]
            if len(t) and np.var(t) > 0:
                p = mlp(torch.tensor((f - mean) / std, dtype=torch.float32))[:, 0].numpy()
                r2[d] = round(float(1 - np.mean((t - p) ** 2) / np.var(t)), 4)
    new = _with_config(plain, residual_gain=c.residual_gain, residual_eq=c.residual_eq, envelope_hidden=hidden,
                       mirror_gain=c.mirror_gain)
    lin = [m for m in mlp if isinstance(m, torch.nn.Linear)]
    new.envelope.set_mlp([(m.weight.detach(), m.bias.detach()) for m in lin], torch.tensor(mean), torch.tensor(std))
    report = {"hidden": hidden, "clips": {d: count[d] for d in count}, "seconds": seconds, "steps": steps,
              "batch": batch, "lr": lr, "seed": seed, "min_level_db": min_level_db, "holdout_every": holdout_every,
              "frames": {d: int(len(cat[(d, False)][1])) for d in domains},
              "holdout_r2": r2, "final_loss": round(float(np.mean(losses[-200:])), 4),
              "first_loss": round(float(np.mean(losses[:50])), 4), "limiters": "train_degradations() (seeded)",
              "balance": balance}
    return new.eval(), report


def _evenly(items: list, n: int) -> list:
    """Up to ``n`` of ``items``, evenly spaced in their order (all of them if ``n >= len(items)``)."""
    return [items[i] for i in evenly_spaced(len(items), n)]


def balanced_pick(rows: list[dict], n: int) -> list[dict]:
    """Up to ``n`` manifest rows shared out equally over their voices and pieces
    (:func:`rtgan.data.dataset.voice_group`; water-filling).

    Every group gets ``min(len(group), q)`` rows, evenly spaced in manifest order, with ``q`` the
    largest quota whose total is at most ``n``; what is left of ``n`` goes one row at a time to
    the groups that still have rows, in order of first appearance; a row without a ``split_key`` is
    a group of its own. A corpus whose speech is half one voice (the train split's full-band
    speech: 492 of 954 clips) then gives every voice its share instead of that voice half.
    Order of the result: manifest order.

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"balanced_pick: n must be >= 1, got {n}")
    groups: dict[tuple[str | None, str], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(voice_group(r), []).append(i)
    sizes = [len(g) for g in groups.values()]
    q = 0
    while q < max(sizes, default=0) and sum(min(s, q + 1) for s in sizes) <= n:
        q += 1
    quota = {k: min(len(g), q) for k, g in groups.items()}
    left = n - sum(quota.values())
    for k, g in groups.items():
        if left and quota[k] < len(g):
            quota[k] += 1
            left -= 1
    return [rows[i] for i in sorted(i for k, g in groups.items() for i in _evenly(g, quota[k]))]


def _fit_mlp(train: list[tuple[np.ndarray, np.ndarray]], hidden: int, steps: int, batch: int, lr: float, seed: int):
    """Least squares of the envelope head's MLP on standardised features.

    ``train``: per domain, ``(features (frames, N_FEATURES), targets (frames,))``; each Adam step
    draws ``batch`` frames of one domain, the domains equally often. Returns ``(mlp, mean, std,
    losses)``: the fitted ``torch.nn.Sequential`` of Linear layers (input ``(f - mean) / std``)
    and the loss of every step.
    """
    from .models.layers.envelope import N_FEATURES

    fx = np.concatenate([f for f, _ in train])
    mean, std = fx.mean(axis=0), fx.std(axis=0) + 1e-6
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(N_FEATURES, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.GELU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(mlp.parameters(), lr)
    tens = [(torch.tensor((f - mean) / std, dtype=torch.float32), torch.tensor(t, dtype=torch.float32))
            for f, t in train]
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        f, t = tens[int(torch.randint(len(tens), (1,), generator=gen))]
        i = torch.randint(len(t), (batch,), generator=gen)
        loss = torch.mean((mlp(f[i])[:, 0] - t[i]) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return mlp, mean, std, losses


def _sr_rows(model, corpus, split, min_bandwidth_hz, max_clips) -> list[dict]:
    """Manifest rows of ``split`` at the model's rate with bandwidth >= ``min_bandwidth_hz``; ValueError if none."""
    rows = [r for r in load_manifest(corpus) if r["split"] == split and int(r["sample_rate"]) == model.sample_rate_in
            and float(r["bandwidth_hz"]) >= min_bandwidth_hz]
    rows = rows[:max_clips] if max_clips is not None else rows
    if not rows:
        raise ValueError(f"no {split} clips at {model.sample_rate_in} Hz in {corpus}")
    return rows


@torch.no_grad()
def calibrate_residual_gain(model, corpus: str | Path, split: str = "val", limiters: tuple[str, ...] = ("soxr", "kaiser"),
                            margin_db: float = 0.15, gains: tuple[float, ...] = DEFAULT_GAINS,
                            min_bandwidth_hz: float = 16000.0, max_clips: int | None = None,
                            progress: bool = True) -> dict:
    """Choose ``residual_gain`` for ``model`` (see the module docstring).

    Args:
        model: an sr-hifigan generator (any ``residual_gain``; its residual is rescaled to 1). A
            band mirror it carries (``mirror_gain``) keeps its level: ``g`` scales the rest.
        corpus: corpus directory; clips of ``split`` at 48 kHz with bandwidth >= ``min_bandwidth_hz``.
        limiters: band-limiters of :mod:`rtgan.audio.bandlimit` the rule must hold for.
        margin_db: how far (dB) below the spline baseline's mean SNR a domain may fall.
        gains: candidate gains, each in (0, 4].

    Returns:
        ``{"gain": chosen g, "rule": str, "table": {limiter: {domain: {"spline_snr_db",
        "input_snr_db", "snr_db_by_gain": {g: mean SNR}}}}, "clips": n}``. ``gain`` is ``None``
        when no candidate satisfies the rule.

    Raises:
        ValueError: no usable clip, bad gains.
    """
    if not gains or any(not 0 < g <= 4 for g in gains):
        raise ValueError(f"gains must be in (0, 4], got {gains}")
    g0 = float(model.config.residual_gain)
    if g0 <= 0:
        raise ValueError("the model's residual_gain is 0: nothing to calibrate")
    rows = _sr_rows(model, corpus, split, min_bandwidth_hz, max_clips)
    model = model.eval()
    unmirrored = _with_config(model, mirror_gain=0.0) if model.mirror is not None else model
    gains_arr = np.asarray(sorted(gains), dtype=np.float64)
    per: dict[tuple[str, str], dict[str, list]] = {}
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc=f"calibrate on {split}", unit="clip", dynamic_ncols=True)
    for r in it:
        y, _ = sf.read(Path(corpus) / r["path"], dtype="float32", always_2d=True)
        y = np.ascontiguousarray(y.mean(axis=1))
        for lim in limiters:
            x48, x16 = band_limit(lim, y)
            res = (offline(unmirrored, torch.from_numpy(x48)[None, None])[0, 0].numpy() - x48).astype(np.float64) / g0
            # the mirror a M(x), if any, keeps its level: g does not scale it, so it joins the input
            e = y.astype(np.float64) - x48 - (_mirror_term(model, x48) if model.mirror is not None else 0.0)
            ee, er, rr, yy = e @ e, e @ res, res @ res, float(y.astype(np.float64) @ y)
            err = ee - 2 * gains_arr * er + gains_arr ** 2 * rr
            spline = spline_upsample(x16, 3)[: len(y)]
            spline = np.pad(spline, (0, len(y) - len(spline)))
            d = per.setdefault((lim, r["domain"]), {"snr": [], "spline": [], "input": []})
            eps = 1e-12  # the floor of rtgan.metrics.snr
            d["snr"].append(10 * np.log10((yy + eps) / (err + eps)))
            d["spline"].append(float(snr(spline, y)))
            d["input"].append(float(snr(x48, y)))
    table: dict[str, dict] = {}
    ok = np.ones_like(gains_arr, dtype=bool)
    for (lim, domain), d in sorted(per.items()):
        mean_snr = np.mean(np.stack(d["snr"]), axis=0)
        spline_snr, input_snr = float(np.mean(d["spline"])), float(np.mean(d["input"]))
        ok &= mean_snr >= spline_snr - margin_db
        table.setdefault(lim, {})[domain] = {
            "clips": len(d["spline"]), "spline_snr_db": spline_snr, "input_snr_db": input_snr,
            "snr_db_by_gain": {f"{g:g}": float(s) for g, s in zip(gains_arr, mean_snr)}}
    chosen = float(gains_arr[ok].max()) if ok.any() else None
    return {"gain": chosen, "split": split, "limiters": list(limiters), "margin_db": margin_db,
            "rule": f"largest gain whose mean SNR per domain is >= spline SNR - {margin_db} dB for "
                    f"{', '.join(limiters)} on the {split} split", "table": table, "clips": len(rows)}


@torch.no_grad()
def calibrate_xfer_gain(model, pairs_root: str | Path, split: str = "val", margin_db: float = 0.3,
                        gains: tuple[float, ...] = DEFAULT_GAINS, max_crops: int | None = None, batch: int = 16,
                        progress: bool = True) -> dict:
    """Choose the output level ``g`` of an instrument-transfer model on the validation split.

    An xfer generator outputs ``y_hat = g r`` with ``r = tanh(f(x))`` (``residual_gain``; no
    input skip). A target instrument's waveform is not predictable in phase from the input's
    (a violin and a piano playing the same notes are not phase-locked), so an output of the
    target's level whose phase is uncorrelated with it has an SNR (Alahi et al. 2020 eq. 24)
    near -3 dB, below the input's; a spectrally faithful output a few dB quieter keeps most of
    its LSD (eq. 25) and beats the input's SNR. For one crop, with ``<.,.>`` over its samples,
    ``||y - g r||^2 = ||y||^2 - 2 g <y, r> + g^2 ||r||^2``: one model pass per crop scores the
    whole grid. The rule: the largest ``g`` of ``gains`` whose mean SNR over the crops is at
    least the input's mean SNR + ``margin_db``.

    Args:
        model: an xfer generator (any ``residual_gain`` > 0; its output is rescaled to ``g = 1``).
        pairs_root: a pair set with the model's target program; the crops are
            :func:`rtgan.evaluate_xfer.evaluate_xfer`'s grid of ``split``.
        margin_db: how far (dB) above the input's mean SNR the output's must be.
        gains: candidate gains, each in (0, 4].
        max_crops: use the first N crops only.

    Returns:
        ``{"gain": chosen g or None, "rule", "split", "margin_db", "crops", "input_snr_db",
        "snr_db_by_gain": {g: mean SNR}}``.

    Raises:
        ValueError: not an xfer model, bad gains, no crop.
    """
    from .data.pairs import PairDataset
    from .evaluate_xfer import CROP, check_xfer_model, grid_batch
    from .metrics import SNR_EPS
    check_xfer_model(model)
    if not gains or any(not 0 < g <= 4 for g in gains):
        raise ValueError(f"gains must be in (0, 4], got {gains}")
    g0 = float(model.config.residual_gain)
    if g0 <= 0:
        raise ValueError("the model's residual_gain is 0: nothing to calibrate")
    ds = PairDataset(Path(pairs_root), split, int(model.config.target_program), crop=CROP, random_crop=False)
    n = len(ds) if max_crops is None else min(len(ds), int(max_crops))
    if n == 0:
        raise ValueError(f"no {split} crops in {pairs_root}")
    model = model.eval()
    gains_arr = np.asarray(sorted(gains), dtype=np.float64)
    out_snr, in_snr = [], []
    cache: dict = {}
    it = range(0, n, batch)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"calibrate on {split}", unit="batch", dynamic_ncols=True)
    for lo in it:
        xb, yb, _ = grid_batch(ds, range(lo, min(lo + batch, n)), cache)
        r = model(torch.from_numpy(xb)[:, None])[:, 0].double().numpy() / g0
        y = yb.astype(np.float64)
        yy, yr, rr = (y * y).sum(1), (y * r).sum(1), (r * r).sum(1)
        err = yy[:, None] - 2 * gains_arr[None] * yr[:, None] + gains_arr[None] ** 2 * rr[:, None]
        out_snr.append(10 * np.log10((yy[:, None] + SNR_EPS) / (np.maximum(err, 0.0) + SNR_EPS)))
        in_snr.append(np.asarray(snr(xb.astype(np.float64), y), dtype=np.float64))
    mean_snr = np.concatenate(out_snr).mean(axis=0)
    input_snr = float(np.concatenate(in_snr).mean())
    ok = mean_snr >= input_snr + margin_db
    return {"gain": float(gains_arr[ok].max()) if ok.any() else None, "split": split, "margin_db": margin_db,
            "rule": f"largest gain whose mean SNR over the {split} crops is >= the input's + {margin_db} dB",
            "crops": n, "input_snr_db": input_snr,
            "snr_db_by_gain": {f"{g:g}": float(v) for g, v in zip(gains_arr, mean_snr)}}


def _mirror_term(model, x: np.ndarray) -> np.ndarray:
    """``a M(x)`` of an sr-hifigan ``model`` with a mirror, ``(samples,)``, in the framing of
    :func:`offline` (whose padded left context the mirror's sample count starts at), without
    running the network."""
    left = context(model)[0]
    with torch.no_grad():
        m = model.mirror(torch.nn.functional.pad(torch.from_numpy(x)[None, None], (left, 0)))
    return model.config.mirror_gain * m[0, 0, left:].double().numpy()


def with_mirror(model, level: float):
    """A copy of an sr-hifigan ``model`` with ``mirror_gain = level`` (same weights; 0: no mirror).

    Raises:
        ValueError: ``level`` outside [0, 4], or a band the mirror has no whole period for.
    """
    return _with_config(model, mirror_gain=float(level))


def with_gain(model, gain: float):
    """A copy of ``model`` (sr-hifigan or xfer) with ``residual_gain = gain`` (same weights)."""
    return _with_config(model, residual_gain=float(gain))


def _with_config(model, **changes):
    """A copy of ``model`` built from its config with ``changes`` replaced, same weights, eval mode.

    Every weight is copied strictly, except an envelope head's (sr-hifigan ``envelope_hidden``):
    a copy without a head drops it, a copy with a new head starts it unfitted (``G = 1``).

    Raises:
        ValueError: the weights outside the envelope head do not match.
    """
    from .models import registry

    m = registry.build_from_config(model.name, dataclasses.replace(model.config, **changes))
    own = set(m.state_dict())
    state = {k: v for k, v in model.state_dict().items() if k in own or not k.startswith("envelope.")}
    res = m.load_state_dict(state, strict=False)
    if res.unexpected_keys or any(not k.startswith("envelope.") for k in res.missing_keys):
        raise ValueError(f"weights do not match the changed config: {res}")
    return m.eval()
