"""``rtgan train``, ``rtgan calibrate`` and ``rtgan eval``: train a model, calibrate it, evaluate it on a corpus."""
from __future__ import annotations

import dataclasses
import json
import os
import logging
import sys
from pathlib import Path

from . import common


def add_parsers(sub) -> None:
    """The ``train``, ``calibrate`` and ``eval`` commands."""
    from ..models.registry import WEIGHTS_DIR
    from ..models.sr16_content_training import ContentLossSettings
    from ..training.config import DEFAULT_PRESETS, PRESETS as TRAIN_PRESETS, RECIPES

    def per_preset(field: str) -> str:
        return "default: " + ", ".join(f"{k} {getattr(v, field)}" for k, v in TRAIN_PRESETS.items())

    def per_recipe(field: str) -> str:
        return "default: " + ", ".join(f"{k} {getattr(v, field):g}" for k, v in RECIPES.items())

    t = sub.add_parser("train", help="train a model")
    t.add_argument("model", help="registered model name, e.g. sr-hifigan")
    t.add_argument("--data", required=True, help="corpus directory (from 'rtgan data build')")
    t.add_argument("--preset",
                   help=f"model/training preset of the model's recipe (default: {', or '.join(DEFAULT_PRESETS)}, "
                        f"or the model's first preset; sr-hifigan: {', '.join(TRAIN_PRESETS)})")
    from ..models.voc_melgan_training import VOCODER_RECIPES
    t.add_argument("--recipe", choices=tuple(dict.fromkeys((*RECIPES, *VOCODER_RECIPES))),
                   help="loss recipe of models that have variants (default: the preset's). sr-hifigan: bwe (its "
                        "default) = MR-STFT + feature matching + LSGAN + L_time + L_flat; paper = the seed's 1e-3 "
                        "L_adv + 1e-3 L_flat + L_time (Coldenhoff & Ren). Vocoders: paper = seed 003's adversarial "
                        "+ 10 x feature matching; fast (CPU presets) = paper + 45 x log-mel L1 after a "
                        "1000-step reconstruction warm-up")
    t.add_argument("--steps", type=int, help=f"total optimiser steps ({per_preset('steps')})")
    t.add_argument("--batch-size", type=int, help=f"items per step ({per_preset('batch_size')})")
    t.add_argument("--lr", type=float, metavar="RATE",
                   help="Adam(W) learning rate of every trained network (default: the preset's; sr-hifigan "
                        f"{TRAIN_PRESETS['live'].lr:g}, sr16 and the vocoders 1e-4 as their seeds)")
    t.add_argument("--segment-samples", type=int,
                   help=f"training segment length in samples ({per_preset('segment_samples')})")
    t.add_argument("--discriminator", choices=("auto", "full", "small", "tiny"), default="auto",
                   help="discriminator width (sr-hifigan: HiFi-GAN MPD+MSD; vocoders: their own): full (paper), "
                        "small (CPU-sized) or tiny; auto (default): full on CUDA, small on CPU (tiny for the tiny "
                        "preset)")
    t.add_argument("--no-adversarial", action="store_true", help="reconstruction losses only")
    t.add_argument("--adv-start", type=int,
                   help=f"steps of reconstruction-only training before the GAN terms (default: bwe {TRAIN_PRESETS['live'].adv_start_step}, paper 0)")
    t.add_argument("--time-lowpass", type=float, metavar="HZ",
                   help="sr-hifigan: the time-domain MSE (L_time) sees only the band below HZ "
                        "(the original's phase above the input's band is unpredictable; default 0: "
                        "the whole waveform, as in the seed)")
    t.add_argument("--stable-steps", type=int, metavar="STEPS",
                   help="reverbsynth: generator steps at each resolution of the progressive growth "
                        "(default: paper 12500, small 300)")
    t.add_argument("--transition-steps", type=int, metavar="STEPS",
                   help="reverbsynth: generator steps over which each new resolution fades in (default: paper "
                        "12500, small 300); with --init-from a grown generator, --stable-steps 1 "
                        "--transition-steps 0 reaches full size after one step per stage")
    t.add_argument("--disc-warmup", type=int, metavar="STEPS",
                   help="the last STEPS of those also train the discriminators, whose gradient does not yet reach the "
                        "generator: fresh discriminators facing an --init-from generator learn to judge it first "
                        "(sr-hifigan, reverb models; reverbsynth: the last STEPS of --recon-warmup; default 0)")
    for name, field_name, what in (("adv", "adv", "LSGAN generator loss"), ("flat", "flat", "spectral-flatness loss"),
                                   ("time", "time", "time-domain MSE"), ("stft", "stft", "multi-resolution STFT loss"),
                                   ("mel", "mel", "mel L1 loss"), ("fm", "feature_matching", "feature-matching loss")):
        xfer = {"adv": "; xfer-* g4: 1, its WGAN critic's score", "stft": "; xfer-*: 0, a term beyond seed 001"}
        t.add_argument(f"--lambda-{name}", type=float,
                       help=f"weight of the {what} ({per_recipe(field_name)}{xfer.get(name, '')})")
    content = ContentLossSettings()
    t.add_argument("--lambda-content", type=float, metavar="FLOAT",
                   help="weight lambda_c (unitless) of the content loss (mean squared distance of the frozen "
                        "content network's bottleneck features of output and target) in the generator loss; models "
                        f"with a content loss only, e.g. sr16-unet-c (default: {content.content_weight:g})")
    t.add_argument("--lambda-recon", type=float, metavar="FLOAT",
                   help="reverbsynth: weight of an L1 term between each generated IF-Mel image and the real one of "
                        "the same pitch and label, beyond seed 004 (pix2pix's L1; default: 0)")
    t.add_argument("--recon-warmup", type=int, metavar="STEPS",
                   help="reverbsynth: the first STEPS generator steps train on that L1 term alone, without the "
                        "critic (a regression warm start; needs --lambda-recon; default: 0)")
    t.add_argument("--content-net-sha256", metavar="HEX",
                   help="content hash (64 hex digits) of the frozen content network's checkpoint "
                        f"({content.content_net}.safetensors in --weights-dir), "
                        "rtgan.training.frozen.content_hash(PATH) of it; models with a content loss only "
                        "(default: none, and training refuses to start without it)")
    t.add_argument("--loss", choices=("g1", "g2", "g3", "g4"),
                   help="xfer-* models: seed 001's composite loss (Table I): g1 L_time, g2 + 10 L_freq, g3 + 0.1 L_ae "
                        "(needs --content-net-sha256), g4 + L_adv against the WGAN-GP critic (default: g1)")
    t.add_argument("--pairs-program", type=int, metavar="PROGRAM",
                   help="ae-kimsathe: train on a pair set (--data from 'rtgan data pairs') for this target GM program, "
                        "input and target crops alternately (seed 001 Sec. V-A); --segment-samples is then samples "
                        "at 16 kHz, e.g. 8192 (default: corpus clips)")
    t.add_argument("--freq-scale", choices=("none", "window", "energy", "fft"),
                   help="xfer-* g2: STFT scaling of L_freq (eq. 16); energy divides by sqrt(sum w^2), which makes "
                        "lambda_f = 10 comparable to L_time on the pair set as the seed intends (default: energy)")
    t.add_argument("--weights-dir", metavar="DIR",
                   help="directory the frozen networks' checkpoints (NAME.safetensors + NAME.json) are loaded from, "
                        "e.g. the run directory of a trained ae-kimsathe; models whose training has frozen networks "
                        f"only (default: the shipped weights, {WEIGHTS_DIR})")
    t.add_argument("--min-bandwidth", type=float,
                   help=f"use only target clips at least this wide, in Hz ({per_preset('min_bandwidth_hz')})")
    t.add_argument("--balance-groups", action="store_true",
                   help="draw every voice (speech) or piece (music) of a domain equally often, the domains "
                        "as often as their clip counts (default: every clip equally often)")
    t.add_argument("--domain", choices=("music", "speech", "all"),
                   help="train on the corpus clips of this domain only (default: the preset's; sr-hifigan all, "
                        "vocoders music)")
    t.add_argument("--device", default="auto", help="auto (default: CUDA if present, else CPU), cpu, cuda, cuda:N")
    t.add_argument("--workers", type=int, help=f"data-loader worker processes ({per_preset('num_workers')})")
    t.add_argument("--run-dir", help="checkpoint/log directory (default runs/MODEL-PRESET)")
    t.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes (default: no limit)")
    t.add_argument("--ckpt-every", type=int, help=f"steps between resumable checkpoints ({per_preset('ckpt_every')})")
    t.add_argument("--val-every", type=int,
                   help=f"steps between validations and generator snapshots ({per_preset('val_every')})")
    t.add_argument("--no-resume", action="store_true", help="start fresh even if run-dir has a checkpoint")
    t.add_argument("--init-from", metavar="CKPT",
                   help="start the generator from this trained checkpoint's weights (a warm start, e.g. sr16-gan "
                        "from a trained sr16-unet; recorded in the metadata with its hash; ignored when the run "
                        "resumes; default: random initialisation)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    from ..training.select import METRICS as SELECT_METRICS
    se = sub.add_parser("select", help="choose a training run's snapshot on the validation split and write it as "
                                       "a release checkpoint")
    se.add_argument("run_dir", help="the training run directory (with snapshots/)")
    se.add_argument("--metric", default="loss", choices=list(SELECT_METRICS),
                    help="validation metric that chooses (logged at each snapshot; default: %(default)s, the "
                         "recipe's validation loss; snr_db: highest wins, the others lowest)")
    se.add_argument("--out", required=True, help="release checkpoint to write (.safetensors + .json)")
    se.add_argument("--min-step", type=int, default=1,
                    help="consider snapshots from this step on, e.g. once a progressive GAN (reverbsynth) has grown "
                         "to full size (default: %(default)s)")
    se.add_argument("--max-step", type=int,
                    help="and up to this step; --min-step N --max-step N releases snapshot N, chosen elsewhere on the "
                         "validation split (e.g. by rtgan eval --split val) (default: the last)")
    se.add_argument("--max-tonal-db", type=float, metavar="DB",
                    help="super-resolution models: only snapshots whose tonal figure (band-limited white noise in, "
                         "peak over the generated band's local median, dB; as rtgan eval reports it) is at most DB "
                         "may be chosen, e.g. 6 (default: no gate)")

    from ..audio.bandlimit import BAND_LIMITERS
    ca = sub.add_parser("calibrate", help="sr-hifigan: choose the generated band's level (residual gain) on the "
                        "validation split; xfer-*: choose the output level on the pair set's validation crops; "
                        "reverb-room: fit its decay control to the measured T30 of its responses")
    ca.add_argument("--model", default="sr-hifigan", help="registered model name (default: %(default)s)")
    ca.add_argument("--checkpoint", required=True, help="the trained .safetensors checkpoint to calibrate")
    ca.add_argument("--data", help="corpus directory (with manifest.jsonl; needed for sr-hifigan), pair set "
                                   "(xfer-*), not needed for a reverb, whose decay control is calibrated on its own "
                                   "impulse responses")
    ca.add_argument("--out", required=True, help="where the calibrated checkpoint goes (.safetensors + .json)")
    ca.add_argument("--split", default="val", choices=("train", "val", "test"),
                    help="split the gain is chosen on (default: %(default)s; never test)")
    ca.add_argument("--limiter", nargs="+", default=["soxr", "kaiser"],
                    help="band-limiters the SNR rule must hold for (default: %(default)s)")
    ca.add_argument("--margin-db", type=float,
                    help="sr-hifigan: allowed mean SNR below the cubic-spline baseline per domain (default: 0.15 dB); "
                         "xfer-*: required mean SNR above the input's on the validation crops (default: 0.3 dB)")
    ca.add_argument("--max-clips", type=int, help="use at most this many clips (default: all)")
    ca.add_argument("--eq", action="store_true",
                    help="sr-hifigan: first measure a matching EQ for the generated band on the same split (its "
                         "long-term spectrum brought to the original's shape per band, 7.5-24 kHz), then choose the "
                         "gain with it (default: off, one gain for the whole band)")
    ca.add_argument("--eq-max-boost-db", type=float, default=6.0,
                    help="with --eq: largest boost of any band relative to the 7.5-9 kHz band, dB (default: %(default)s)")
    ca.add_argument("--envelope", action="store_true",
                    help="sr-hifigan: first fit an envelope head on the train split (a causal gain on the generated "
                         "band estimated from the input's spectral shape, 10/50 ms windows, no added latency; "
                         "SRHiFiGANConfig.envelope_hidden), then choose the gain with it (default: off)")
    ca.add_argument("--envelope-hidden", type=int, default=32,
                    help="with --envelope: width of the head's two hidden layers (default: %(default)s)")
    ca.add_argument("--envelope-clips", type=int, default=400,
                    help="with --envelope: train clips per domain it is fitted on (default: %(default)s)")
    ca.add_argument("--envelope-seconds", type=float, default=6.0,
                    help="with --envelope: seconds read from the start of each clip (default: %(default)s s)")
    ca.add_argument("--envelope-balance", default="none", choices=("none", "split_key"),
                    help="with --envelope: split_key: the voices and pieces (the manifest's split_key) share the "
                         "clips equally; none: clips evenly spaced in manifest order (default: %(default)s)")
    ca.add_argument("--mirror-gain", type=float,
                    help="sr-hifigan: level of the input's mirror about its band edge to add before the gain is "
                         "chosen (SRHiFiGANConfig.mirror_gain; 0: none; default: the checkpoint's)")
    ca.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="SNR, LSD and ViSQOL on a corpus split against band-limited and spline "
                                    "baselines, per band-limiter; the model's tonal-artifact figure",
                       description="Limiters: " + "; ".join(f"{n}: {b.description}"
                                                            for n, b in BAND_LIMITERS.items()))
    e.add_argument("--model", default="sr-hifigan", help="registered model name (default: %(default)s)")
    e.add_argument("--checkpoint", help="a .safetensors checkpoint instead of the shipped weights (default: shipped)")
    e.add_argument("--data", required=True, help="corpus directory (with manifest.jsonl); for a note model "
                                                 "(reverbsynth) a note set (with notes.jsonl, 'rtgan data notes'); for an "
                                                 "instrument-transfer model (xfer-violin) a pair set ('rtgan data pairs')")
    e.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="manifest split to evaluate (default: %(default)s)")
    e.add_argument("--limiter", nargs="+", choices=list(BAND_LIMITERS), default=list(BAND_LIMITERS),
                   metavar="NAME", help="band-limiters making the model input from the 48 kHz target, one table "
                   f"each; choices: {', '.join(BAND_LIMITERS)} (default: all; soxr if given, else the first "
                   "one, also makes the pictures and the tonal figure)")
    e.add_argument("--no-visqol", action="store_true",
                   help="skip ViSQOL v3 (MOS-LQO, ~0.1 s per second of audio per estimate; default: computed, "
                        "needs pip install 'rtgan[eval]')")
    e.add_argument("--min-bandwidth", type=float, default=16000.0,
                   help="skip targets whose measured bandwidth is narrower than this, in Hz (default: %(default)s Hz)")
    e.add_argument("--max-clips", type=int, help="evaluate at most this many clips, in manifest order (default: all)")
    e.add_argument("--cache", metavar="PATH", help="JSON cache of the baselines' scores "
                   "(default: DATA/.rtgan_cache/eval_baselines.json)")
    e.add_argument("--no-cache", action="store_true", help="neither read nor write the baseline cache (default: use it)")
    e.add_argument("--json", metavar="PATH", help="write tables, tonal figure and per-clip rows as JSON here "
                   "(default: none)")
    e.add_argument("--png", metavar="PATH", help="write input/output/target spectrograms (kHz, dB) of the loudest "
                   "music clip here, and of the loudest speech clip at PATH with _speech before the suffix "
                   "(default: none)")
    e.add_argument("--png-speech", metavar="PATH", help="where the speech spectrogram goes instead "
                   "(default: from --png)")
    e.add_argument("--update-metadata", action="store_true",
                   help="store the tables and tonal figure in --checkpoint's JSON (default: off)")
    e.add_argument("--sr16", nargs="+", metavar="MODEL=CKPT",
                   help="seed 002's Fig. 3 instead: SNR, LSD (mean ± std) and ViSQOL speech mode of the cubic "
                        "spline and each 16 kHz model (sr16-unet, sr16-gan, sr16-wgan and their -c variants, "
                        "ratio 2 or 4) per domain; MODEL alone takes its shipped weights (default: none; "
                        "--model with a 16 kHz model's --checkpoint does the same for one model)")
    e.add_argument("--vocoders", nargs="+", metavar="MODEL=CKPT",
                   help="vocoders instead (seed 003): log-mel L1, MR-STFT and ViSQOL (audio mode at 48 kHz) of each "
                        "model's resynthesis of the music clips and of Griffin-Lim from the same mel (librosa, "
                        "60 iterations); MODEL alone takes its shipped weights (default: none; --model with a "
                        "vocoder does the same for one model)")
    e.add_argument("--xfer", nargs="+", metavar="MODEL=CKPT",
                   help="seed 001's Table I instead: instrument-transfer checkpoints (e.g. xfer-violin trained with "
                        "--loss g1..g4) on the same crops of a pair set, one row each after the input's: SNR, LSD "
                        "(mean ± std), MFCC distance and share classified as the target; rows are labelled by their "
                        "composite loss (default: none; --model xfer-violin does one model)")
    e.add_argument("--max-seconds", type=float, metavar="SECONDS",
                   help="vocoders: score at most this many seconds of each clip (default: all of it); reverbs "
                        "(reverb-*: MR-STFT to the target's wet signal beside a Freeverb fitted to its RT60, "
                        "decay times, RT60 tracking): dry seconds per clip (default: 4 s)")
    e.add_argument("--anti-alias", choices=("cheby1", "kaiser"), default="cheby1",
                   help="sr16 evaluation only: low-pass before decimation, as the sr16 recipes' anti_alias "
                        "(default: %(default)s)")
    e.add_argument("--seeds", type=int, default=4, metavar="N",
                   help="note models (reverbsynth: --data is a note set from 'rtgan data notes'; pitch accuracy "
                        "by CREPE, release decay of dry vs reverb, diversity, --png of real and generated IF-Mel): "
                        "notes generated per test pitch and label, latent seeds 0..N-1 (default: %(default)s)")
    e.add_argument("--crepe-model", choices=("full", "tiny"), default="full",
                   help="note models: torchcrepe capacity of the pitch estimate (default: %(default)s; tiny is "
                        "about 15 times faster on a CPU and makes octave errors on some bass notes)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: shown)")


def cmd_train(args, argv) -> int:
    """Train ``args.model`` with the recipe registered with it (:func:`rtgan.training.loop.train`).

    The preset is the recipe's (without ``--preset``: :func:`rtgan.training.config.default_preset`);
    ``--recipe`` picks a variant of recipes that have them (sr-hifigan's ``bwe``/``paper``). The
    other options override the config's fields of the same meaning; one that the model's config
    does not have is an error naming the option, as is ``--weights-dir`` for a model whose
    training loads no frozen networks.
    """
    from ..models.discriminators import DiscriminatorConfig
    from ..training.config import default_preset, presets
    from ..training.loop import pick_device, recipe_class, train
    dev = pick_device(args.device)
    rcls = recipe_class(args.model)  # a clear error for a model that cannot be trained
    model_presets = presets(args.model)
    preset = args.preset if args.preset is not None else default_preset(args.model)
    if preset not in model_presets:
        raise ValueError(f"model {args.model!r} has no training preset {preset!r}; "
                         f"presets: {', '.join(model_presets)}")
    cfg = model_presets[preset]
    if args.recipe is not None and args.recipe != cfg.recipe:
        if not hasattr(cfg, "with_recipe"):
            raise ValueError(f"model {args.model!r} has no recipe variants (--recipe {args.recipe})")
        cfg = cfg.with_recipe(cfg, args.recipe)
    fields = {f.name for f in dataclasses.fields(cfg)}
    overrides = {}
    options = {"discriminator": "--discriminator", "adversarial": "--no-adversarial"}  # config field: its option
    if args.lr is not None and not (0 < args.lr < 1):
        raise ValueError(f"--lr must be in (0, 1), got {args.lr}")
    for option, key, value in (("--steps", "steps", args.steps), ("--batch-size", "batch_size", args.batch_size),
                               ("--lr", "lr", args.lr),
                               ("--segment-samples", "segment_samples", args.segment_samples),
                               ("--workers", "num_workers", args.workers),
                               ("--adv-start", "adv_start_step", args.adv_start),
                               ("--disc-warmup", "disc_warmup_steps", args.disc_warmup),
                               ("--time-lowpass", "time_lowpass_hz", args.time_lowpass),
                               ("--stable-steps", "stable_steps", args.stable_steps),
                               ("--transition-steps", "transition_steps", args.transition_steps),
                               ("--recon-warmup", "recon_warmup_steps", args.recon_warmup),
                               ("--lambda-recon", "recon_weight", args.lambda_recon),
                               ("--min-bandwidth", "min_bandwidth_hz", args.min_bandwidth),
                               ("--ckpt-every", "ckpt_every", args.ckpt_every),
                               ("--val-every", "val_every", args.val_every),
                               ("--loss", "loss", args.loss),
                               ("--pairs-program", "pairs_program", args.pairs_program),
                               ("--freq-scale", "freq_scale", args.freq_scale)):
        if value is not None:
            overrides[key], options[key] = value, option
    if args.balance_groups:
        overrides["balance_groups"], options["balance_groups"] = True, "--balance-groups"
    if args.domain is not None:  # "all": every clip (None in the config)
        overrides["train_domain"], options["train_domain"] = (None if args.domain == "all" else args.domain), "--domain"
    disc = args.discriminator
    lead = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    note = None  # said once every option is checked
    if "discriminator" in fields:
        if disc == "auto":  # the paper's widths are a GPU job: 26 s a step and 850 MB checkpoints on a CPU
            disc = "full" if dev.type == "cuda" else ("tiny" if preset == "tiny" else "small")
            note = f"discriminator: {disc} (auto for {dev.type}; --discriminator full|small|tiny to choose)"
        if disc != "full" or preset != "tiny":
            widths = getattr(type(cfg), "discriminator_widths", None)
            overrides["discriminator"] = (widths() if widths else {
                "full": DiscriminatorConfig(), "small": DiscriminatorConfig.small(),
                "tiny": DiscriminatorConfig.tiny()})[disc]
    elif disc != "auto":
        overrides["discriminator"] = disc
    if args.no_adversarial:
        overrides["adversarial"] = False
    lambdas = {"adv": args.lambda_adv, "flat": args.lambda_flat, "time": args.lambda_time,
               "stft": args.lambda_stft, "mel": args.lambda_mel, "feature_matching": args.lambda_fm}
    if any(v is not None for v in lambdas.values()):
        given = {k: v for k, v in lambdas.items() if v is not None}
        # recipes with a LossWeights (sr-hifigan, vocoders), or with flat lambda_* fields (xfer-*)
        names = ({f.name for f in dataclasses.fields(cfg.weights)} if "weights" in fields else
                 {k for k in given if f"lambda_{k}" in fields})
        if not names:
            raise ValueError(f"model {args.model!r}'s training has no loss weights to set (--lambda-*)")
        extra = sorted(set(given) - names)
        if extra:
            raise ValueError(f"model {args.model!r}'s loss has no term "
                             + ", ".join(f"--lambda-{'fm' if k == 'feature_matching' else k}" for k in extra))
        if "weights" in fields:
            overrides["weights"] = dataclasses.replace(cfg.weights, **given)
        else:
            overrides.update({f"lambda_{k}": v for k, v in given.items()})
    for option, key, value in (("--lambda-content", "content_weight", args.lambda_content),
                               ("--content-net-sha256", "content_net_sha256",
                                None if args.content_net_sha256 is None else args.content_net_sha256.lower())):
        if value is not None:
            if key not in fields:
                raise ValueError(f"model {args.model!r}'s training has no content loss ({option}); "
                                 f"models with one: {', '.join(_models_with_setting(key)) or 'none'}")
            overrides[key] = value
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"model {args.model!r}'s training has no setting "
                         + ", ".join(f"{k} ({options[k]})" if k in options else k for k in unknown))
    cfg = dataclasses.replace(cfg, model=args.model, **overrides)
    weights_dir = None
    if args.weights_dir is not None:
        weights_dir = Path(args.weights_dir)
        if not rcls(cfg).frozen:  # builds no networks; a -c model without its hash says what it needs here
            raise ValueError(f"model {args.model!r}'s training loads no frozen networks (--weights-dir {weights_dir})")
        if not weights_dir.is_dir():
            raise FileNotFoundError(f"--weights-dir {weights_dir} is not a directory")
    if note and lead:
        print(note)
    run_dir = Path(args.run_dir or f"runs/{args.model}-{preset}")
    state = train(cfg, Path(args.data), run_dir, device=str(dev), resume=not args.no_resume,
                  command=common.command_line(argv), progress=not args.quiet, max_minutes=args.max_minutes,
                  weights_dir=weights_dir, init_from=args.init_from)
    last = state.history[-1] if state.history else {}
    if lead:
        print(f"trained {state.step} steps; last validation: {json.dumps(last)}; checkpoints in {run_dir}")
    return 0


def _models_with_setting(field: str) -> list[str]:
    """The registered models whose training config has ``field``, sorted."""
    from ..models import registry
    return [m for m in registry.available() if registry.entry(m).recipe is not None
            and field in {f.name for f in dataclasses.fields(registry.entry(m).recipe.config_cls)}]


def _speech_png(path: str) -> Path:
    """``--png``'s speech companion: ``PATH`` with ``_speech`` before the suffix."""
    p = Path(path)
    return p.with_name(f"{p.stem}_speech{p.suffix or '.png'}")


def cmd_select(args, argv) -> int:
    """``rtgan select``: :func:`rtgan.training.select.select_snapshot` then :func:`~rtgan.training.select.release`."""
    from ..training.select import describe, release, select_snapshot
    sel = select_snapshot(args.run_dir, args.metric, args.min_step, max_tonal_db=args.max_tonal_db,
                          max_step=args.max_step)
    out = release(sel, args.out, command=common.command_line(argv))
    print(f"selected {sel.path.name}, {describe(sel)}; wrote {out}")
    return 0


def cmd_calibrate(args, argv) -> int:
    from ..calibrate import calibrate_residual_gain, with_gain
    from ..checkpoint import save_generator
    from ..models import registry
    out = Path(args.out)
    if out.resolve() == Path(args.checkpoint).resolve():
        raise ValueError("--out must not be the --checkpoint it reads")
    model = registry.load_model(args.model, path=args.checkpoint)
    from ..models.reverb import ReverbGenerator
    if isinstance(model, ReverbGenerator):
        return _calibrate_reverb(args, argv, model, out)
    from ..models.xfer import XferGenerator
    if isinstance(model, XferGenerator):
        return _calibrate_xfer(args, argv, model, out)
    if not args.data:
        raise ValueError("--data is needed to calibrate the level of the generated band")
    envelope = None
    if args.envelope:
        from ..calibrate import fit_envelope
        metadata = model.metadata
        model, envelope = fit_envelope(model, Path(args.data), hidden=args.envelope_hidden,
                                       clips_per_domain=args.envelope_clips, seconds=args.envelope_seconds,
                                       balance=None if args.envelope_balance == "none" else args.envelope_balance,
                                       progress=not args.quiet)
        model.metadata = metadata
        print(f"envelope head: {envelope['frames']} frames, held-out R^2 of the log gain {envelope['holdout_r2']}")
    eq = None
    if args.eq:
        from ..calibrate import match_residual_eq, with_eq
        if not 0.0 <= args.eq_max_boost_db <= 24.0:
            raise ValueError(f"--eq-max-boost-db must be in [0, 24] dB, got {args.eq_max_boost_db}")
        eq = match_residual_eq(model, Path(args.data), split=args.split, limiters=tuple(args.limiter),
                               max_boost_db=args.eq_max_boost_db, max_clips=args.max_clips, progress=not args.quiet)
        for domain, lv in eq["level_db"].items():
            print(f"EQ: {domain:7s} generated band vs original per band before the EQ (dB): "
                  + " ".join(f"{v:+.1f}" for v in lv))
        print("EQ curve (Hz: gain): " + ", ".join(f"{f:g}: {g:.3g}" for f, g in eq["points"]))
        metadata = model.metadata
        model = with_eq(model, eq["points"])
        model.metadata = metadata
    if args.mirror_gain is not None:
        from ..calibrate import with_mirror
        metadata = model.metadata
        model = with_mirror(model, args.mirror_gain)
        model.metadata = metadata
    res = calibrate_residual_gain(model, Path(args.data), split=args.split, limiters=tuple(args.limiter),
                                  margin_db=0.15 if args.margin_db is None else args.margin_db,
                                  max_clips=args.max_clips, progress=not args.quiet)
    for lim, domains in res["table"].items():
        for domain, t in domains.items():
            shown = " ".join(f"{g}:{v:.2f}" for g, v in t["snr_db_by_gain"].items())
            print(f"{lim:8s} {domain:7s} input {t['input_snr_db']:.2f} dB, spline {t['spline_snr_db']:.2f} dB; "
                  f"model SNR by gain: {shown}")
    if res["gain"] is None:
        print(f"rtgan calibrate: error: no gain satisfies: {res['rule']}", file=sys.stderr)
        return 1
    meta = {k: v for k, v in model.metadata.items() if k not in ("model", "config", "format_version")}
    meta["calibration"] = {**res, "from_checkpoint": str(args.checkpoint)}
    if eq is not None:
        meta["calibration"]["eq"] = eq
    if envelope is not None:
        meta["calibration"]["envelope"] = envelope
    # the training run's validation numbers are for the gain it trained with; keep them apart
    metrics = dict(meta.get("metrics", {}))
    if "val" in metrics:
        metrics["val_training"] = metrics.pop("val")
    metrics[args.split] = {"residual_gain": res["gain"], "snr_db": {
        lim: {domain: {"model": t["snr_db_by_gain"][f"{res['gain']:g}"], "input": t["input_snr_db"],
                       "spline": t["spline_snr_db"]} for domain, t in domains.items()}
        for lim, domains in res["table"].items()}}
    meta["metrics"] = metrics
    meta["commands"] = list(meta.get("commands", [meta.get("command", "")])) + [common.command_line(argv)]
    save_generator(out, with_gain(model, res["gain"]), meta)
    print(f"residual gain {res['gain']:g} ({res['rule']}); wrote {out}")
    return 0


def _calibrate_xfer(args, argv, model, out: Path) -> int:
    """``rtgan calibrate`` for an instrument-transfer model: :func:`rtgan.calibrate.calibrate_xfer_gain`."""
    from ..calibrate import calibrate_xfer_gain, with_gain
    from ..checkpoint import save_generator
    if not args.data:
        raise ValueError("--data is needed: the pair set (rtgan data pairs) whose validation crops choose the level")
    margin = 0.3 if args.margin_db is None else args.margin_db
    res = calibrate_xfer_gain(model, Path(args.data), split=args.split, margin_db=margin, max_crops=args.max_clips,
                              progress=not args.quiet)
    shown = " ".join(f"{g}:{v:.2f}" for g, v in res["snr_db_by_gain"].items())
    print(f"{res['crops']} {args.split} crops: input SNR {res['input_snr_db']:.2f} dB; output SNR by gain: {shown}")
    if res["gain"] is None:
        print(f"rtgan calibrate: error: no gain satisfies: {res['rule']}", file=sys.stderr)
        return 1
    meta = {k: v for k, v in model.metadata.items() if k not in ("model", "config", "format_version")}
    meta["calibration"] = {**res, "from_checkpoint": str(args.checkpoint)}
    metrics = dict(meta.get("metrics", {}))
    if "val" in metrics:
        metrics["val_training"] = metrics.pop("val")
    metrics[args.split] = {"residual_gain": res["gain"], "snr_db": res["snr_db_by_gain"][f"{res['gain']:g}"],
                           "input_snr_db": res["input_snr_db"]}
    meta["metrics"] = metrics
    meta["commands"] = list(meta.get("commands", [meta.get("command", "")])) + [common.command_line(argv)]
    save_generator(out, with_gain(model, res["gain"]), meta)
    print(f"output gain {res['gain']:g} ({res['rule']}); wrote {out}")
    return 0


def _calibrate_reverb(args, argv, model, out: Path) -> int:
    """``rtgan calibrate`` for a conditioned reverb: :meth:`ReverbGenerator.calibrate_decay`."""
    from ..checkpoint import save_generator
    res = model.calibrate_decay()
    for c, b, a in zip(res["controls_s"], res["t30_before_s"], res["t30_after_s"]):
        print(f"decay {c:.2f} s: T30 {b:.2f} s before, {a:.2f} s after ({100 * abs(a - c) / c:.1f} %)")
    meta = {k: v for k, v in model.metadata.items() if k not in ("model", "config", "format_version")}
    meta["calibration"] = {"decay": res, "from_checkpoint": str(args.checkpoint)}
    meta["commands"] = list(meta.get("commands", [meta.get("command", "")])) + [common.command_line(argv)]
    save_generator(out, model, meta)
    print(f"worst T30 error {100 * max(res['err_before']):.1f} % before, {100 * max(res['err_after']):.1f} % after; "
          f"wrote {out}")
    return 0


def cmd_eval(args, argv) -> int:
    from ..audio.bandlimit import BAND_LIMITERS
    from ..evaluate import default_cache_path, evaluate, format_table, format_tonal, write_json
    if args.sr16 and args.max_seconds is not None:
        raise ValueError("--max-seconds is for vocoders")
    if args.sr16:
        return _cmd_eval_sr16(args, argv, _sr16_models(args.sr16))
    if args.vocoders:
        from ..evaluate_vocoder import check_vocoder
        return _cmd_eval_vocoders(args, argv, _model_specs(args.vocoders, "--vocoders", check_vocoder))
    if args.xfer:
        return _cmd_eval_xfer(args, argv, _xfer_models(args.xfer))
    if _is_note_model(args.model):  # a note model (reverbsynth): pitch, decay, diversity on a note set
        return _cmd_eval_notes(args, argv)
    if _is_xfer_model(args.model):  # instrument transfer (xfer-violin): SNR, LSD, MFCC, classifier on a pair set
        return _cmd_eval_xfer(args, argv)
    if args.update_metadata and not args.checkpoint:
        raise ValueError("--update-metadata needs --checkpoint (the shipped weights' JSON is not rewritten)")
    model = common.load_model(args)
    from ..models.vocoder import MelVocoder
    if isinstance(model, MelVocoder):  # a vocoder: seed 003's comparison with Griffin-Lim
        return _cmd_eval_vocoders(args, argv, {args.model: model})
    from ..models.reverb import ReverbGenerator
    if isinstance(model, ReverbGenerator):  # a reverb: its target, a fitted Freeverb, decay times
        return _cmd_eval_reverb(args, argv, model)
    if args.max_seconds is not None:
        raise ValueError("--max-seconds is for vocoders and reverbs")
    if int(model.sample_rate_out) == 16000:  # a 16 kHz model: seed 002's Fig. 3 (sr16-unet and kin)
        from ..evaluate_sr16 import check_sr16_model
        check_sr16_model(model, args.model)
        return _cmd_eval_sr16(args, argv, {args.model: model})
    limiters = list(dict.fromkeys(args.limiter))
    cache = False if args.no_cache else (Path(args.cache) if args.cache else True)
    result = evaluate(model, Path(args.data), split=args.split, limiters=limiters, visqol=not args.no_visqol,
                      min_bandwidth_hz=args.min_bandwidth, max_clips=args.max_clips, progress=not args.quiet,
                      cache=cache)
    print(format_table(result))
    print(format_tonal(result.tonal))
    t = result.timing
    print(f"{t['clips']} clips in {t['seconds']:.1f} s"
          + (f"; ViSQOL {t['visqol_calls']} calls, {t['visqol_seconds']:.1f} s" if t["visqol_calls"] else "")
          + f"; baselines cached for {t['cache_hits']} of {t['cache_hits'] + t['cache_misses']} clip x limiter pairs"
          + ("" if args.no_cache else f" ({args.cache or default_cache_path(args.data)})"))
    extra = {"model": args.model, "checkpoint": args.checkpoint or "shipped", "split": args.split,
             "command": common.command_line(argv)}
    if args.json:
        write_json(result, Path(args.json), extra)
        print(f"wrote {args.json}")
    pngs = {"music": args.png, "speech": args.png_speech or (_speech_png(args.png) if args.png else None)}
    for domain, png in pngs.items():
        ex = result.examples.get(domain)
        if not png:
            continue
        if ex is None:
            print(f"no {domain} clip among those evaluated: {png} not written")
            continue
        try:
            from ..plots import spectrogram_png
            spectrogram_png(png, {f"input (band-limited, {ex['limiter']})": ex["input"],
                                  "output (model)": ex["output"], "target": ex["target"]},
                            model.sample_rate_out, title=f"{ex['path']} ({args.model})", mark_khz=(8.0,))
            print(f"wrote {png}")
        except ImportError:
            logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
            break
    if args.update_metadata:
        from ..checkpoint import metadata_path
        from ..fileio import atomic_write_text
        meta_file = metadata_path(Path(args.checkpoint))
        meta = json.loads(meta_file.read_text())
        meta.setdefault("metrics", {})[args.split] = {
            "limiters": {n: BAND_LIMITERS[n].description for n in result.limiters},
            "table": result.table, "tonal": result.tonal, "command": common.command_line(argv)}
        atomic_write_text(meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        print(f"updated {meta_file}")
    return 0


def _is_note_model(name: str) -> bool:
    """Whether ``--model`` names a note model (its registered generator's kind is ``"note"``)."""
    from ..models import registry
    return getattr(registry.entry(registry.split_ref(name)[0]).generator, "kind", None) == "note"


def _cmd_eval_notes(args, argv) -> int:
    """``rtgan eval`` for note models: :func:`rtgan.evaluate_notes.evaluate_notes`, its table, JSON and picture."""
    from ..evaluate_notes import check_note_set, evaluate_notes, ifmel_png
    from ..metrics import load_torchcrepe
    for flag, value in (("--png-speech", args.png_speech), ("--update-metadata", args.update_metadata),
                        ("--max-seconds", args.max_seconds is not None), ("--max-clips", args.max_clips is not None)):
        if value:
            raise ValueError(f"{flag} is not available for note models")
    if args.seeds < 2:
        raise ValueError(f"--seeds must be at least 2 (diversity is over pairs of notes), got {args.seeds}")
    root = check_note_set(args.data)
    try:
        load_torchcrepe()
    except ImportError as e:  # one line, not a traceback
        raise RuntimeError(str(e)) from None
    model = common.load_model(args)
    result = evaluate_notes(model, root, split=args.split, seeds=range(args.seeds), crepe_model=args.crepe_model,
                            progress=not args.quiet)
    result.print_table()
    t = result.timing
    print(f"{t['real_notes']} real and {t['generated_notes']} generated notes in {t['seconds']:.1f} s")
    _write_eval_json(args, argv, model, result)
    if args.png:
        if not result.example or not hasattr(getattr(model, "config", None), "ifmel_spec"):
            print(f"no note or no IF-Mel representation to draw: {args.png} not written")
        else:
            try:
                ifmel_png(args.png, result.example, model.config.ifmel_spec,
                          title=f"{args.model} ({Path(args.checkpoint).name if args.checkpoint else 'shipped'}), "
                                f"MIDI {result.example['pitch']}: real (program {result.example['program']}, "
                                f"velocity {result.example['velocity']}) vs generated (seed {result.example['seed']})")
                print(f"wrote {args.png}")
            except ImportError:
                logging.warning("matplotlib not installed: no picture (pip install 'rtgan[dev]')")
    return 0


def _write_eval_json(args, argv, model, result) -> None:
    """``--json``: ``result.to_json`` with the model, its checkpoint, steps and training command, the split and
    this command (written atomically); nothing without ``--json``."""
    if not args.json:
        return
    from ..fileio import atomic_write_text
    meta = getattr(model, "metadata", {}) or {}
    atomic_write_text(args.json, result.to_json(
        model=args.model, checkpoint=args.checkpoint or "shipped", steps=meta.get("steps"),
        training_command=meta.get("command"), split=args.split, command=common.command_line(argv)))
    print(f"wrote {args.json}")


def _is_xfer_model(name: str) -> bool:
    """Whether ``--model`` names an instrument-transfer model (its config has ``target_program``)."""
    import dataclasses as dc
    from ..models import registry
    cls = registry.entry(registry.split_ref(name)[0]).config_cls
    return dc.is_dataclass(cls) and "target_program" in {f.name for f in dc.fields(cls)}


def _xfer_models(specs: list[str]) -> dict:
    """``--xfer``'s models (see :func:`_model_specs`), each an instrument-transfer model, all with one
    target program; each labelled ``MODEL LOSS`` by the composite loss its metadata records."""
    from ..evaluate_xfer import check_xfer_model
    def label_of(name, m):
        tc = (getattr(m, "metadata", None) or {}).get("train_config") or {}
        extra = f" + {tc['lambda_stft']:g} MR-STFT" if tc.get("lambda_stft") else ""
        return f"{name} {tc['loss']}{extra}" if tc.get("loss") else name

    models = _model_specs(specs, "--xfer", check_xfer_model, label_of)
    targets = {int(m.config.target_program) for m in models.values()}
    if len(targets) > 1:
        raise ValueError(f"--xfer: the models have different target programs {sorted(targets)}; Table I compares one")
    return models


def _cmd_eval_xfer(args, argv, models: dict | None = None) -> int:
    """``rtgan eval`` for instrument-transfer models: :func:`rtgan.evaluate_xfer.evaluate_xfer`, its table and JSON;
    with ``models`` (``--xfer``) every model on the same crops and seed 001's Table I."""
    from ..checkpoint import CheckpointError
    from ..evaluate_xfer import evaluate_xfer, format_table_i
    from ..instrument import DEFAULT_PATH, load_instrument_classifier
    for flag, value in (("--png-speech", args.png_speech), ("--update-metadata", args.update_metadata),
                        ("--max-seconds", args.max_seconds is not None)):
        if value:
            raise ValueError(f"{flag} is not available for instrument-transfer models")
    if not DEFAULT_PATH.exists():
        raise RuntimeError(f"no instrument classifier at {DEFAULT_PATH}: train one with "
                           f"'python -m rtgan.instrument PAIRS'")
    try:
        classifier = load_instrument_classifier(DEFAULT_PATH)
    except CheckpointError as e:  # one line, not a traceback
        raise RuntimeError(str(e)) from None
    if models is None:
        model = common.load_model(args)
        result = evaluate_xfer(model, Path(args.data), split=args.split, classifier=classifier,
                               max_crops=args.max_clips, progress=not args.quiet, example=bool(args.png))
        result.print_table()
        print(f"{result.timing['crops']} crops in {result.timing['seconds']:.1f} s")
        _write_eval_json(args, argv, model, result)
        _xfer_png(args, {args.model: result})
        return 0
    results = {label: evaluate_xfer(m, Path(args.data), split=args.split, classifier=classifier,
                                    max_crops=args.max_clips, progress=not args.quiet, example=bool(args.png))
               for label, m in models.items()}
    _xfer_png(args, results)
    print(format_table_i(results))
    print(f"{len(results)} models x {next(iter(results.values())).timing['crops']} crops in "
          f"{sum(r.timing['seconds'] for r in results.values()):.1f} s")
    if args.json:
        from ..fileio import atomic_write_text
        meta = {k: getattr(m, "metadata", {}) or {} for k, m in models.items()}
        data = {"checkpoints": args.xfer, "split": args.split, "command": common.command_line(argv),
                "models": {k: {"steps": meta[k].get("steps"), "command": meta[k].get("command"),
                               "summary": r.summary()} for k, r in results.items()},
                "table_i": format_table_i(results),
                "results": {k: r.to_dict() for k, r in results.items()}}
        atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _xfer_png(args, results: dict) -> None:
    """``--png``: spectrograms of one excerpt: input, each model's output, target (nothing without ``--png``)."""
    if not args.png:
        return
    first = next(iter(results.values()))
    ex = first.example
    if ex is None:
        print(f"no sounding crop: {args.png} not written")
        return
    try:
        from ..plots import spectrogram_png
    except ImportError:
        logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
        return
    signals = {f"input ({first.settings['input_program']}: piano)": ex["input"]}
    signals.update({f"{label} output": r.example["output"] for label, r in results.items()})
    signals[f"target ({first.settings['target_program']}: {first.settings['target_name']})"] = ex["target"]
    sr = first.settings["sample_rate"]
    try:
        spectrogram_png(args.png, signals, sr, title=f"{ex['piece']}, from {ex['start'] / sr:.2f} s",
                        n_fft=1024, hop_length=256)
    except ImportError:
        logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
        return
    print(f"wrote {args.png}")


def _sr16_models(specs: list[str]) -> dict:
    """``--sr16``'s models (see :func:`_model_specs`), each checked to be a 16 kHz model."""
    from ..evaluate_sr16 import check_sr16_model
    return _model_specs(specs, "--sr16", check_sr16_model)


def _model_specs(specs: list[str], option: str, check, label_of=None) -> dict:
    """``MODEL=CKPT`` (or ``MODEL`` / ``MODEL@TAG``: its shipped weights) -> ``{label: generator}``;
    a repeated model name is labelled with its checkpoint's stem, or ``label_of(name, model)`` when
    given; ``check(model, spec)`` raises for a model the option cannot take."""
    from ..models import registry
    models = {}
    for spec in specs:
        name, _, ckpt = spec.partition("=")
        if not name:
            raise ValueError(f"{option} {spec!r}: expected MODEL=CHECKPOINT or MODEL")
        try:
            registry.split_ref(name)
        except KeyError:
            raise ValueError(f"{option} {spec!r}: unknown model {name!r} (models: {', '.join(registry.available())})") \
                from None
        if ckpt and not Path(ckpt).is_file():
            raise ValueError(f"{option} {spec!r}: no checkpoint file {ckpt}")
        model = registry.load_model(name, path=ckpt or None)
        if label_of is not None:
            label = label_of(name, model)
        else:
            label = name if name not in models else f"{name} ({Path(ckpt).stem if ckpt else 'shipped'})"
        if label in models:
            raise ValueError(f"{option} {spec!r} is given twice")
        check(model, spec)
        models[label] = model
    return models


def _cmd_eval_vocoders(args, argv, models: dict) -> int:
    """``rtgan eval`` for vocoders: :func:`rtgan.evaluate_vocoder.evaluate_vocoders`, its table, JSON and picture."""
    from ..evaluate_vocoder import BASELINE, evaluate_vocoders, format_table
    for flag, value in (("--png-speech", args.png_speech), ("--update-metadata", args.update_metadata)):
        if value:
            raise ValueError(f"{flag} is not available for vocoders")
    if args.max_seconds is not None and not args.max_seconds > 1.0:
        raise ValueError(f"--max-seconds must be more than 1 s (ViSQOL needs about a second), got {args.max_seconds}")
    result = evaluate_vocoders(models, Path(args.data), split=args.split, visqol=not args.no_visqol,
                               max_clips=args.max_clips, progress=not args.quiet, max_seconds=args.max_seconds)
    print(format_table(result))
    t = result.timing
    print(f"{t['seconds']:.1f} s (Griffin-Lim {t['griffin_lim_seconds']:.1f} s, ViSQOL {t['visqol_seconds']:.1f} s)")
    if args.json:
        from ..fileio import atomic_write_text
        meta = {k: getattr(m, "metadata", {}) or {} for k, m in models.items()}
        data = {"models": {k: {"steps": meta[k].get("steps"), "command": meta[k].get("command"),
                               "config": dataclasses.asdict(m.config)} for k, m in models.items()},
                "max_seconds_per_clip": args.max_seconds,
                "split": args.split, "command": common.command_line(argv), **result.to_dict()}
        atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.png and result.example:
        ex = result.example
        try:
            from ..plots import spectrogram_png
            spectrogram_png(args.png, {"target (the clip)": ex["target"],
                                       **{f"{label} (from its mel)": ex[label] for label in models},
                                       f"{BASELINE} (60 iterations, same mel)": ex[BASELINE]},
                            next(iter(models.values())).sample_rate_out, title=f"{ex['path']}", n_fft=1024,
                            hop_length=256)
            print(f"wrote {args.png}")
        except ImportError:
            logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
    return 0


def _cmd_eval_reverb(args, argv, model) -> int:
    """``rtgan eval`` for reverbs: :func:`rtgan.evaluate_reverb.evaluate_reverb`, its tables, JSON and picture."""
    from ..evaluate_reverb import BASELINE, evaluate_reverb, format_table
    for flag, value in (("--png-speech", args.png_speech), ("--update-metadata", args.update_metadata)):
        if value:
            raise ValueError(f"{flag} is not available for reverbs")
    seconds = 4.0 if args.max_seconds is None else args.max_seconds
    if not seconds >= 0.5:
        raise ValueError(f"--max-seconds must be at least 0.5 s for a reverb, got {seconds}")
    result = evaluate_reverb(model, Path(args.data), split=args.split, label=args.model, seconds=seconds,
                             max_clips=args.max_clips, progress=not args.quiet)
    print(format_table(result))
    print(f"{result.timing['clips']} clips in {result.timing['seconds']:.1f} s")
    if args.json:
        from ..fileio import atomic_write_text
        meta = getattr(model, "metadata", {}) or {}
        data = {"model": args.model, "checkpoint": args.checkpoint or "shipped", "steps": meta.get("steps"),
                "training_command": meta.get("command"), "split": args.split, "dry_seconds": seconds,
                "command": common.command_line(argv), **result.to_dict()}
        atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.png and result.example:
        ex = result.example
        try:
            from ..plots import spectrogram_png
            spectrogram_png(args.png, {"dry": ex["dry"], "target (wet)": ex["target"], f"{args.model} (wet)":
                                       ex[args.model], f"{BASELINE} (wet)": ex[BASELINE]},
                            model.sample_rate_out, title=f"{ex['path']} ({args.model})")
            print(f"wrote {args.png}")
        except ImportError:
            logging.warning("matplotlib not installed: no spectrogram (pip install 'rtgan[dev]')")
    return 0


def _cmd_eval_sr16(args, argv, models: dict) -> int:
    """``rtgan eval`` for 16 kHz models: :func:`rtgan.evaluate_sr16.evaluate_sr16`, its table and JSON."""
    from ..evaluate_sr16 import evaluate_sr16, format_fig3, write_json
    for flag, value in (("--png", args.png), ("--png-speech", args.png_speech),
                        ("--update-metadata", args.update_metadata)):
        if value:
            raise ValueError(f"{flag} is not available for the 16 kHz (sr16) evaluation")
    result = evaluate_sr16(models, Path(args.data), split=args.split, max_clips=args.max_clips,
                           visqol=not args.no_visqol, progress=not args.quiet, anti_alias=args.anti_alias)
    print(format_fig3(result))
    t = result.timing
    print(f"{t['clips']} clips in {t['seconds']:.1f} s"
          + (f"; ViSQOL {t['visqol_calls']} calls, {t['visqol_seconds']:.1f} s" if t["visqol_calls"] else ""))
    if args.json:
        extra = {"checkpoints": args.sr16 or [f"{args.model}={args.checkpoint or 'shipped'}"], "split": args.split,
                 "anti_alias": args.anti_alias, "command": common.command_line(argv)}
        write_json(result, Path(args.json), extra)
        print(f"wrote {args.json}")
    return 0
