// capture-worklet.js: the speaker's microphone, in the audio thread.
//
// Mixes the input to mono, converts it to PCM16LE and posts a frame of
// `frameMs` (default 100 ms) at the AudioContext's own rate to the page,
// which sends it on the WebSocket (the start message says the rate; the
// server resamples). While muted it posts silence rather than nothing:
// the interpreters need a continuous stream to finish their last words.
//
// Each frame carries the RMS and peak of the microphone (before muting, so
// the speaker sees the microphone works) in dBFS for the local meter.

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    const frameMs = o.frameMs || 100;
    this.frameLen = Math.max(128, Math.round((sampleRate * frameMs) / 1000));
    this.frame = new Int16Array(this.frameLen);
    this.n = 0;
    this.sumSq = 0;
    this.peak = 0;
    this.muted = false;
    this.port.onmessage = (ev) => {
      const m = ev.data;
      if (m && m.type === 'mute') this.muted = !!m.muted;
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const chans = input.length;
    const len = input[0].length;
    for (let i = 0; i < len; i++) {
      let s = 0;
      for (let c = 0; c < chans; c++) s += input[c][i];
      s /= chans;
      const a = s < 0 ? -s : s;
      if (a > this.peak) this.peak = a;
      this.sumSq += s * s;
      if (this.muted) s = 0;
      else if (s > 1) s = 1;
      else if (s < -1) s = -1;
      this.frame[this.n++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
      if (this.n === this.frameLen) this.flush();
    }
    return true;
  }

  flush() {
    const rms = Math.sqrt(this.sumSq / this.n);
    const buf = this.frame.buffer;
    // Int16Array stores in platform byte order; every browser platform is
    // little-endian, which is what the server expects.
    this.port.postMessage(
      { type: 'frame', pcm: buf, rmsDb: toDb(rms), peakDb: toDb(this.peak) },
      [buf],
    );
    this.frame = new Int16Array(this.frameLen);
    this.n = 0;
    this.sumSq = 0;
    this.peak = 0;
  }
}

function toDb(x) {
  return x > 0 ? Math.max(-100, 20 * Math.log10(x)) : -100;
}

registerProcessor('pcm-capture', PcmCapture);
