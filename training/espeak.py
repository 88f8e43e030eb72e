"""eSpeak NG speech with phoneme-level timings, through libespeak-ng's C API (ctypes).

The ``espeak-ng`` command line prints no timings for its own voices, but the library reports an
``espeakEVENT_PHONEME`` event (mnemonic + output sample index) for every phoneme when initialised
with ``espeakINITIALIZE_PHONEME_EVENTS``. We synthesize in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode,
collect the 22.05 kHz int16 buffers and the events in the synth callback, resample to 16 kHz and
map eSpeak's English mnemonics (``@``, ``3:``, ``aI``, ``tS`` ...) onto the CMU/flite phone set of
:mod:`training.visemes` (accent-aware: ``A@`` is [ɑːɹ] in en-us but [ɑː] in en-gb).

Determinism: the library keeps hidden state from one utterance to the next (a static pitch-flutter
index, glottal phase, AGC, libc ``rand()`` for breath noise), so in-process synthesis depends on
what was spoken before, and it cannot be re-initialised (``espeak_Terminate`` + ``espeak_Initialize``
hangs). So each process initialises the library once, never synthesizes itself, and runs every
request in a short-lived ``fork()`` of that pristine state: same inputs -> bit-identical audio in
any process, whatever ran before. This also makes concurrent calls from threads safe, and a crash
inside the library only kills the child. Without ``os.fork`` (not POSIX) it falls back to
in-process synthesis under a lock (not history-independent).

    audio, phones = synthesize_espeak("Hello there.", voice="en-gb-scotland", variant="f3", pitch=60)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import pickle
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .visemes import Phone

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ESPEAK_RATE = 22_050  # what libespeak-ng's own voices produce (espeak_Initialize returns it)

# A varied, human-sounding set of the voice variants shipped in espeak-ng-data/voices/!v
# (left out: long echo/robots, whisper, unvoiced, novelty and extreme-pitch ones).
# fmt: off
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6",
    "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael", "Mike",
    "adam", "antonio", "aunty", "belinda", "benjamin", "croak", "david", "ed", "edward", "grandma",
    "grandpa", "gustave", "linda", "marcelo", "max", "paul", "pedro", "quincy", "rob", "robert",
    "shelby", "steph", "travis", "victor",
)
# fmt: on

# --- C API (speak_lib.h, API revision 12) ---------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000  # return an error instead of exit() when espeak-ng-data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE, _P_PUNCTUATION, _P_CAPITALS, _P_WORDGAP = 1, 2, 3, 4, 5, 6, 7
_BUFLENGTH_MS = 100


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT; on x86_64: 6 x int (24 bytes), void* at 24, 8-byte union at 32, size 40."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_Events = list[tuple[str, int, int]]  # (mnemonic, sample index, audio_position ms)


class _Engine:
    """The initialised library plus the buffers its synth callback fills."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.chunks: list[bytes] = []
        self.events: _Events = []
        self.callback = _CALLBACK(self._on_synth)  # keep a reference: the library holds a raw pointer
        sig = {
            "espeak_Initialize": ([ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int], ctypes.c_int),
            "espeak_SetSynthCallback": ([_CALLBACK], None),
            "espeak_SetVoiceByName": ([ctypes.c_char_p], ctypes.c_int),
            "espeak_SetParameter": ([ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int),
            "espeak_Synth": (
                [
                    ctypes.c_char_p,
                    ctypes.c_size_t,
                    ctypes.c_uint,
                    ctypes.c_int,
                    ctypes.c_uint,
                    ctypes.c_uint,
                    ctypes.c_void_p,
                    ctypes.c_void_p,
                ],
                ctypes.c_int,
            ),
            "espeak_Synchronize": ([], ctypes.c_int),
            "espeak_ListVoices": ([ctypes.c_void_p], ctypes.POINTER(ctypes.POINTER(_Voice))),
            "espeak_Info": ([ctypes.POINTER(ctypes.c_char_p)], ctypes.c_char_p),
        }
        for fn, (args, res) in sig.items():
            getattr(lib, fn).argtypes = args
            getattr(lib, fn).restype = res
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFLENGTH_MS, None, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({rate}): espeak-ng-data not found?")
        self.rate = rate
        path = ctypes.c_char_p()
        self.version = (lib.espeak_Info(ctypes.byref(path)) or b"?").decode()
        self.data_path = Path(path.value.decode()) if path.value else None
        lib.espeak_SetSynthCallback(self.callback)
        # pre-load the English dictionary and phoneme tables once (no synthesis), so the forked
        # children do not each read them again (~25 % faster); every child starts from this state
        lib.espeak_SetVoiceByName(b"en-us")
        log.debug("libespeak-ng %s initialised (%d Hz, data %s)", self.version, rate, self.data_path)

    def _on_synth(self, wav: Any, n: int, events: Any) -> int:
        if wav and n > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * n))
        if events:
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == _EVENT_PHONEME:  # id.string: up to 8 bytes, NUL-terminated unless full
                    name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                    self.events.append((name, ev.sample, ev.audio_position))
                i += 1
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> tuple[bytes, _Events]:
        """int16 audio bytes at ``self.rate`` and the phoneme events. Mutates library state."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        for param, value in (
            (_P_RATE, rate),
            (_P_PITCH, pitch),
            (_P_RANGE, pitch_range),
            (_P_VOLUME, 100),
            (_P_WORDGAP, 0),
            (_P_PUNCTUATION, 0),
            (_P_CAPITALS, 0),
        ):
            lib.espeak_SetParameter(param, int(value), 0)
        self.chunks, self.events = [], []
        data = text.encode("utf-8")
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with error {err}")
        audio, events, self.chunks, self.events = b"".join(self.chunks), self.events, [], []
        return audio, events

    def voices(self) -> list[tuple[str, str, list[str]]]:
        """(name, identifier, languages) of every installed voice. Mutates library state."""
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
_initialising = False


def _after_fork_in_child() -> None:
    """A fork can happen while another thread holds the lock: give the child a fresh one."""
    global _lock, _engine, _load_error
    _lock = threading.Lock()
    if _initialising:  # forked mid-espeak_Initialize: that half-built state is unusable
        _engine, _load_error = None, "process was forked while libespeak-ng was initialising"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _load_library() -> ctypes.CDLL:
    for name in ("libespeak-ng.so.1", "libespeak-ng.so", ctypes.util.find_library("espeak-ng")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    raise RuntimeError("libespeak-ng is not installed (apt-get install libespeak-ng1 espeak-ng-data)")


def _get_engine() -> _Engine:
    """The process's initialised (never synthesized-with) engine; call with ``_lock`` held."""
    global _engine, _load_error, _initialising
    if _engine is None:
        if _load_error is not None:
            raise RuntimeError(_load_error)
        _initialising = True
        try:
            _engine = _Engine(_load_library())
        except (OSError, RuntimeError, AttributeError) as e:
            _load_error = f"libespeak-ng unusable: {e}"
            raise RuntimeError(_load_error) from e
        finally:
            _initialising = False
    return _engine


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd``, fewer only at EOF."""
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _run_isolated(fn: Callable[[_Engine], Any]) -> Any:
    """``fn(engine)`` on a pristine copy of the initialised library: in a forked child, result
    pickled back through a pipe (in-process under the lock where fork is unavailable)."""
    if not hasattr(os, "fork"):
        with _lock:
            return fn(_get_engine())
    with _lock:
        eng = _get_engine()
        r, w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            raise
    if pid == 0:  # child: never returns, never runs the parent's atexit/finally code
        code = 0
        try:
            os.close(r)
            try:
                payload = pickle.dumps((True, fn(eng)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                code = 1
                payload = pickle.dumps((False, (type(e).__name__, str(e))))
            _write_all(w, struct.pack("<Q", len(payload)) + payload)
        finally:
            os._exit(code)
    os.close(w)
    try:  # length-prefixed: no waiting for EOF, which a process forked meanwhile could hold off
        header = _read_exactly(r, 8)
        data = _read_exactly(r, struct.unpack("<Q", header)[0]) if len(header) == 8 else b""
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if len(header) != 8 or len(data) != struct.unpack("<Q", header)[0]:
        raise RuntimeError(f"espeak-ng worker died (wait status {status})")
    ok, result = pickle.loads(data)
    if not ok:
        kind, msg = result
        raise (ValueError if kind == "ValueError" else RuntimeError)(msg)
    return result


def espeak_available() -> bool:
    """True if libespeak-ng loads, finds its data and has an English voice."""
    try:
        with _lock:
            eng = _get_engine()
        return eng.rate == ESPEAK_RATE and bool(list_voices("en"))
    except RuntimeError as e:
        log.debug("espeak-ng unavailable: %s", e)
        return False


_voice_table: list[tuple[str, list[str]]] | None = None  # (file name, languages) of eSpeak's own voices


def _voices() -> list[tuple[str, list[str]]]:
    global _voice_table
    if _voice_table is None:
        _voice_table = [
            (ident.rsplit("/", 1)[-1].lower(), langs)
            for _, ident, langs in _run_isolated(lambda eng: eng.voices())
            if not ident.startswith(("mb/", "!v/"))
        ]  # MBROLA voices need mbrola + its data
    return _voice_table


def list_voices(language_prefix: str = "en") -> list[str]:
    """Names usable as ``synthesize_espeak(voice=...)`` (eSpeak's own voices, not MBROLA ones) for
    languages starting with ``language_prefix``, e.g. ``['en', 'en-029', 'en-gb-scotland', ...]``."""
    return sorted({name for name, langs in _voices() if any(lang.startswith(language_prefix) for lang in langs)})


def _resolve_voice(voice: str) -> str:
    """A voice file name for ``voice``; a language code such as ``en-gb`` picks the voice that lists
    it with the best priority."""
    key = voice.rsplit("/", 1)[-1].lower()
    table = _voices()
    if any(name == key for name, _ in table):
        return key
    for name, langs in table:
        if voice.lower() in (lang.lower() for lang in langs[:1]):
            return name
    for name, langs in table:
        if voice.lower() in (lang.lower() for lang in langs):
            return name
    return voice  # let espeak_SetVoiceByName decide


# --- eSpeak NG English mnemonic -> CMU/flite phones -----------------------------------------------
# Base table = non-rhotic British "en" realisations; per-voice overrides below (verified against
# the IPA each voice reports for the same events). Two-phone entries split the segment 60/40.
# fmt: off
_PHONEMAP: dict[str, tuple[str, ...]] = {
    # monophthongs
    "@": ("ax",), "@-": ("ax",), "@2": ("ax",), "@5": ("ax",), "@#": ("ax",), "a#": ("ax",), "3": ("ax",),
    "I#": ("ih",), "I2#": ("ih",), "I": ("ih",), "I2": ("ih",), "i": ("iy",), "i:": ("iy",), "E": ("eh",),
    "E2": ("eh",), "E#": ("eh",), "e#": ("eh",), "a": ("ae",), "a2": ("ae",), "aa": ("ae",), "A#": ("ae",),
    "A:": ("aa",), "0": ("aa",), "0#": ("aa",), "02": ("aa",), "V": ("ah",), "O:": ("ao",), "O": ("ao",),
    "O2": ("ao",), "o:": ("ao",), "U": ("uh",), "u:": ("uw",), "u": ("uw",), "3:": ("er",), "e:": ("ey",),
    # diphthongs
    "eI": ("ey",), "aI": ("ay",), "aI2": ("ay",), "aU": ("aw",), "OI": ("oy",), "oU": ("ow",), "oU#": ("ow",),
    # long / centring vowels (non-rhotic: [ɑː] [ɔː] [eə] [ɪə] [ʊə] [aɪə] [aʊə])
    "A@": ("aa",), "O@": ("ao",), "o@": ("ao",), "e@": ("eh", "ax"), "i@": ("iy", "ax"),
    "i@3": ("ih", "ax"), "U@": ("uh", "ax"), "aI@": ("ay", "ax"), "aU@": ("aw", "ax"),
    "aI3": ("ay", "axr"), "aU3": ("aw", "axr"), "IR": ("ax", "r"), "VR": ("ah", "r"),
    "A~": ("aa", "n"), "O~": ("ao", "n"),
    # syllabic consonants
    "@L": ("ax", "l"), "n-": ("n",), "m-": ("m",), "l-": ("l",),
    # consonants
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",), "f": ("f",), "v": ("v",),
    "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",), "S": ("sh",), "Z": ("zh",), "h": ("hh",),
    "tS": ("ch",), "dZ": ("jh",), "m": ("m",), "n": ("n",), "N": ("ng",), "l": ("l",), "r": ("r",),
    "r-": ("r",), "w": ("w",), "j": ("y",), ";": ("y",), "W": ("w",), "w#": ("w",), "x": ("k",), "C": ("hh",),
    "?": ("t",), "t#": ("t",), "t[": ("t",), "t2": ("t",), "d#": ("d",), "d2": ("d",), "z#": ("z",),
    "z/2": ("z",), "s2": ("s",), "l/": ("l",), "l/2": ("l",), "r/": ("r",), "n2": ("n",), "k2": ("k",),
}
# fmt: on
# fmt: off
_VOICE_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    # rhotic General American: [ɑːɹ] [oːɹ] [ɛɹ] [ɪɹ] [ʊɹ] [ɚ]
    "en-us": {"A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "e@": ("eh", "r"), "i@3": ("ih", "r"),
              "U@": ("uh", "r"), "3": ("axr",)},
    # Scottish: the r is its own event except in [ʉɹ]; [e] in "hair", "nurse", "happy"; [ʉ] in "foot"
    "en-gb-scotland": {"e@": ("eh",), "i@3": ("ih",), "U@": ("uw", "r"), "3:": ("eh",), "i": ("ey",),
                       "U": ("uw",)},
    "en-gb-x-rp": {"U@": ("ao",), "i": ("ih",), "aa": ("aa",)},  # "tour" [ɔː], "happy" [ɪ], "bath" [ɑː]
    "en-gb-x-gbclan": {"V": ("uh",)},  # northern "strut" [ʊ]
    "en-gb-x-gbcwmd": {"V": ("uh",), "aI": ("oy",), "e@": ("er",)},  # [ʊ] [ɔɪ] [ɜː]
    "en-029": {"A@": ("aa", "ax"), "O@": ("ao", "ax"), "o@": ("ow", "ax")},  # [ɑə] [ɔə] [oə]
}
# fmt: on
_warned: set[str] = set()


def _voice_key(voice: str) -> str:
    return voice.split("+", 1)[0].rsplit("/", 1)[-1].lower()


def map_mnemonic(mnemonic: str, voice: str = "en") -> tuple[str, ...]:
    """CMU/flite phone(s) for one eSpeak NG English phoneme mnemonic as spoken by ``voice``
    (pauses -> ``pau``). Unknown mnemonics fall back to the nearest known one (logged once)."""
    m = mnemonic.replace("'", "").replace(",", "").strip()
    if not m or m.startswith("_") or m in ("|", "||"):
        return ("pau",)
    over = _VOICE_OVERRIDES.get(_voice_key(voice), {})
    if m in over:
        return over[m]
    if m in _PHONEMAP:
        return _PHONEMAP[m]
    base = m.rstrip("0123456789#/;~-=!^[")  # eSpeak's variant decorations
    for cand in (base, base[:3], base[:2], base[:1]):
        if cand and cand in _PHONEMAP:
            out = over.get(cand, _PHONEMAP[cand])
            break
    else:
        out = ("ah",) if base[:1].lower() in "aeiouy@03" else ("t",)
    if mnemonic not in _warned:
        _warned.add(mnemonic)
        log.debug("espeak mnemonic %r not in the map: using %s", mnemonic, " ".join(out))
    return out


_STOPS = frozenset({"p", "b", "t", "d", "k", "g", "ch", "jh"})


def _segments_from_events(events: list[tuple[str, int]], n_samples: int, voice: str) -> list[list[Any]]:
    """Contiguous [label, start, end) sample segments from (mnemonic, start sample) events: each
    phone runs to the next event, audio before the first event is ``pau``, adjacent pauses merge."""
    segs: list[list[Any]] = []

    def add(label: str, a: int, b: int) -> None:
        if b <= a:
            return
        if segs and label == "pau" and segs[-1][0] == "pau":
            segs[-1][2] = b
        else:
            segs.append([label, a, b])

    starts = np.clip(np.maximum.accumulate([s for _, s in events]), 0, n_samples) if events else []
    add("pau", 0, int(starts[0]) if len(starts) else n_samples)
    for i, (mn, _) in enumerate(events):
        a = int(starts[i])
        b = int(starts[i + 1]) if i + 1 < len(events) else n_samples
        parts = map_mnemonic(mn, voice)
        if len(parts) == 1:
            add(parts[0], a, b)
        else:  # r-coloured / centring vowels, syllabic l: 60 % vowel, 40 % off-glide
            cut = a + int(round((b - a) * 0.6))
            add(parts[0], a, cut)
            add(parts[1], cut, b)
    if not segs:
        return [["pau", 0, n_samples]]
    segs[-1][2] = n_samples
    return segs


def _attach_closures(segs: list[list[Any]], audio: np.ndarray, sr: int) -> None:
    """eSpeak fires a voiceless stop's event near its release, so the silent closure before it is
    counted in the previous phone; the mouth is already closed for the stop then, so move that
    boundary back to where the audio falls quiet (>= 10 ms of 5 ms frames below -34 dB re the
    utterance's loud frames or -20 dB re the previous phone's peak)."""
    hop = sr // 200
    n = audio.size // hop
    if n == 0:
        return
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    thr = max(0.02 * float(np.percentile(rms, 95)), 1e-4)
    for i in range(1, len(segs)):
        lab, a, _ = segs[i]
        prev = segs[i - 1]
        if lab not in _STOPS or prev[0] == "pau":
            continue
        floor = prev[1] + int(0.4 * (prev[2] - prev[1]))  # keep >= 40 % of the previous phone
        f = a // hop  # last whole frame before the boundary is f - 1
        peak = float(rms[prev[1] // hop : f].max()) if f > prev[1] // hop else 0.0
        quiet = max(thr, 0.1 * peak)  # relative too: echo variants never fall fully silent
        k = f
        while k - 1 >= 0 and (k - 1) * hop >= floor and rms[k - 1] < quiet:
            k -= 1
        if (f - k) * hop >= sr // 100:
            segs[i][1] = prev[2] = k * hop


# Measured against pocketsphinx forced alignment (docs/corpus.md, "Cross-check"): eSpeak NG's
# phoneme events fire a median ~10 ms after the boundary they mark, for every phone class and accent.
EVENT_LAG_S = 0.010
PAUSE_SNAP_MAX_S = 0.200  # how far back a pause's start may move to where the audio falls quiet


L_ONSET_LEAD_S = 0.030  # /l/ events fire a further ~30 ms late (measured the same way)


def _shift_events(events: list[tuple[str, int]], voice: str, lag: int, l_lead: int) -> list[tuple[str, int]]:
    """Events moved earlier by the engine's measured event latency: ``lag`` samples, plus ``l_lead`` for an /l/, but
    never by more than half of the previous phone. The first event and speech right after a pause are left alone:
    their onsets agree with the audio (median +1 ms). Pauses are not moved blindly: their start is set from the
    audio by :func:`_snap_pauses`."""
    out = []
    for i, (mn, s) in enumerate(events):
        after_pause = i == 0 or map_mnemonic(events[i - 1][0], voice)[-1] == "pau"
        if not after_pause and map_mnemonic(mn, voice)[0] != "pau":  # a pause's start: _snap_pauses
            shift = lag + (l_lead if map_mnemonic(mn, voice)[0] == "l" else 0)
            prev = events[i - 1][1]  # the previous phone keeps at least half of itself
            s = max(s - shift, prev + (s - prev) // 2) if s > prev else s
        out.append((mn, max(s, 0)))
    return out


def _frame_rms(audio: np.ndarray, hop: int) -> np.ndarray:
    n = audio.size // hop
    return np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))


def _snap_pauses(segs: list[list[Any]], audio: np.ndarray, sr: int) -> None:
    """eSpeak sometimes fires a pause's event after the audio has already gone quiet (14 % of pauses,
    by a median of 25 ms), so the phone before it keeps the mouth open into silence. Move each inner
    or final pause's start back to just after the last 5 ms frame, within ``PAUSE_SNAP_MAX_S``, that is still speech:
    >= -30 dB re the utterance's loud frames and >= -20 dB re the previous phone's peak. The previous
    phone keeps >= 30 % of its length and at least 20 ms."""
    hop = sr // 200
    rms = _frame_rms(audio, hop)
    if rms.size == 0:
        return
    thr = max(0.03 * float(np.percentile(rms, 95)), 1e-4)
    for i in range(1, len(segs)):
        lab, a, _ = segs[i]
        prev = segs[i - 1]
        if lab != "pau" or prev[0] == "pau":
            continue
        floor = max(prev[1] + int(0.3 * (prev[2] - prev[1])), prev[1] + sr // 50, a - int(PAUSE_SNAP_MAX_S * sr))
        f = min(a // hop, rms.size)
        lo = prev[1] // hop
        peak = float(rms[lo:f].max()) if f > lo else 0.0
        quiet = max(thr, 0.1 * peak)
        k = f
        while k - 1 >= 0 and (k - 1) * hop >= floor and rms[k - 1] < quiet:
            k -= 1
        if k < f:
            segs[i][1] = prev[2] = k * hop


def _variant_exists(variant: str) -> bool:
    with _lock:
        path = _get_engine().data_path
    return path is None or (path / "voices" / "!v" / variant).is_file()


def synthesize_espeak(
    text: str, voice: str = "en-us", variant: str | None = None, rate: int = 175, pitch: int = 50, pitch_range: int = 50
) -> tuple[np.ndarray, list[Phone]]:
    """Speak ``text`` with an eSpeak NG voice (see :func:`list_voices`) and optional ``!v`` variant
    (see :data:`VARIANTS`). ``rate``: words per minute (80..450); ``pitch``, ``pitch_range``: 0..100,
    50 = the voice's default. Returns mono float32 audio at 16 kHz in [-1, 1] and contiguous timed
    CMU/flite phones covering it exactly (``pau`` for silences). Deterministic."""
    import soxr

    if variant and not _variant_exists(variant):
        raise ValueError(f"unknown espeak-ng voice variant {variant!r}")
    voice = _resolve_voice(voice)
    name = f"{voice}+{variant}" if variant else voice
    rate = int(np.clip(rate, 80, 450))
    pitch, pitch_range = int(np.clip(pitch, 0, 100)), int(np.clip(pitch_range, 0, 100))
    with _lock:
        sr = _get_engine().rate
    pcm, events = _run_isolated(lambda eng: eng.synth(text, name, rate, pitch, pitch_range))
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    if x.size == 0:
        return np.zeros(0, np.float32), []
    # the event's sample field is the exact output position; cross-check it with the ms stamp
    if any(abs(s - ms * sr / 1000) > sr * 0.002 for _, s, ms in events):
        log.debug("espeak sample field disagrees with audio_position: using audio_position")
        events = [(mn, int(round(ms * sr / 1000)), ms) for mn, _, ms in events]
    audio = np.clip(soxr.resample(x, sr, SAMPLE_RATE), -1.0, 1.0).astype(np.float32)
    scale = SAMPLE_RATE / sr
    events16 = _shift_events(
        [(mn, int(round(s * scale))) for mn, s, _ in events],
        voice,
        int(round(EVENT_LAG_S * SAMPLE_RATE)),
        int(round(L_ONSET_LEAD_S * SAMPLE_RATE)),
    )
    segs = _segments_from_events(events16, audio.size, voice)
    _attach_closures(segs, audio, SAMPLE_RATE)
    _snap_pauses(segs, audio, SAMPLE_RATE)
    return audio, [Phone(lab, a / SAMPLE_RATE, b / SAMPLE_RATE) for lab, a, b in segs]
