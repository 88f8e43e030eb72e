"""pytest-benchmark suite (``pytest benchmarks/ --benchmark-only``): per-frame stages and a full render.

Targets (40 ms per frame at 25 fps) are read from these reports, never asserted in unit tests.
"""
import numpy as np

from runtime.mel import log_mel


def test_logmel_one_frame(benchmark, ctx):
    chunk = ctx["audio"][:1280]
    benchmark(log_mel, chunk)


def test_audio2motion_one_frame_streaming(benchmark, ctx):
    an = ctx["animator"]
    mel = log_mel(ctx["audio"])[None, :4]
    state = {"mel_ctx": np.zeros((1, 80, an.ctx), np.float32), "h": np.zeros((1, 1, an.hidden), np.float32),
             "c": np.zeros((1, 1, an.hidden), np.float32)}

    def step():
        out = an.model.run({"mel": mel, **state})
        state.update(mel_ctx=out["mel_ctx_out"], h=out["h_out"], c=out["c_out"])

    benchmark.pedantic(step, rounds=200, warmup_rounds=10)


def test_draw_one_frame(benchmark, ctx):
    av, r = ctx["avatar"], ctx["renderer"]
    lm = av.neutral.copy()
    benchmark.pedantic(r.draw, args=(lm, (0.05, 0.02, 0.01), 0.0), rounds=200, warmup_rounds=10)


def test_render_10s_offline(benchmark, ctx, tmp_path):
    from runtime.pipeline import render

    benchmark.pedantic(render, args=(ctx["avatar"], ctx["audio"], tmp_path / "b.mp4"),
                       kwargs={"animator": ctx["animator"]}, rounds=3, warmup_rounds=1)
