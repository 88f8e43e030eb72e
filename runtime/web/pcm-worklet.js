// AudioWorklet: microphone -> fixed-size int16 little-endian chunks posted to the main thread.
// The AudioContext runs at 16 kHz where the browser allows (Chrome does); otherwise the server
// resamples from the context's rate (sent in the "start" message).
class PcmSender extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = (options.processorOptions && options.processorOptions.chunk) || 320; // 20 ms at 16 kHz
    this.buf = new Int16Array(this.chunk);
    this.n = 0;
    this.running = true;
    this.port.onmessage = (e) => { if (e.data === "stop") this.running = false; };
  }
  process(inputs) {
    const input = inputs[0];
    if (!this.running) return false;
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      let s = 0;
      for (let c = 0; c < input.length; c++) s += input[c][i];
      s /= input.length;
      this.buf[this.n++] = Math.max(-32768, Math.min(32767, Math.round(s * 32767)));
      if (this.n === this.chunk) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Int16Array(this.chunk);
        this.n = 0;
      }
    }
    return true;
  }
}
registerProcessor("pcm-sender", PcmSender);
