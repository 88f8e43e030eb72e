"""Run audio2motion on a Triton Inference Server: ``toonsync stream --triton URL``.

The server holds no per-conversation state: the LSTM h/c and the conv context travel with every
request as ordinary inputs/outputs (explicit state; docs/triton.md says why), so any instance of
any replica can serve any step and the dynamic batcher batches steps of many streams together.
Everything else a ``Stream`` does (log-mel, head motion, emotion, drawing) stays client-side.

The models of a repository written by ``toonsync export --triton`` carry their state batch-first
(h, c, h_out, c_out as [batch, 1, hidden]: Triton batches on dim 0 of every tensor); this client
turns that back into the runtime's [1, batch, hidden] layout, so ``TritonBackend`` is a drop-in
``Backend`` and ``TritonAudioModel`` a drop-in ``AudioModel``.

``tritonclient`` is imported only here and only when used: ``pip install "toonsync[triton]"``.
URLs: ``host:8000`` or ``http://host:8000`` (HTTP), ``https://host`` (HTTP over TLS),
``grpc://host:8001`` (gRPC); an optional ``/model`` path names the model (default audio2motion).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backend import LoadedModel
from .errors import ModelError
from .model_card import ModelCard
from .streaming import AudioModel, load_decoder

log = logging.getLogger(__name__)

# Recurrent state whose batch axis is dim 1 in the runtime's graphs and dim 0 in the Triton repository.
STATE_INPUTS = ("h", "c")
STATE_OUTPUTS = ("h_out", "c_out")
STATE_LAYOUT = "batch_first"
META_PARAMETER = "toonsync"  # config.pbtxt parameter holding the model card's essentials (JSON)
DEFAULT_MODEL = "audio2motion"
DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
INSTALL_HINT = 'pip install "toonsync[triton]"'
_NP_DTYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


class TritonError(ModelError):
    """The Triton client is missing, the server is unreachable or lacks the model, or it refused a request."""


@dataclass(frozen=True)
class TritonURL:
    """A Triton server address parsed from ``[http|grpc]://host:port[/model]``."""

    protocol: str  # "http" or "grpc"
    address: str  # host:port, what tritonclient takes
    ssl: bool
    model: str

    @classmethod
    def parse(cls, url: str, model: str | None = None) -> TritonURL:
        """``host[:port][/model]`` with an optional ``http://``, ``https://`` or ``grpc://`` scheme."""
        scheme, sep, rest = url.strip().partition("://")
        if not sep:
            scheme, rest = "http", url.strip()
        scheme = scheme.lower()
        if scheme not in ("http", "https", "grpc"):
            raise TritonError(
                f"Triton URL {url!r}: unknown scheme {scheme!r}; accepted: host:8000, http://host:8000, "
                "https://host:8000, grpc://host:8001 (optionally /MODEL at the end)"
            )
        host, _, path = rest.partition("/")
        if not host:
            raise TritonError(f"Triton URL {url!r} has no host; e.g. localhost:8000 or grpc://localhost:8001")
        protocol = "grpc" if scheme == "grpc" else "http"
        if ":" not in host.rsplit("]", 1)[-1]:  # no port (an IPv6 literal keeps its colons inside [])
            host = f"{host}:{DEFAULT_PORTS[protocol]}"
        return cls(protocol, host, scheme == "https", model or path.strip("/") or DEFAULT_MODEL)

    def __str__(self) -> str:
        return f"{'https' if self.ssl else self.protocol}://{self.address}/{self.model}"


def tritonclient_module(protocol: str) -> Any:
    """``tritonclient.http`` or ``tritonclient.grpc``; a TritonError naming the extra when it is missing."""
    try:
        if protocol == "grpc":
            import tritonclient.grpc as tc
        else:
            import tritonclient.http as tc
    except ImportError as e:
        raise TritonError(f"talking to a Triton server needs the Triton client: {INSTALL_HINT} ({e})") from None
    return tc


def _plain_config(cfg: dict) -> dict:
    """The model config as the HTTP endpoint returns it (gRPC's JSON wraps it in "config" and writes int64s
    as strings)."""
    return cfg.get("config", cfg) if isinstance(cfg, dict) else {}


def _dims(io: dict) -> list[int]:
    return [int(d) for d in io.get("dims", [])]


def _parameter(cfg: dict, key: str) -> str | None:
    p = (cfg.get("parameters") or {}).get(key)
    if not isinstance(p, dict):
        return None
    return p.get("string_value", p.get("stringValue"))


def model_meta(cfg: dict) -> dict:
    """The model card's essentials (config, lookahead, ...) from the ``toonsync`` parameter of a model config;
    rebuilt from the I/O dims for a hand-written config without it."""
    raw = _parameter(cfg, META_PARAMETER)
    if raw:
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise TritonError(
                f"Triton model {cfg.get('name')!r}: parameter {META_PARAMETER!r} is not JSON ({e})"
            ) from None
    io = {i["name"]: _dims(i) for i in cfg.get("input", [])}
    if "h" not in io or "mel_ctx" not in io:
        raise TritonError(f"Triton model {cfg.get('name')!r} is not an audio2motion model (inputs {sorted(io)})")
    log.warning("Triton model %s has no %r parameter: lookahead assumed 2 frames", cfg.get("name"), META_PARAMETER)
    return {
        "config": {"hidden": io["h"][-1], "kernel": io["mel_ctx"][-1] + 1},
        "lookahead_frames": 2,
        "state_layout": STATE_LAYOUT,
    }


def audio_model_card(name: str, meta: dict) -> ModelCard:
    """The model card of a served audio2motion model: ``meta`` (the repository's ``toonsync`` parameter) with
    the runtime-layout graph I/O its streaming state is derived from (conv context, LSTM h/c)."""
    cfg = meta.get("config", {})
    hidden, ctx = int(cfg["hidden"]), int(cfg["kernel"]) - 1
    n_mels = int(cfg.get("n_mels", meta.get("n_mels", 80)))
    state = {"mel_ctx": ["batch", n_mels, ctx], "h": [1, "batch", hidden], "c": [1, "batch", hidden]}
    io = {
        "inputs": {"mel": ["batch", "mel_frames", n_mels], **state},
        "outputs": {"mouth": ["batch", "frames", 3], **{f"{k}_out": v for k, v in state.items()}},
    }
    return ModelCard.from_dict({"name": name, **{k: v for k, v in meta.items() if k not in io}, **io})


class TritonBackend:
    """``Backend`` over one model on a Triton server. ``run`` takes and returns the runtime's layout
    (h/c as [1, batch, hidden]); requests carry it batch-first. One client per thread (tritonclient's
    clients are not thread-safe), so a single backend can serve many streams on many threads."""

    def __init__(self, url: str, model: str | None = None, timeout_s: float = 10.0):
        self.url = TritonURL.parse(url, model)
        self.timeout_s = float(timeout_s)
        self._tc = tritonclient_module(self.url.protocol)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        client = self._client()
        where = f"Triton at {self.url.address} ({self.url.protocol})"
        try:
            live = client.is_server_live()
        except Exception as e:  # noqa: BLE001 -- refused, DNS, TLS: tritonclient raises many types
            raise TritonError(
                f"cannot reach {where}: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}; "
                "is the server running? (docs/triton.md: `docker run ... tritonserver "
                "--model-repository=/models`)"
            ) from None
        if not live:
            raise TritonError(f"{where} is not live yet; wait for it to finish starting")
        try:
            if not client.is_model_ready(self.url.model):
                raise TritonError(
                    f"{where} has no ready model {self.url.model!r}; generate the repository with "
                    "`toonsync export --triton DIR` and check the server log"
                )
            cfg = _plain_config(client.get_model_config(self.url.model, **self._json))
        except self._tc_error as e:
            raise TritonError(f"{where}: {e.message() if hasattr(e, 'message') else e}") from None
        self.config = cfg
        self.meta = model_meta(cfg)
        self.max_batch_size = int(cfg.get("max_batch_size", 0))
        self.input_names = [i["name"] for i in cfg.get("input", [])]
        self.output_names = [o["name"] for o in cfg.get("output", [])]
        self._dtype = {i["name"]: str(i["data_type"]).removeprefix("TYPE_") for i in cfg.get("input", [])}
        state_dims = {i["name"]: _dims(i) for i in cfg.get("input", []) if i["name"] in STATE_INPUTS}
        if self.max_batch_size < 1 or any(len(d) != 2 or d[0] != 1 for d in state_dims.values()):
            raise TritonError(
                f"Triton model {self.url.model!r} does not carry its state batch-first "
                f"(max_batch_size {self.max_batch_size}, state dims {state_dims}); "
                "regenerate the repository with `toonsync export --triton DIR`"
            )
        self.name = f"triton:{self.url}"
        log.info("using %s (max batch %d, %s)", self.name, self.max_batch_size, self.meta.get("precision", "?"))

    @property
    def _json(self) -> dict:
        return {"as_json": True} if self.url.protocol == "grpc" else {}

    @property
    def _tc_error(self) -> type[Exception]:
        return self._tc.InferenceServerException

    def _client(self):
        c = getattr(self._local, "client", None)
        if c is None:
            if self.url.protocol == "grpc":
                c = self._tc.InferenceServerClient(self.url.address, ssl=self.url.ssl)
            else:
                c = self._tc.InferenceServerClient(
                    self.url.address,
                    ssl=self.url.ssl,
                    connection_timeout=self.timeout_s,
                    network_timeout=self.timeout_s,
                )
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ModelError(f"missing model inputs {sorted(missing)}; the graph takes {self.input_names}")
        tc, req = self._tc, []
        for name in self.input_names:
            x = np.asarray(inputs[name])
            if name in STATE_INPUTS:
                x = x.transpose(1, 0, 2)  # [1, batch, hidden] -> [batch, 1, hidden]
            x = np.ascontiguousarray(x, dtype=_NP_DTYPES.get(self._dtype[name], np.float32))
            i = tc.InferInput(name, list(x.shape), self._dtype[name])
            i.set_data_from_numpy(x)
            req.append(i)
        outs = [tc.InferRequestedOutput(n) for n in self.output_names]
        kw = {"client_timeout": self.timeout_s} if self.url.protocol == "grpc" else {}
        try:
            res = self._client().infer(self.url.model, req, outputs=outs, **kw)
        except self._tc_error as e:
            raise TritonError(
                f"Triton {self.url}: inference failed: {e.message() if hasattr(e, 'message') else e}"
            ) from None
        out = {}
        for name in self.output_names:
            y = res.as_numpy(name)
            out[name] = np.ascontiguousarray(y.transpose(1, 0, 2)) if name in STATE_OUTPUTS else y
        return out

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for c in clients:
            try:
                c.close()
            except Exception as e:  # noqa: BLE001 -- closing a dead connection: nothing left to do
                log.debug("closing a Triton client: %s", e)


class TritonAudioModel(AudioModel):
    """``AudioModel`` whose audio2motion runs on a Triton server: a ``Stream`` over it gives the frames of a
    local run (same state carried, same outputs), with the model's compute on the server."""

    def __init__(self, url: str, model: str | None = None, timeout_s: float = 10.0, decoder: bool = True):
        backend = TritonBackend(url, model, timeout_s)
        self.card = audio_model_card(backend.url.model, backend.meta)
        self.model = LoadedModel(
            backend.url.model, Path(backend.url.model), backend, self.card, backend.meta.get("precision", "fp32")
        )
        self.lookahead = self.card.lookahead_frames
        # the motion decoder is small: it runs here, on the server model's outputs, when the local one was
        # trained with the same audio model (run_id); otherwise the server's mouth head drives the frames
        self.decoder = load_decoder(self.model, "cpu", "fp32", None) if decoder else None

    def close(self) -> None:
        self.model.backend.close()
