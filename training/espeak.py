"""eSpeak NG speech with phoneme-level timings, through libespeak-ng's C API (ctypes).

The ``espeak-ng`` command line prints no timings for its own voices, but the library reports an
``espeakEVENT_PHONEME`` event (mnemonic + output sample index) for every phoneme when initialised
with ``espeakINITIALIZE_PHONEME_EVENTS``. We synthesize in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode,
collect the 22.05 kHz int16 buffers and the events from the synth callback, resample to 16 kHz
and map eSpeak's English mnemonics (``@``, ``3:``, ``aI``, ``tS`` ...) onto the CMU/flite phone
set of :mod:`training.visemes`. r-coloured diphthongs and syllabic consonants (``A@``, ``aI@``,
``@L``, ``n-``) are split into two phones.

The library is process-global and not thread-safe: every call holds a module lock, the library is
initialised lazily once per process (again in a forked child whose parent was mid-synthesis).

    audio, phones = synthesize_espeak("Hello there.", voice="en-gb-scotland", variant="f3", pitch=60)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from pathlib import Path

import numpy as np

from .visemes import Phone

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050  # what libespeak-ng's own voices produce (checked against espeak_Initialize)

# A varied, human-sounding set of the voice variants shipped in espeak-ng-data/voices/!v
# (left out: heavy echo/robot, whisper, unvoiced, joke and very high-pitched ones).
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6",
    "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael", "Mike",
    "adam", "antonio", "aunty", "belinda", "benjamin", "croak", "david", "ed", "edward", "grandma",
    "grandpa", "gustave", "linda", "marcelo", "max", "paul", "pedro", "quincy", "rob", "robert",
    "shelby", "steph", "travis", "victor",
)

# --- C API (speak_lib.h, API revision 12) ---------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_EVENT_SAMPLERATE = 8
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE, _P_PUNCTUATION, _P_CAPITALS, _P_WORDGAP = 1, 2, 3, 4, 5, 6, 7
_BUFLENGTH_MS = 100


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT; on x86_64: 6 x int (24 bytes), void* at 24, 8-byte union at 32, size 40."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """The initialised library plus the buffers the synth callback fills."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.chunks: list[bytes] = []
        self.events: list[tuple[str, int, int]] = []  # (mnemonic, sample, audio_position ms)
        self.callback = _CALLBACK(self._on_synth)  # keep a reference: the library holds a raw pointer
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFLENGTH_MS, None,
                                     _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}): espeak-ng-data not found?")
        self.rate = rate
        path = ctypes.c_char_p()
        self.version = (lib.espeak_Info(ctypes.byref(path)) or b"?").decode()
        self.data_path = Path(path.value.decode()) if path.value else None
        lib.espeak_SetSynthCallback(self.callback)
        log.debug("libespeak-ng %s initialised (%d Hz, data %s)", self.version, rate, self.data_path)

    def _on_synth(self, wav: ctypes.POINTER(ctypes.c_short), n: int, events: ctypes.POINTER(_Event)) -> int:
        if wav and n > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * n))
        if events:
            i = 0
            while True:
                ev = events[i]
                if ev.type == _EVENT_LIST_TERMINATED:
                    break
                if ev.type == _EVENT_PHONEME:
                    name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                    self.events.append((name, ev.sample, ev.audio_position))
                i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
              ) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
        """int16 audio at ``self.rate`` and the phoneme events (mnemonic, sample, ms)."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        for param, value in ((_P_RATE, rate), (_P_PITCH, pitch), (_P_RANGE, pitch_range), (_P_VOLUME, 100),
                             (_P_WORDGAP, 0), (_P_PUNCTUATION, 0), (_P_CAPITALS, 0)):
            lib.espeak_SetParameter(param, int(value), 0)
        self.chunks, self.events = [], []
        data = text.encode("utf-8")
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err}")
        audio = np.frombuffer(b"".join(self.chunks), dtype=np.int16).copy()
        events, self.chunks, self.events = self.events, [], []
        return audio, events

    def voices(self) -> list[tuple[str, str, list[str]]]:
        """(name, identifier, languages) of every installed voice."""
        out = []
        arr = self.lib.espeak_ListVoices(None)
        i = 0
        while arr[i]:
            v = arr[i].contents
            langs, p = [], v.languages
            while p and ctypes.c_ubyte.from_address(p).value:  # (priority byte, NUL-terminated name)...
                s = ctypes.string_at(p + 1)
                langs.append(s.decode("utf-8", "replace"))
                p += len(s) + 2
            out.append(((v.name or b"").decode("utf-8", "replace"), (v.identifier or b"").decode(), langs))
            i += 1
        return out


_lock = threading.Lock()
_engine: _Engine | None = None
_load_error: str | None = None
_busy = False


def _after_fork_in_child() -> None:
    """A fork can happen while another thread holds the lock: give the child a fresh one (and a
    fresh library state when the parent was mid-synthesis)."""
    global _lock, _engine, _busy
    _lock = threading.Lock()
    if _busy:
        _engine, _busy = None, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _find_library() -> str | None:
    for name in ("libespeak-ng.so.1", "libespeak-ng.so", ctypes.util.find_library("espeak-ng")):
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return None


def _get_engine() -> _Engine:
    """The process's initialised engine; call with ``_lock`` held."""
    global _engine, _load_error
    if _engine is None:
        if _load_error is not None:
            raise RuntimeError(_load_error)
        name = _find_library()
        if name is None:
            _load_error = "libespeak-ng is not installed (apt-get install libespeak-ng1 espeak-ng-data)"
            raise RuntimeError(_load_error)
        try:
            _engine = _Engine(ctypes.CDLL(name))
        except (OSError, RuntimeError, AttributeError) as e:
            _load_error = f"libespeak-ng unusable: {e}"
            raise RuntimeError(_load_error) from e
    return _engine


def espeak_available() -> bool:
    """True if libespeak-ng loads and finds its data (and at least one English voice)."""
    try:
        with _lock:
            eng = _get_engine()
            return eng.rate == ESPEAK_RATE and eng.lib.espeak_SetVoiceByName(b"en-us") == 0
    except RuntimeError as e:
        log.debug("espeak-ng unavailable: %s", e)
        return False


def list_voices(language_prefix: str = "en") -> list[str]:
    """Names usable as ``synthesize_espeak(voice=...)`` (eSpeak's own voices, not MBROLA ones) for
    languages starting with ``language_prefix``, e.g. ``['en', 'en-029', 'en-gb-scotland', ...]``."""
    with _lock:
        eng = _get_engine()
        names = set()
        for _, ident, langs in eng.voices():
            if ident.startswith(("mb/", "!v/")) or not any(lang.startswith(language_prefix) for lang in langs):
                continue
            name = ident.rsplit("/", 1)[-1].lower()
            if eng.lib.espeak_SetVoiceByName(name.encode()) == 0:
                names.add(name)
        return sorted(names)


def _variant_exists(variant: str, eng: _Engine) -> bool:
    if eng.data_path is None:
        return True
    return (eng.data_path / "voices" / "!v" / variant).is_file()


# --- eSpeak NG English mnemonic -> CMU/flite phones -----------------------------------------------
_PHONEMAP: dict[str, tuple[str, ...]] = {
    # vowels
    "@": ("ax",), "@2": ("ax",), "@5": ("ax",), "@-": ("ax",), "a#": ("ax",), "I#": ("ih",), "I2": ("ih",),
    "I2#": ("ih",), "i": ("iy",), "i:": ("iy",), "I": ("ih",), "E": ("eh",), "E2": ("eh",), "E#": ("eh",),
    "a": ("ae",), "aa": ("ae",), "a2": ("ax",), "A:": ("aa",), "A": ("aa",), "A#": ("aa",), "0": ("aa",),
    "0#": ("aa",), "V": ("ah",), "O:": ("ao",), "O": ("ao",), "O2": ("ao",), "U": ("uh",), "u:": ("uw",),
    "u": ("uw",), "3:": ("er",), "3": ("axr",), "@r": ("axr",), "eI": ("ey",), "aI": ("ay",), "aU": ("aw",),
    "OI": ("oy",), "oU": ("ow",), "@U": ("ow",), "o@": ("ow", "r"), "IR": ("ih",), "VR": ("ah",), "e": ("ey",),
    "o": ("ow",), "aI3": ("ay", "er"), "aU3": ("aw", "er"), "i@3": ("ih", "r"), "0@": ("ao", "r"),
    # r-coloured vowels / centring diphthongs
    "A@": ("aa", "r"), "e@": ("eh", "r"), "i@": ("ih", "r"), "O@": ("ao", "r"), "U@": ("uh", "r"),
    "aI@": ("ay", "er"), "aU@": ("aw", "er"), "3:r": ("er",),
    # syllabic consonants
    "@L": ("ax", "l"), "n-": ("ax", "n"), "m-": ("ax", "m"), "l-": ("ax", "l"), "r-": ("r",),
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",), "f": ("f",), "v": ("v",),
    "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",), "S": ("sh",), "Z": ("zh",), "h": ("hh",),
    "tS": ("ch",), "dZ": ("jh",), "m": ("m",), "n": ("n",), "N": ("ng",), "l": ("l",), "r": ("r",),
    "w": ("w",), "j": ("y",), "W": ("w",), "x": ("k",), "C": ("hh",), "?": ("t",), "t#": ("d",),
    "t2": ("t",), "d#": ("d",), "d2": ("d",), "z#": ("z",), "s2": ("s",), "l/": ("l",), "l/2": ("l",),
    "l#": ("l",), "r/": ("r",), "n2": ("n",), "w#": ("w",), "k2": ("k",), "tS2": ("ch",), "dZ2": ("jh",),
}
# share of a split mnemonic's duration given to each part
_SPLIT_SHARE: dict[tuple[str, ...], tuple[float, ...]] = {}
_VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"}
_warned: set[str] = set()


def map_mnemonic(mnemonic: str) -> tuple[str, ...]:
    """CMU/flite phone(s) for one eSpeak NG phoneme mnemonic (pauses -> ``pau``); unknown
    mnemonics fall back to the nearest known one (logged once at debug level)."""
    m = mnemonic.replace("'", "").replace(",", "").strip()
    if not m or m.startswith("_") or m in ("||", "|"):
        return ("pau",)
    if m in _PHONEMAP:
        return _PHONEMAP[m]
    # strip eSpeak's variant decorations (digits, #, /, ;, ~, ...) then try shorter prefixes
    base = m.rstrip("0123456789#/;~-=!^")
    for cand in (base, base[:3], base[:2], base[:1], base.lower()[:1]):
        if cand and cand in _PHONEMAP:
            out = _PHONEMAP[cand]
            break
    else:
        out = ("ah",) if base[:1].lower() in "aeiouy@03" else ("pau",) if not base else ("t",)
    if mnemonic not in _warned:
        _warned.add(mnemonic)
        log.debug("espeak mnemonic %r not in the map: using %s", mnemonic, " ".join(out))
    return out


def _phones_from_events(events: list[tuple[str, int]], n_samples: int, sr: int) -> list[Phone]:
    """Contiguous phones from (mnemonic, start sample) events over ``n_samples`` of audio at ``sr``."""
    segs: list[tuple[str, int, int]] = []
    starts = [min(max(s, 0), n_samples) for _, s in events]
    starts = list(np.maximum.accumulate(starts)) if starts else []
    if not starts or starts[0] > 0:
        segs.append(("pau", 0, starts[0] if starts else n_samples))
    for i, (mn, _) in enumerate(events):
        a = int(starts[i])
        b = int(starts[i + 1]) if i + 1 < len(events) else n_samples
        if b <= a:
            continue
        parts = map_mnemonic(mn)
        if len(parts) == 1:
            segs.append((parts[0], a, b))
        else:  # split: vowel part gets 60 %, the glide/consonant the rest
            cut = a + int(round((b - a) * 0.6))
            segs.extend(((parts[0], a, cut), (parts[1], cut, b)))
    merged: list[list] = []
    for lab, a, b in segs:
        if b <= a:
            continue
        if merged and lab == "pau" and merged[-1][0] == "pau":
            merged[-1][2] = b
        else:
            merged.append([lab, a, b])
    if not merged:
        merged = [["pau", 0, n_samples]]
    merged[-1][2] = n_samples
    return [Phone(lab, a / sr, b / sr) for lab, a, b in merged]


def synthesize_espeak(text: str, voice: str = "en-us", variant: str | None = None, rate: int = 175,
                      pitch: int = 50, pitch_range: int = 50) -> tuple[np.ndarray, list[Phone]]:
    """Speak ``text`` with an eSpeak NG voice (+ optional ``!v`` variant such as ``"m3"``/``"f2"``).

    ``rate`` is words per minute (80..450), ``pitch`` and ``pitch_range`` 0..100 (50 = voice default).
    Returns mono float32 audio at 16 kHz in [-1, 1] and contiguous timed CMU/flite phones covering
    it exactly (``pau`` for silences)."""
    import soxr

    name = voice if not variant else f"{voice}+{variant}"
    with _lock:
        global _busy
        eng = _get_engine()
        if variant and not _variant_exists(variant, eng):
            raise ValueError(f"unknown espeak-ng voice variant {variant!r}")
        _busy = True
        try:
            raw, events = eng.synth(text, name, rate, pitch, pitch_range)
        finally:
            _busy = False
        sr = eng.rate
    if raw.size == 0:
        return np.zeros(0, np.float32), []
    # event sample indices are exact output positions; cross-check them against the ms stamps
    ev = [(mn, s) for mn, s, _ in events]
    if any(abs(s - ms * sr / 1000) > sr * 0.002 for _, s, ms in events):
        log.debug("espeak sample field disagrees with audio_position: using audio_position")
        ev = [(mn, int(round(ms * sr / 1000))) for mn, _, ms in events]
    x = raw.astype(np.float32) / 32768.0
    audio = soxr.resample(x, sr, SAMPLE_RATE).astype(np.float32) if sr != SAMPLE_RATE else x
    audio = np.clip(audio, -1.0, 1.0)
    scale = SAMPLE_RATE / sr
    phones = _phones_from_events([(mn, int(round(s * scale))) for mn, s in ev], audio.size, SAMPLE_RATE)
    return audio, phones
