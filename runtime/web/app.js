// toonsync kiosk page: microphone (AudioWorklet) or a WAV -> 16 kHz int16 PCM over a WebSocket;
// JPEG frames with a 36-byte header come back and are drawn on a canvas. Protocol: docs/kiosk.md.
"use strict";
(() => {
  const HEADER_BYTES = 36;
  const MAGIC = 0x31465354; // "TSF1" little-endian
  const FLAG_IDLE = 1;
  const WAV_PLAYOUT_DELAY_S = 0.3; // WAV mode: audio plays this much after it is sent, frames wait for it
  const KEEP = 3000; // bounded history arrays

  const $ = (id) => document.getElementById(id);
  const canvas = $("avatar");
  const view = canvas.getContext("2d");
  const probe = document.createElement("canvas");
  const probeCtx = probe.getContext("2d", { willReadFrequently: true });

  // Everything the page knows, readable by tests and dev tools.
  const state = (window.kiosk = {
    status: "idle", mode: null, avatar: "default", streamAvatar: null, mouthBox: null, hello: null,
    framesReceived: 0, framesDrawn: 0, framesLate: 0, dropped: 0, lastIndex: -1,
    lipGaps: [], mouthSignal: [], mouthLuma: [], e2eMs: [], serverMs: [], avSyncMs: [],
    errors: [], lastStats: null, closeCode: null, busy: false,
  });

  let ws = null, audioCtx = null, workletLoaded = false, micStream = null, micNodes = [];
  let seqSent = 0;
  const sendTimes = new Map();
  let wavTimer = null, wavSource = null, playStart = null;
  const playout = [];
  const drawTimes = [];

  function push(arr, v) { arr.push(v); if (arr.length > KEEP) arr.splice(0, arr.length - KEEP); }
  function median(a) { if (!a.length) return null; const s = a.slice(-50).sort((x, y) => x - y); return s[s.length >> 1]; }

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = cls || "";
    state.status = text;
  }

  function setRunning(on) {
    $("mic").disabled = on; $("sample").disabled = on; $("wav").disabled = on;
    $("stop").disabled = !on;
  }

  async function ensureAudio() {
    if (!audioCtx) {
      try { audioCtx = new AudioContext({ sampleRate: 16000, latencyHint: "interactive" }); }
      catch (e) { audioCtx = new AudioContext({ latencyHint: "interactive" }); }
    }
    if (audioCtx.state === "suspended") await audioCtx.resume();
    return audioCtx;
  }

  // -- WebSocket ----------------------------------------------------------------------------
  function connect(mode) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    seqSent = 0; sendTimes.clear(); state.lastIndex = -1; state.busy = false; state.closeCode = null;
    const sock = ws;
    return new Promise((resolve, reject) => {
      let ready = false;
      sock.onmessage = (ev) => {
        if (typeof ev.data !== "string") { onFrame(ev.data); return; }
        let m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        switch (m.type) {
          case "hello":
            state.hello = m;
            sizeCanvas(m.size);
            sock.send(JSON.stringify({ type: "start", format: "s16", sample_rate: Math.round(audioCtx.sampleRate),
                                       emotion: $("emotion").value, avatar: state.avatar }));
            break;
          case "ready":
            state.mouthBox = m.mouth_box; state.streamAvatar = m.avatar; ready = true; resolve(); break;
          case "configured":
            state.mouthBox = m.mouth_box; state.streamAvatar = m.avatar; break;
          case "busy":
            state.busy = true; setStatus(m.message, "error"); break;
          case "stats":
            state.lastStats = m; break;
          case "stopped":
            state.lastStats = m.stats || state.lastStats;
            if (state.mode === "wav") {  // natural end of a WAV: let the queued frames play out (bounded)
              const until = performance.now() + 5000;
              const wait = () => (playout.length && state.mode === "wav" && performance.now() < until
                ? setTimeout(wait, 100) : finish("done"));
              wait();
            } else finish("stopped");
            break;
          case "error":
            push(state.errors, m);
            setStatus(`server: ${m.message}`, "error");
            break;
          default: break;
        }
      };
      sock.onclose = (ev) => {
        state.closeCode = ev.code;
        if (!ready) reject(new Error(state.busy ? "busy" : `connection closed (${ev.code})`));
        if (ws === sock) { ws = null; teardown(); if (!state.busy && ev.code !== 1000) setStatus(`disconnected (${ev.code} ${ev.reason || ""})`, "error"); }
      };
      sock.onerror = () => { if (!ready) reject(new Error("cannot connect to the server")); };
    });
  }

  function sendAudio(buffer) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(buffer);
    seqSent += 1;
    sendTimes.set(seqSent, performance.now());
    if (sendTimes.size > 600) sendTimes.delete(sendTimes.keys().next().value);
  }

  function finish(text) {
    if (ws) { const s = ws; ws = null; s.close(1000, "done"); }
    teardown();
    setStatus(text === "done" ? "finished — press a button to go again" : "stopped", "");
  }

  // -- frames -------------------------------------------------------------------------------
  // The canvas holds the server's frame size ("size" in /api/info and in hello) so frames are drawn 1:1, and is
  // never laid out larger than that: no blurry upscaling (a smaller screen shows it scaled down).
  function sizeCanvas(size) {
    if (!Number.isInteger(size) || size < 16 || size > 4096) return;
    canvas.style.maxWidth = `${Math.min(size, 512)}px`;
    if (canvas.width !== size || canvas.height !== size) { canvas.width = size; canvas.height = size; }
  }

  function onFrame(buf) {
    if (buf.byteLength <= HEADER_BYTES) return;
    const dv = new DataView(buf);
    if (dv.getUint32(0, true) !== MAGIC) return;
    const f = {
      index: dv.getUint32(4, true), seq: dv.getUint32(8, true), dropped: dv.getUint32(12, true),
      flags: dv.getUint32(16, true), ts: dv.getFloat32(20, true), serverMs: dv.getFloat32(24, true),
      open: dv.getFloat32(28, true), gap: dv.getFloat32(32, true), bmp: null,
    };
    state.framesReceived += 1;
    state.dropped = f.dropped;
    const sent = sendTimes.get(f.seq);
    if (sent !== undefined && !(f.flags & FLAG_IDLE)) push(state.e2eMs, performance.now() - sent);
    push(state.serverMs, f.serverMs);
    createImageBitmap(new Blob([new Uint8Array(buf, HEADER_BYTES)], { type: "image/jpeg" })).then((bmp) => {
      f.bmp = bmp;
      if (state.mode === "wav") playout.push(f); else draw(f);
    }).catch(() => {});
  }

  function draw(f) {
    if (f.index <= state.lastIndex) { f.bmp.close(); return; }
    state.lastIndex = f.index;
    view.drawImage(f.bmp, 0, 0, canvas.width, canvas.height);
    if (state.mouthBox) {  // mouth movement measured on the received pixels
      const w = f.bmp.width, h = f.bmp.height;
      if (probe.width !== w) { probe.width = w; probe.height = h; }
      probeCtx.drawImage(f.bmp, 0, 0);
      const [x0, y0, x1, y1] = state.mouthBox;
      const X = Math.floor(x0 * w), Y = Math.floor(y0 * h);
      const W = Math.max(1, Math.floor((x1 - x0) * w)), H = Math.max(1, Math.floor((y1 - y0) * h));
      const px = probeCtx.getImageData(X, Y, W, H).data;
      let dark = 0, sum = 0;
      for (let i = 0; i < px.length; i += 4) {
        const l = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        sum += l; if (l < 90) dark += 1;
      }
      push(state.mouthSignal, dark / (px.length / 4));
      push(state.mouthLuma, sum / (px.length / 4));
      push(state.lipGaps, f.gap);
    }
    f.bmp.close();
    state.framesDrawn += 1;
    drawTimes.push(performance.now());
  }

  function tick() {
    if (state.mode === "wav" && audioCtx && playStart !== null && playout.length) {
      const now = audioCtx.currentTime - playStart - (audioCtx.outputLatency || 0);
      playout.sort((a, b) => a.index - b.index);
      let pick = null;
      while (playout.length && playout[0].ts <= now) {
        if (pick) { pick.bmp.close(); state.framesLate += 1; }
        pick = playout.shift();
      }
      if (pick) { push(state.avSyncMs, (now - pick.ts) * 1000); draw(pick); }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);

  setInterval(() => {
    const now = performance.now();
    while (drawTimes.length && drawTimes[0] < now - 1000) drawTimes.shift();
    $("fps").textContent = state.mode ? String(drawTimes.length) : "–";
    const la = state.hello ? state.hello.lookahead_ms : 80;
    const e2e = median(state.e2eMs), srv = median(state.serverMs), av = median(state.avSyncMs);
    $("latency").textContent = e2e === null ? "–" : `${Math.round(e2e + la)} ms`;
    $("latency").title = "speech to frame on screen: round trip + the model's look-ahead";
    $("server-latency").textContent = srv === null ? "–" : `${srv.toFixed(1)} ms`;
    $("avsync").textContent = state.mode === "wav" && av !== null ? `${Math.round(av)} ms` : "–";
    $("frames").textContent = String(state.framesDrawn);
    $("dropped").textContent = String(state.dropped + state.framesLate);
  }, 250);

  // -- sources ------------------------------------------------------------------------------
  async function startMic() {
    setRunning(true);
    try {
      const ac = await ensureAudio();
      if (!workletLoaded) { await ac.audioWorklet.addModule("/pcm-worklet.js"); workletLoaded = true; }
      setStatus("asking for the microphone…");
      micStream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
      state.mode = "mic";
      await connect("mic");
      const src = ac.createMediaStreamSource(micStream);
      const node = new AudioWorkletNode(ac, "pcm-sender", { processorOptions: { chunk: Math.round(ac.sampleRate * 0.02) } });
      node.port.onmessage = (e) => sendAudio(e.data);
      const mute = ac.createGain(); mute.gain.value = 0;
      src.connect(node); node.connect(mute); mute.connect(ac.destination);
      micNodes = [src, node, mute];
      setStatus("live: talk!", "live");
    } catch (e) {
      teardown();
      if (!state.busy) setStatus(`cannot start: ${e.message || e}`, "error");
    }
  }

  async function startWav(arrayBuffer) {
    setRunning(true);
    try {
      const ac = await ensureAudio();
      const audio = await ac.decodeAudioData(arrayBuffer);
      const n = audio.length, pcm = new Int16Array(n);
      for (let c = 0; c < audio.numberOfChannels; c++) {
        const ch = audio.getChannelData(c);
        for (let i = 0; i < n; i++) pcm[i] += Math.round(Math.max(-1, Math.min(1, ch[i])) * 32767 / audio.numberOfChannels);
      }
      state.mode = "wav";
      await connect("wav");
      const rate = ac.sampleRate, chunk = Math.round(rate * 0.02);
      const t0 = ac.currentTime + 0.05;
      playStart = t0 + WAV_PLAYOUT_DELAY_S;
      wavSource = ac.createBufferSource();
      wavSource.buffer = audio;
      wavSource.connect(ac.destination);
      wavSource.start(playStart);
      let sent = 0;
      wavTimer = setInterval(() => {  // real-time pacing on the audio clock
        const due = Math.min(n, Math.floor((ac.currentTime - t0) * rate) + chunk);
        while (sent < due) {
          const end = Math.min(sent + chunk, n);
          sendAudio(pcm.slice(sent, end).buffer);
          sent = end;
        }
        if (sent >= n) {
          clearInterval(wavTimer); wavTimer = null;
          if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
        }
      }, 10);
      setStatus("playing the WAV…", "live");
    } catch (e) {
      teardown();
      if (!state.busy) setStatus(`cannot play: ${e.message || e}`, "error");
    }
  }

  function teardown() {
    if (wavTimer) { clearInterval(wavTimer); wavTimer = null; }
    if (wavSource) { try { wavSource.stop(); } catch (e) { /* not started */ } wavSource = null; }
    for (const node of micNodes) { try { node.disconnect(); } catch (e) { /* gone */ } }
    if (micNodes[1]) micNodes[1].port.postMessage("stop");
    micNodes = [];
    if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
    for (const f of playout.splice(0)) if (f.bmp) f.bmp.close();
    playStart = null;
    state.mode = null;
    setRunning(false);
  }

  function stop() {
    if (ws && ws.readyState === WebSocket.OPEN) {
      for (const node of micNodes) { try { node.disconnect(); } catch (e) { /* gone */ } }
      if (wavTimer) { clearInterval(wavTimer); wavTimer = null; }
      if (wavSource) { try { wavSource.stop(); } catch (e) { /* not started */ } }
      ws.send(JSON.stringify({ type: "stop" }));
      if (state.mode === "wav") state.mode = "stopping";
      const sock = ws;
      setTimeout(() => { if (ws === sock) finish("stopped"); }, 2000);  // the server did not answer
    } else teardown();
  }

  // -- avatar -------------------------------------------------------------------------------
  function showPreview(src) {
    const img = new Image();
    img.onload = () => { if (!state.mode) view.drawImage(img, 0, 0, canvas.width, canvas.height); };
    img.src = src;
  }

  function tooLarge(file, what) {
    const limit = (state.hello && state.hello.max_upload_bytes) || 10 * 1024 * 1024;
    if (file.size > limit) setStatus(`that ${what} is too large (limit ${limit >> 20} MB)`, "error");
    return file.size > limit;
  }

  // POST -> the JSON answer, or null with the server's message (or the failure) in the status line
  async function post(url, body, what) {
    const type = typeof body === "string" ? "application/json" : "application/octet-stream";
    try {
      const r = await fetch(url, { method: "POST", body, headers: { "Content-Type": type } });
      const j = await r.json();
      if (!r.ok) { setStatus(j.message || `${what} failed (${r.status})`, "error"); return null; }
      return j;
    } catch (e) {
      setStatus(`${what} failed: ${e.message || e}`, "error");
      return null;
    }
  }

  // the answer of an avatar upload (a photo, or a drawing put to use): stream it from now on
  function useAvatar(j) {
    showEdit(false);
    state.avatar = j.avatar;
    showPreview(j.preview);
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "config", avatar: j.avatar }));
    setStatus(j.warnings && j.warnings.length ? `avatar ready (note: ${j.warnings[0]})` : "avatar ready", "");
  }

  async function uploadPhoto(file) {
    if (tooLarge(file, "photo")) return;
    setStatus("making your avatar…");
    const j = await post("/api/avatar", file, "upload");
    if (j) useAvatar(j);
  }

  // -- a drawing: its 68 points over it, a few handles dragged, the points refitted by the server -----
  const HANDLE_R = 10; // handle radius, CSS pixels
  const LINES = [[0, 17, false], [17, 22, false], [22, 27, false], [27, 31, false], [31, 36, false],
                 [36, 42, true], [42, 48, true], [48, 60, true], [60, 68, true]];
  const sheet = $("adjust-canvas");
  const pen = sheet.getContext("2d");
  // the adjust view's state (coordinates are pixels of the drawing the server sent), readable by tests
  const adjust = (window.toonsyncAdjust = {
    id: null, width: 0, height: 0, points: [], handles: {}, fitted: null, moved: {}, confidence: null,
    warnings: [], dragging: null, refits: 0, pending: null,
  });
  let sheetImg = null, grab = [0, 0], refitSeq = 0, settled = {};

  // points and handles as the server last placed them (a drag moves a copy of the handles until it is refitted)
  function setPoints(points, handles) { adjust.points = points; settled = handles; adjust.handles = { ...handles }; }

  function showAdjust(on) {
    if (on) showEdit(false);
    $("adjust").hidden = !on;
    canvas.hidden = on;
    if (!on) { adjust.id = null; sheetImg = null; }
  }

  function pxPerCss() { const w = sheet.getBoundingClientRect().width; return w ? sheet.width / w : 1; }

  function drawSheet() {
    if (!sheetImg) return;
    const k = pxPerCss(), P = adjust.points;
    pen.drawImage(sheetImg, 0, 0, sheet.width, sheet.height);
    pen.lineWidth = 1.5 * k; pen.strokeStyle = "rgba(212, 87, 122, 0.85)";
    for (const [a, b, closed] of LINES) {
      pen.beginPath();
      for (let i = a; i < b; i++) (i === a ? pen.moveTo : pen.lineTo).call(pen, P[i][0], P[i][1]);
      if (closed) pen.closePath();
      pen.stroke();
    }
    pen.fillStyle = "#fff";
    for (const [x, y] of P) { pen.beginPath(); pen.arc(x, y, 2.5 * k, 0, 2 * Math.PI); pen.fill(); pen.stroke(); }
    pen.lineWidth = 2.5 * k;
    for (const [name, [x, y]] of Object.entries(adjust.handles)) {
      pen.beginPath(); pen.arc(x, y, HANDLE_R * k, 0, 2 * Math.PI);
      pen.fillStyle = name === adjust.dragging ? "rgba(212, 87, 122, 0.55)" : "rgba(255, 255, 255, 0.35)";
      pen.fill(); pen.stroke();
    }
  }

  function toSheet(e) {
    const r = sheet.getBoundingClientRect();
    return [(e.clientX - r.left) * sheet.width / r.width, (e.clientY - r.top) * sheet.height / r.height];
  }

  sheet.addEventListener("pointerdown", (e) => {
    if (!adjust.id || adjust.dragging) return;
    const [x, y] = toSheet(e);
    let best = null, reach = 2 * HANDLE_R * pxPerCss();  // generous: a finger covers more than a circle
    for (const [name, [hx, hy]] of Object.entries(adjust.handles)) {
      const d = Math.hypot(hx - x, hy - y);
      if (d <= reach) { reach = d; best = name; }
    }
    if (!best) return;
    adjust.dragging = best;
    grab = [adjust.handles[best][0] - x, adjust.handles[best][1] - y];  // the handle does not jump to the pointer
    sheet.setPointerCapture(e.pointerId);
    e.preventDefault();
    drawSheet();
  });
  sheet.addEventListener("pointermove", (e) => {
    if (!adjust.dragging) return;
    const [x, y] = toSheet(e);
    adjust.handles[adjust.dragging] = [Math.min(Math.max(x + grab[0], 0), sheet.width - 1),
                                       Math.min(Math.max(y + grab[1], 0), sheet.height - 1)];
    drawSheet();
  });
  const drop = () => {
    const name = adjust.dragging;
    if (!name) return;
    adjust.dragging = null;
    const before = adjust.moved;
    adjust.moved = { ...before, [name]: adjust.handles[name] };
    adjust.pending = refitDrawing(before);
  };
  sheet.addEventListener("pointerup", drop);
  sheet.addEventListener("pointercancel", drop);

  // every handle dragged so far, sent at once: the server refits the fitted points from them
  async function refitDrawing(before) {
    const seq = ++refitSeq;
    const j = await post(`/api/drawing/${adjust.id}/refit`, JSON.stringify({ moved: adjust.moved }), "adjusting");
    if (seq !== refitSeq || !adjust.id) return;  // a later drag (or a closed view) wins
    if (j) { setPoints(j.points, j.handles); adjust.refits += 1; }
    else { adjust.moved = before; adjust.handles = { ...settled }; }  // a refused drag is undone
    drawSheet();
  }

  async function uploadDrawing(file) {
    if (tooLarge(file, "drawing")) return;
    setStatus("finding the face in the drawing…");
    const j = await post("/api/drawing", file, "upload");
    if (!j) return;
    const img = new Image();
    try { await new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = j.image; }); }
    catch (e) { setStatus("the drawing could not be shown", "error"); return; }
    Object.assign(adjust, { id: j.drawing, width: j.width, height: j.height, fitted: { points: j.points, handles: j.handles },
                            moved: {}, confidence: j.confidence, warnings: j.warnings, dragging: null, refits: 0, pending: null });
    setPoints(j.points, j.handles);
    sheetImg = img; sheet.width = j.width; sheet.height = j.height;
    showAdjust(true);
    drawSheet();
    const conf = `points found (confidence ${Math.round(j.confidence * 100)} %)`;
    if (j.warnings.length) setStatus(`${conf} — note: ${j.warnings[0]}`, "warn");
    else setStatus(`${conf}: drag the circles if needed, then use the drawing`, "");
  }

  async function useDrawing() {
    if (!adjust.id) return;
    $("adjust-use").disabled = true;
    try {
      if (adjust.pending) await adjust.pending;  // the last drag's points
      setStatus("making your avatar…");
      const j = await post(`/api/drawing/${adjust.id}/use`, JSON.stringify({ points: adjust.points }), "making the avatar");
      if (j) { showAdjust(false); useAvatar(j); }
    } finally {
      $("adjust-use").disabled = false;
    }
  }

  function resetDrawing() {
    if (!adjust.fitted) return;
    refitSeq += 1;  // an answer still on its way is ignored
    Object.assign(adjust, { moved: {}, dragging: null });
    setPoints(adjust.fitted.points, adjust.fitted.handles);
    drawSheet();
  }

  // -- editing the avatar's look (edit.js): a panel in place of the canvas, like the adjust view ----------
  const editor = window.toonsyncEditor({ $, canvas, state, setStatus, post, useAvatar, showAdjust });
  const showEdit = editor.show;

  // -- typed text, spoken by the server's TTS engine and played like a WAV ---------------------
  async function say(text) {
    if (!text.trim()) { setStatus("type something to say first", "error"); return; }
    setStatus("getting the voice ready…");
    try {
      const r = await fetch("/api/say", { method: "POST", body: JSON.stringify({ text }), headers: { "Content-Type": "application/json" } });
      if (!r.ok) { const j = await r.json(); setStatus(j.message || `could not say it (${r.status})`, "error"); return; }
      await startWav(await r.arrayBuffer());
    } catch (e) {
      setStatus(`could not say it: ${e.message || e}`, "error");
    }
  }
  fetch("/api/info").then((r) => r.json()).then((info) => {
    sizeCanvas(info.size);
    if (info.say) { $("say-row").hidden = false; $("say-text").maxLength = info.max_say_chars; }
  }).catch(() => { /* the row stays hidden, the canvas keeps its size */ })
    .finally(() => { if (!state.mode) showPreview(`/api/avatar/${encodeURIComponent(state.avatar)}/preview.png`); });
  $("say-row").addEventListener("submit", (e) => { e.preventDefault(); say($("say-text").value); });

  $("mic").addEventListener("click", startMic);
  $("stop").addEventListener("click", stop);
  $("sample").addEventListener("click", async () => {
    const r = await fetch("/sample.wav");
    await startWav(await r.arrayBuffer());
  });
  $("wav").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) await startWav(await file.arrayBuffer());
  });
  $("photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) await uploadPhoto(file);
  });
  $("drawing").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) await uploadDrawing(file);
  });
  $("adjust-use").addEventListener("click", useDrawing);
  $("adjust-reset").addEventListener("click", resetDrawing);
  $("adjust-cancel").addEventListener("click", () => { showAdjust(false); setStatus("ready", ""); });
  window.addEventListener("resize", drawSheet);  // the dots keep their size on screen
  $("default-avatar").addEventListener("click", () => {
    showEdit(false);
    state.avatar = "default";
    showPreview("/api/avatar/default/preview.png");
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "config", avatar: "default" }));
  });
  $("emotion").addEventListener("change", () => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "config", emotion: $("emotion").value }));
  });
})();
