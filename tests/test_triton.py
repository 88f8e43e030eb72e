"""Triton model repository (export/triton.py) and client (runtime/triton_client.py).

Configs are parsed twice: with Triton's own protobuf schema (tritonclient[grpc]) and with a small
independent text-format reader; names, dims and data types are checked against the ONNX graphs. The
batch-first-state variants must equal the shipped models under onnxruntime. The client runs a Stream
through an in-process stand-in for the server (onnxruntime on the repository's model.onnx, enforcing the
config's dims and batching), and against a real Triton only when TOONSYNC_TRITON_URL is set.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import types

import numpy as np
import onnxruntime as ort
import pytest

from toonsync.runtime.backend import DEFAULT_MODEL_DIR
from toonsync.runtime.errors import ModelError
from toonsync.runtime.model_card import ModelCard
from toonsync.runtime.triton_client import TritonError, TritonURL

onnx = pytest.importorskip("onnx", reason="the Triton repository writer needs onnx (toonsync[export])")
write_triton_repo = pytest.importorskip("toonsync.export.triton").write_triton_repo

STATE = {"h", "c", "h_out", "c_out"}
ONNX_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.FLOAT16: "TYPE_FP16"}
# (precision, device) per generated repository; int8/fp16 fall back to fp32 for audio2motion_pcm
VARIANTS = {
    "fp32-cpu": ("fp32", "cpu"),
    "int8-tensorrt": ("int8", "tensorrt"),
    "fp16-gpu": ("fp16", "gpu"),
    "fp16-cpu": ("fp16", "cpu"),
}


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("triton")
    return {
        k: (root / k, write_triton_repo(DEFAULT_MODEL_DIR, root / k, precision=p, device=d))
        for k, (p, d) in VARIANTS.items()
    }


# -- an independent protobuf text-format reader (structure only, no schema) -------------------------------
_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"#]+))')


def read_pbtxt(text: str) -> dict:
    """field -> list of values (scalars or nested dicts), every field treated as repeated."""
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"cannot tokenize at {text[pos : pos + 30]!r}")
            break
        pos = m.end()
        if m.group(1):
            continue
        toks.append(m.group(2) or m.group(3) or m.group(4))

    def scalar(t: str):
        if t.startswith('"'):
            return t[1:-1].encode().decode("unicode_escape")
        if re.fullmatch(r"-?\d+", t):
            return int(t)
        if t in ("true", "false"):
            return t == "true"
        return t  # enum

    def value(i: int):
        if toks[i] == "{":
            return message(i + 1, "}")
        return scalar(toks[i]), i + 1

    def message(i: int, end: str | None):
        out: dict = {}
        while i < len(toks) and toks[i] != end:
            key = toks[i]
            i += 1
            if toks[i] == ":":
                i += 1
            if toks[i] == "[":
                i += 1
                while toks[i] != "]":
                    v, i = value(i)
                    out.setdefault(key, []).append(v)
                    if toks[i] == ",":
                        i += 1
                i += 1
            else:
                v, i = value(i)
                out.setdefault(key, []).append(v)
        return out, i + 1

    return message(0, None)[0]


def graph_io(path) -> dict[str, tuple[str, list]]:
    """name -> (Triton type, dims with -1 for symbolic) straight from an ONNX file."""
    g = onnx.load(str(path)).graph
    out = {}
    for v in [*g.input, *g.output]:
        t = v.type.tensor_type
        out[v.name] = (ONNX_TYPES[t.elem_type], [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim])
    return out


def _expected_dims(name: str, original_dims: list[int], sidecar_shape: list) -> list:
    """What the config must say, derived from the shipped (seq-first state) graph and its sidecar."""
    dims, side = list(original_dims), list(sidecar_shape)
    if name in STATE:
        dims[0], dims[1], side[0], side[1] = dims[1], dims[0], side[1], side[0]
    return [d if d >= 0 else (s if isinstance(s, int) else -1) for d, s in zip(dims[1:], side[1:])]


def test_configs_structure_match_onnx_graphs(repos):
    for key, (root, man) in repos.items():
        precision, device = VARIANTS[key]
        assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["audio2motion", "audio2motion_pcm"]
        for name, entry in man["models"].items():
            cfg = read_pbtxt((root / name / "config.pbtxt").read_text())
            assert cfg["name"] == [name] and cfg["backend"] == ["onnxruntime"] and cfg["max_batch_size"] == [64]
            variant = graph_io(root / name / "1" / "model.onnx")
            original = graph_io(DEFAULT_MODEL_DIR / entry["source"])
            side = ModelCard.load(DEFAULT_MODEL_DIR, name)
            shapes = {**side["inputs"], **side["outputs"]}
            for section, names in (("input", side["inputs"]), ("output", side["outputs"])):
                got = {io["name"][0]: io for io in cfg[section]}
                assert list(got) == list(names), f"{key}/{name}: {section} names/order"
                for n, io in got.items():
                    want = _expected_dims(n, original[n][1], shapes[n])
                    assert io["dims"] == want, f"{key}/{name}/{n}: {io['dims']} != {want}"
                    assert io["data_type"] == [original[n][0]] == [variant[n][0]]
                    # the served graph: batch on dim 0 (dynamic), the rest compatible with the config
                    vd = variant[n][1]
                    assert vd[0] == -1 and len(vd) == len(want) + 1
                    assert all(g in (-1, w) for g, w in zip(vd[1:], want)), f"{key}/{name}/{n}: graph {vd} vs {want}"
            db = cfg["dynamic_batching"][0]
            assert max(db["preferred_batch_size"]) <= 64 and db["max_queue_delay_microseconds"][0] > 0
            ig = cfg["instance_group"][0]
            assert ig["kind"] == ["KIND_CPU" if device == "cpu" else "KIND_GPU"] and ig["count"] == [1]
            accel = cfg.get("optimization", [{}])[0].get("execution_accelerators", [{}])[0]
            if device == "tensorrt":
                trt = accel["gpu_execution_accelerator"][0]
                params = {p["key"][0]: p["value"][0] for p in trt["parameters"]}
                assert trt["name"] == ["tensorrt"]
                assert params["precision_mode"] == ("INT8" if entry["precision"] == "int8" else "FP16")
                assert params["trt_profile_min_shapes"].startswith(f"{next(iter(side['inputs']))}:1x")
            else:
                assert not accel
            warm = {w["key"][0]: w["value"][0] for w in cfg["model_warmup"][0]["inputs"]}
            assert list(warm) == list(side["inputs"]) and all(w["zero_data"] == [True] for w in warm.values())
            assert entry["precision"] == (precision if name == "audio2motion" else "fp32")


def test_configs_parse_with_triton_schema(repos):
    mc = pytest.importorskip(
        "tritonclient.grpc.model_config_pb2",
        reason='Triton\'s ModelConfig schema comes with tritonclient[grpc]: pip install "toonsync[triton]"',
    )
    from google.protobuf import text_format

    for key, (root, man) in repos.items():
        precision, device = VARIANTS[key]
        for name in man["models"]:
            cfg = text_format.Parse((root / name / "config.pbtxt").read_text(), mc.ModelConfig())
            graph = graph_io(root / name / "1" / "model.onnx")
            assert cfg.name == name and cfg.backend == "onnxruntime" and cfg.max_batch_size == 64
            for io in [*cfg.input, *cfg.output]:
                dtype, dims = graph[io.name]
                assert mc.DataType.Name(io.data_type) == dtype
                assert (
                    dims[0] == -1
                    and all(g in (-1, c) for g, c in zip(dims[1:], io.dims))
                    and len(dims) == len(io.dims) + 1
                )
            assert {i.name for i in cfg.input} | {o.name for o in cfg.output} == set(graph)
            assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8, 16, 32, 64]
            kind = mc.ModelInstanceGroup.Kind.Name(cfg.instance_group[0].kind)
            assert kind == ("KIND_CPU" if device == "cpu" else "KIND_GPU")
            params = {k: v.string_value for k, v in cfg.parameters.items()}
            assert '"state_layout":"batch_first"' in params["toonsync"]
            assert (params.get("intra_op_thread_count") == "1") == (device == "cpu")
            fp16_on_cpu = device == "cpu" and name == "audio2motion" and precision == "fp16"
            assert cfg.optimization.graph.level == (2 if fp16_on_cpu else 0)
            accels = cfg.optimization.execution_accelerators.gpu_execution_accelerator
            assert [a.name for a in accels] == (["tensorrt"] if device == "tensorrt" else [])
            warm = cfg.model_warmup[0]
            assert warm.batch_size == 1 and set(warm.inputs) == {i.name for i in cfg.input}


def _state_inputs(sess) -> list[str]:
    outs = {o.name for o in sess.get_outputs()}
    return [i.name for i in sess.get_inputs() if f"{i.name}_out" in outs]


@pytest.mark.parametrize(
    "key,name", [("fp32-cpu", "audio2motion"), ("fp32-cpu", "audio2motion_pcm"), ("int8-tensorrt", "audio2motion")]
)
def test_batch_first_variant_equals_original(repos, key, name):
    root, man = repos[key]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    a = ort.InferenceSession(
        str(DEFAULT_MODEL_DIR / man["models"][name]["source"]), so, providers=["CPUExecutionProvider"]
    )
    b = ort.InferenceSession(str(root / name / "1" / "model.onnx"), so, providers=["CPUExecutionProvider"])
    ins = {i.name: i.shape for i in b.get_inputs()}
    assert ins["h"][1:] == [1, 192] and ins["c"][1:] == [1, 192]
    assert {o.name: o.shape for o in b.get_outputs()}["h_out"][1:] == [1, 192]
    rng = np.random.default_rng(1)
    batch, carried = 3, _state_inputs(a)
    sa = {
        "h": rng.standard_normal((1, batch, 192)),
        "c": rng.standard_normal((1, batch, 192)),
        "mel_ctx": rng.standard_normal((batch, 80, 4)),
    }
    if "pcm_ctx" in carried:
        sa["pcm_ctx"] = rng.standard_normal((batch, 240)) * 0.1
    sa = {k: v.astype(np.float32) for k, v in sa.items()}
    for step in range(5):
        frames = 1 + step % 3
        x = (
            {"pcm": (rng.standard_normal((batch, 640 * frames)) * 0.1).astype(np.float32)}
            if "pcm_ctx" in carried
            else {"mel": rng.standard_normal((batch, 4 * frames, 80)).astype(np.float32)}
        )
        ra = dict(zip([o.name for o in a.get_outputs()], a.run(None, {**x, **sa})))
        sb = {k: (np.ascontiguousarray(v.transpose(1, 0, 2)) if k in STATE else v) for k, v in sa.items()}
        rb = dict(zip([o.name for o in b.get_outputs()], b.run(None, {**x, **sb})))
        assert set(ra) == set(rb)
        for k, want in ra.items():
            got = rb[k].transpose(1, 0, 2) if k in STATE else rb[k]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{name} step {step} {k}")
        sa = {n: ra[f"{n}_out"] for n in carried}


def test_manifest_readme_and_parity_record(repos):
    root, man = repos["fp32-cpu"]
    assert man["state_layout"] == "batch_first" and set(man["state_tensors"]) == STATE
    for name, e in man["models"].items():
        assert e["parity_max_abs_diff"] <= 1e-5 and (root / name / e["file"]).is_file()
        assert e["trtexec"].startswith(f"trtexec --onnx={name}/1/model.onnx") and "--maxShapes=" in e["trtexec"]
    readme = (root / "README.md").read_text()
    assert "tritonserver --model-repository=/models" in readme and "toonsync stream --triton" in readme
    assert not list(root.rglob(".*.tmp")) and not list(root.rglob(".model.onnx.*"))  # no temp files left


def test_plan_route_and_option_errors(tmp_path):
    out = tmp_path / "repo"
    write_triton_repo(DEFAULT_MODEL_DIR, out, models=["audio2motion"], verify=False)
    plan = tmp_path / "a2m.plan"
    plan.write_bytes(b"not really a TensorRT engine")
    man = write_triton_repo(DEFAULT_MODEL_DIR, out, models=["audio2motion"], device="gpu", plans={"audio2motion": plan})
    v = out / "audio2motion" / "1"
    assert (v / "model.plan").read_bytes() == plan.read_bytes() and not (v / "model.onnx").exists()
    cfg = read_pbtxt((out / "audio2motion" / "config.pbtxt").read_text())
    assert cfg["backend"] == ["tensorrt"] and cfg["instance_group"][0]["kind"] == ["KIND_GPU"]
    assert "optimization" not in cfg and man["models"]["audio2motion"]["file"] == "1/model.plan"
    with pytest.raises(ModelError, match="GPU instances"):
        write_triton_repo(DEFAULT_MODEL_DIR, out, models=["audio2motion"], plans={"audio2motion": plan})
    with pytest.raises(ModelError, match="max_batch_size"):
        write_triton_repo(DEFAULT_MODEL_DIR, out, models=["audio2motion"], max_batch_size=0, verify=False)
    bad = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, bad, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    f = bad / "audio2motion.fp32.onnx"
    f.write_bytes(f.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="model card"):
        write_triton_repo(bad, tmp_path / "repo2", models=["audio2motion"])


def test_cli_export_triton(tmp_path):
    from toonsync.cli import main

    out = tmp_path / "tr"
    assert (
        main(["-q", "export", "--triton", str(out), "--triton-models", "audio2motion", "--triton-instances", "2"]) == 0
    )
    cfg = read_pbtxt((out / "audio2motion" / "config.pbtxt").read_text())
    assert cfg["instance_group"][0]["count"] == [2] and not (out / "audio2motion_pcm").exists()


# -- client ---------------------------------------------------------------------------------------------
def test_url_parsing():
    u = TritonURL.parse("localhost")
    assert (u.protocol, u.address, u.ssl, u.model) == ("http", "localhost:8000", False, "audio2motion")
    u = TritonURL.parse("grpc://10.0.0.5/audio2motion_pcm")
    assert (u.protocol, u.address, u.model) == ("grpc", "10.0.0.5:8001", "audio2motion_pcm")
    u = TritonURL.parse("https://[::1]:9000")
    assert (u.protocol, u.address, u.ssl) == ("http", "[::1]:9000", True)
    with pytest.raises(TritonError, match="unknown scheme"):
        TritonURL.parse("ftp://x")


def test_meta_from_config_parameter_or_dims():
    from toonsync.runtime.triton_client import model_meta

    cfg = {"name": "a2m", "input": [{"name": "mel_ctx", "dims": ["80", "4"]}, {"name": "h", "dims": [1, 64]}]}
    assert model_meta(cfg) == {
        "config": {"hidden": 64, "kernel": 5},
        "lookahead_frames": 2,
        "state_layout": "batch_first",
    }
    cfg["parameters"] = {"toonsync": {"string_value": '{"lookahead_frames": 3}'}}
    assert model_meta(cfg) == {"lookahead_frames": 3}
    with pytest.raises(TritonError, match="not an audio2motion model"):
        model_meta({"name": "x", "input": [{"name": "pcm", "dims": [-1]}]})


def test_missing_tritonclient_is_a_typed_error(monkeypatch):
    from toonsync.runtime.triton_client import TritonAudioModel

    monkeypatch.setitem(sys.modules, "tritonclient", None)  # import tritonclient.* -> ImportError
    monkeypatch.delitem(sys.modules, "tritonclient.http", raising=False)
    with pytest.raises(TritonError, match=re.escape('pip install "toonsync[triton]"')) as e:
        TritonAudioModel("localhost:8000")
    assert isinstance(e.value, ModelError)


class _FakeTriton:
    """In-process stand-in for a Triton server serving a repository: onnxruntime on each model.onnx, the
    config as Triton's HTTP endpoint returns it, and Triton's request checks (batch on dim 0, dims)."""

    class InferenceServerException(Exception):
        def message(self) -> str:
            return str(self)

    def __init__(self, root):
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2 as mc

        self.configs, self.sessions, self.requests = {}, {}, []
        for cfg_path in root.glob("*/config.pbtxt"):
            cfg = text_format.Parse(cfg_path.read_text(), mc.ModelConfig())
            self.configs[cfg.name] = json_format.MessageToDict(cfg, preserving_proto_field_name=True)
            self.sessions[cfg.name] = ort.InferenceSession(
                str(cfg_path.parent / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
            )
        fake = self

        class Client:
            def __init__(self, url, **kw):
                pass

            def is_server_live(self):
                return True

            def is_model_ready(self, model):
                return model in fake.configs

            def get_model_config(self, model):
                return fake.configs[model]

            def infer(self, model, inputs, outputs=None, **kw):
                return fake.infer(model, inputs, outputs)

            def close(self):
                pass

        class InferInput:
            def __init__(self, name, shape, datatype):
                self.name, self.shape, self.datatype = name, shape, datatype

            def set_data_from_numpy(self, x):
                assert list(x.shape) == self.shape and x.flags.c_contiguous
                self.data = x

        class InferRequestedOutput:
            def __init__(self, name, **kw):
                self.name = name

        self.module = types.SimpleNamespace(
            InferenceServerClient=Client,
            InferInput=InferInput,
            InferRequestedOutput=InferRequestedOutput,
            InferenceServerException=self.InferenceServerException,
        )

    def infer(self, model, inputs, outputs):
        cfg = self.configs[model]
        want = {i["name"]: (i["data_type"].removeprefix("TYPE_"), [int(d) for d in i["dims"]]) for i in cfg["input"]}
        batch = {x.shape[0] for x in inputs}
        if len(batch) != 1 or batch.pop() > cfg["max_batch_size"] or {x.name for x in inputs} != set(want):
            raise self.InferenceServerException(f"bad batch or inputs for {model}")
        for x in inputs:
            dtype, dims = want[x.name]
            if (
                x.datatype != dtype
                or len(x.shape) != len(dims) + 1
                or any(d not in (-1, s) for d, s in zip(dims, x.shape[1:]))
            ):
                raise self.InferenceServerException(f"{x.name}: got {x.shape} {x.datatype}, config {dims} {dtype}")
        self.requests.append({x.name: x.shape for x in inputs})
        sess = self.sessions[model]
        names = [o.name for o in outputs]
        res = dict(zip(names, sess.run(names, {x.name: x.data for x in inputs})))
        return types.SimpleNamespace(as_numpy=res.__getitem__)


def _frames(model, wav) -> list:
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.streaming import Stream

    st = Stream(model, np.zeros((68, 2), np.float32), seed=0, emotion="neutral")
    audio = load_audio(wav)
    out = []
    for i in range(0, audio.size, 1000):  # 62.5 ms chunks: several model steps per call, and partial ones
        st.accept_audio(audio[i : i + 1000])
        while st.ready():
            out.append(st.step())
    st.flush()
    while st.ready():
        out.append(st.step())
    return out


def _assert_same_frames(got, ref, atol):
    assert len(got) == len(ref) > 50
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.mouth, r.mouth, rtol=0, atol=atol)
        np.testing.assert_allclose(g.landmarks, r.landmarks, rtol=0, atol=atol)
        np.testing.assert_array_equal(g.pose, r.pose)


def test_stream_through_triton_client_equals_local(repos, speech_wav, monkeypatch):
    pytest.importorskip(
        "tritonclient.grpc.model_config_pb2",
        reason='the stand-in server reads configs with tritonclient\'s schema: pip install "toonsync[triton]"',
    )
    import toonsync.runtime.triton_client as tcl
    from toonsync.runtime.streaming import AudioModel

    fake = _FakeTriton(repos["fp32-cpu"][0])
    monkeypatch.setattr(tcl, "tritonclient_module", lambda protocol: fake.module)
    remote = tcl.TritonAudioModel("localhost:8000")
    assert remote.lookahead == 2 and remote.card.state_shapes() == {
        "mel_ctx": (1, 80, 4),
        "h": (1, 1, 192),
        "c": (1, 1, 192),
    }
    assert remote.model.backend.name == "triton:http://localhost:8000/audio2motion"
    local = AudioModel("cpu", "fp32")
    _assert_same_frames(_frames(remote, speech_wav), _frames(local, speech_wav), atol=1e-6)
    assert fake.requests and all(
        r["h"] == [1, 1, 192] and r["mel"][0] == 1 and r["mel"][1] % 4 == 0 for r in fake.requests
    )
    # several streams in one request: the batch rides on dim 0 and comes back per stream
    st = [remote.initial_state() for _ in range(3)]
    st[1]["h"] = st[1]["h"] + 0.5
    feeds = {
        "mel": np.zeros((3, 4, 80), np.float32),
        "mel_ctx": np.concatenate([s["mel_ctx"] for s in st]),
        "h": np.concatenate([s["h"] for s in st], axis=1),
        "c": np.concatenate([s["c"] for s in st], axis=1),
    }
    got, ref = remote.model.run(feeds), local.model.run(feeds)
    assert got["h_out"].shape == (1, 3, 192)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-6)
    with pytest.raises(TritonError, match="no ready model"):
        tcl.TritonAudioModel("localhost:8000/nope")


def test_stream_cli_reports_unreachable_server(capsys, speech_wav, frontal_face):
    pytest.importorskip("tritonclient.http", reason='needs tritonclient: pip install "toonsync[triton]"')
    from toonsync.cli import main

    assert (
        main(["stream", "--triton", "127.0.0.1:9", "--wav", str(speech_wav), "--face", str(frontal_face), "--fast"])
        == 1
    )
    assert "cannot reach Triton at 127.0.0.1:9" in capsys.readouterr().err


def test_real_triton_server(speech_wav):
    url = os.environ.get("TOONSYNC_TRITON_URL")
    if not url:
        pytest.skip("no Triton server: set TOONSYNC_TRITON_URL=host:8000 to run")
    from toonsync.runtime.streaming import AudioModel
    from toonsync.runtime.triton_client import TritonAudioModel

    remote = TritonAudioModel(url)
    try:
        # fp32 repository on CPU instances: equal to a local run up to the server's onnxruntime build
        _assert_same_frames(_frames(remote, speech_wav), _frames(AudioModel("cpu", "fp32"), speech_wav), atol=1e-4)
    finally:
        remote.close()
