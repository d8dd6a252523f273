"""The opt-in ``music21-fluidsynth`` corpus source: music21's bundled scores, rendered with FluidSynth.

music21 ships a corpus of scores (MusicXML, Humdrum, ABC; about 176 hours
of music in all). This module turns a deterministic selection of them into
audio for :func:`rtgan.data.corpus.build_corpus`:

1. **Pieces** (:func:`~rtgan.data.midi.pieces.select_pieces`): the core corpus paths
   (``music21.corpus.getCorePaths()``) relative to the corpus folder, sorted,
   with the suffixes in :data:`~rtgan.data.midi.pieces.SCORE_SUFFIXES` (Roman-numeral analyses,
   ``.rntxt``, are left out: they restate pieces that are already there).
   They are put in *round-robin order over the top-level folders* (composer
   or collection; folders sorted by name, pieces inside a folder in a salted
   sha256 order independent of the split hash) so that a capped selection is spread over all composers instead of
   being mostly Palestrina and Ryan's Mammoth Collection. ``size="full"``
   takes the first :data:`~rtgan.data.midi.pieces.FULL_MAX_PIECES` (300) pieces of that order.
   Every piece gets its train/val/test split from
   :func:`rtgan.data.common.assign_splits` over those 300 pieces (unweighted:
   durations are only known after parsing, so ~80/10/10 of the pieces).
   ``size="small"`` takes, per split, the first pieces of the same order
   whose file is at most :data:`~rtgan.data.midi.pieces.SMALL_MAX_FILE_BYTES` (2 train, 1 val,
   1 test: :data:`~rtgan.data.midi.pieces.SMALL_PIECES_PER_SPLIT`), so a small build's pieces keep
   the split they have in a full build.
2. **MIDI** (:func:`~rtgan.data.midi.export.export_midi`): each piece is parsed with music21 and
   written with ``score.write('midi')``. A file holding several scores (an
   ABC tune book parses to an ``Opus``) becomes one MIDI file with the tunes
   one after another, :data:`~rtgan.data.midi.export.OPUS_GAP_SECONDS` apart. MIDI files are merged
   into one track with a fixed tempo (times in seconds are kept) and cut at
   :data:`~rtgan.data.midi.export.MAX_PIECE_SECONDS` (15 min). The result is cached under
   ``<out>/.rtgan_cache/music21-fluidsynth/midi/``.
3. **Programs** (:func:`~rtgan.data.midi.pieces.programs_for`, :func:`~rtgan.data.midi.export.rewrite_programs`): every
   piece is rendered :data:`~rtgan.data.midi.pieces.PROGRAMS_PER_PIECE` (2) times, with programs
   picked from :data:`~rtgan.data.midi.pieces.GM_PROGRAMS` by a hash of the piece path. All melodic
   channels (every channel but 10, the GM drum channel) play that program:
   a program change on each channel at time 0, every later program change
   rewritten, bank selects dropped (done with ``mido``).
4. **Audio** (:func:`~rtgan.data.midi.render.render_midi`, :func:`~rtgan.data.midi.render.render_task_audio`):
   ``fluidsynth -ni -q -r RATE -F out.wav FluidR3_GM.sf2 in.mid`` (Debian
   packages ``fluidsynth`` and ``fluid-soundfont-gm``; default gain, reverb
   and chorus) at 48 kHz, or at the corpus rate if that is higher (at most
   96 kHz), into a temporary WAV that the corpus pipeline then mixes to
   mono, resamples, cuts into clips and writes as FLAC.

The FluidR3 samples are mostly band-limited well below 20 kHz: most rendered
clips have almost nothing above about 11-12 kHz (measured ``bandwidth_hz``
of a small build at 48 kHz: piano, guitar and flute 10.4-12.1 kHz; the
harpsichord reaches 17-18 kHz), so this source is for the 22.05 kHz
vocoders, not for 48 kHz super-resolution targets (filter on the
manifest's ``bandwidth_hz``).

Manifest rows: ``source`` ``"music21-fluidsynth"``, ``package`` ``"music21"``
with music21's version, ``original_path`` ``<score path>/program-NNN`` (score
path relative to music21's corpus folder, NNN the 0-based GM program),
``split_key`` the score path (all programs of a piece share a split),
``domain`` ``"music"``, ``original_sample_rate`` the render rate.

A score or MIDI file that can't be parsed, exported or rendered is skipped
with a logged warning; a missing ``fluidsynth``, soundfont, ``mido`` or
``music21`` stops the build before any work with :class:`~rtgan.data.midi.tools.MissingToolError`.

Modules: :mod:`~rtgan.data.midi.tools` (the source's name, errors, and the tools it needs),
:mod:`~rtgan.data.midi.pieces` (steps 1 and 3: pieces, programs, splits),
:mod:`~rtgan.data.midi.export` (step 2: scores to MIDI, re-programming) and
:mod:`~rtgan.data.midi.render` (step 4: FluidSynth, and the corpus worker's loader).
"""
