"""pytest-benchmark suite (``pytest benchmarks/ --benchmark-only``): per-frame stages and a full render.

Targets (40 ms per frame at 25 fps) are read from these reports, never asserted in unit tests.
"""

from runtime.mel import log_mel


def test_logmel_one_frame(benchmark, ctx):
    chunk = ctx["audio"][:1280]
    benchmark(log_mel, chunk)


def test_audio2motion_one_frame_streaming(benchmark, ctx):
    am = ctx["animator"].audio_model
    mel = log_mel(ctx["audio"])[:4]
    state = am.initial_state()

    def step():
        nonlocal state
        _, state = am.run(mel, state)

    benchmark.pedantic(step, rounds=200, warmup_rounds=10)


def test_draw_one_frame(benchmark, ctx):
    av, r = ctx["avatar"], ctx["renderer"]
    lm = av.neutral.copy()
    benchmark.pedantic(r.draw, args=(lm, (0.05, 0.02, 0.01), 0.0), rounds=200, warmup_rounds=10)


def test_render_10s_offline(benchmark, ctx, tmp_path):
    from runtime.pipeline import render

    benchmark.pedantic(render, args=(ctx["avatar"], ctx["audio"], tmp_path / "b.mp4"),
                       kwargs={"animator": ctx["animator"]}, rounds=3, warmup_rounds=1)
