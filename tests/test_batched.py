"""Batched multi-stream stepping: ``AudioModel.step_many`` runs N streams' model steps as one graph call and gives
each stream exactly the frames it gives on its own."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.streaming import Stream

SPF = 640  # 16 kHz samples per 40 ms frame


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)


def _solo(model, neutral, pcm: np.ndarray, seed: int, chunk: int):
    s = Stream(model, neutral, seed=seed)
    out = []
    for i in range(0, pcm.size, chunk):
        s.accept_audio(pcm[i : i + chunk])
        while s.ready():
            out.append(s.step(draw=False))
    s.flush()
    while s.ready():
        out.append(s.step(draw=False))
    return out


def _voices(speech: np.ndarray, n: int) -> list[np.ndarray]:
    """n different signals: the speech from other offsets, gains, and one silent stream."""
    out = []
    for i in range(n):
        a = np.roll(speech, i * 2311) * (0.4 + 0.15 * (i % 5))
        out.append(np.zeros_like(speech) if i == 2 else a.astype(np.float32))
    return out


@pytest.mark.parametrize("n", [1, 5])
def test_step_many_equals_each_stream_alone(animator, speech, n):
    model = animator.audio_model
    neutral = np.full((68, 2), 0.5, np.float32)
    pcm = _voices(speech[: 60 * SPF], n)
    solo = [_solo(model, neutral, p, seed=i, chunk=SPF) for i, p in enumerate(pcm)]
    streams = [Stream(model, neutral, seed=i, defer=True) for i in range(n)]
    got: list[list] = [[] for _ in range(n)]
    calls = 0
    for k in range(0, pcm[0].size, SPF):  # lock-step ticks: every stream gets one 40 ms chunk
        for s, p in zip(streams, pcm):
            s.accept_audio(p[k : k + SPF])
        calls += model.run_pending(streams)
        for i, f in enumerate(model.step_many(streams, draw=False)):
            if f is not None:
                got[i].append(f)
    assert calls == pcm[0].size // SPF  # one graph call per tick for all n streams together
    for s, g in zip(streams, got):
        s.flush()
        while s.ready():
            g.append(s.step(draw=False))
    for i in range(n):
        assert len(got[i]) == len(solo[i]) == pcm[i].size // SPF
        np.testing.assert_allclose(np.stack([f.mouth for f in got[i]]), np.stack([f.mouth for f in solo[i]]), atol=2e-5)
        np.testing.assert_allclose(
            np.stack([f.landmarks for f in got[i]]), np.stack([f.landmarks for f in solo[i]]), atol=2e-5
        )
        np.testing.assert_array_equal([f.blink for f in got[i]], [f.blink for f in solo[i]])
    if n > 1:  # the streams really differ (the silent one stays closed), so equality is not trivial
        opens = [float(np.mean([f.mouth[0] for f in got[i]])) for i in range(n)]
        assert opens[2] < min(o for j, o in enumerate(opens) if j != 2)


def test_ragged_streams_and_deferred_stream_alone(animator, speech):
    """Streams fed different amounts per tick still match; a deferred stream also works on its own."""
    model = animator.audio_model
    neutral = np.zeros((68, 2), np.float32)
    pcm = speech[: 40 * SPF]
    ref = _solo(model, neutral, pcm, seed=3, chunk=SPF)
    a = Stream(model, neutral, seed=3, defer=True)  # 3 frames per tick
    b = Stream(model, neutral, seed=3, defer=True)  # 1 frame per tick
    fa, fb, ia, ib = [], [], 0, 0
    while ia < pcm.size or ib < pcm.size:
        a.accept_audio(pcm[ia : ia + 3 * SPF])
        ia += 3 * SPF
        b.accept_audio(pcm[ib : ib + SPF])
        ib += SPF
        model.run_pending([a, b])
        for s, acc in ((a, fa), (b, fb)):
            while s.ready():
                acc.append(s.step(draw=False))
    c = Stream(model, neutral, seed=3, defer=True)  # never batched: ready()/step() run the model itself
    fc = []
    assert c.accept_audio(pcm) == pcm.size // SPF - model.lookahead
    while c.ready():
        fc.append(c.step(draw=False))
    for s, acc in ((a, fa), (b, fb), (c, fc)):
        s.flush()
        while s.ready():
            acc.append(s.step(draw=False))
        assert len(acc) == len(ref)
        np.testing.assert_allclose(
            np.stack([f.landmarks for f in acc]), np.stack([f.landmarks for f in ref]), atol=2e-5
        )
