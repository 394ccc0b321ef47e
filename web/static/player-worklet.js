// player-worklet.js: the attendee's playback, in the audio thread.
//
// The page posts PCM16LE mono frames (24 kHz from the server) as
// ArrayBuffers; this processor keeps them in a small jitter buffer and
// plays them at the AudioContext's rate, resampling by linear
// interpolation.
//
// Jitter buffer policy:
// - Playback starts when `targetMs` of audio is buffered, or when the
//   oldest buffered audio has waited that long (so a short last phrase is
//   never held back).
// - Running dry and getting audio again soon after is network jitter: the
//   target grows (up to maxTargetMs). Long quiet stretches do not count:
//   the translation is silent between phrases. The target shrinks back to
//   its base while playback runs smoothly.
// - If the buffer grows past `maxMs` (clock drift, a burst after a stall),
//   the oldest audio is dropped down to the target, so the listener never
//   lags behind the room.
// - The ring holds 4 s; past that the oldest audio is dropped too.

const STATS_EVERY = 0.25; // seconds between stats posts

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.inRate = o.inputRate || 24000;
    this.baseTargetMs = o.targetMs || 150;
    this.maxTargetMs = o.maxTargetMs || 600;
    this.maxMs = o.maxMs || 1000;
    this.jitterGapMs = o.jitterGapMs || 400;
    this.targetMs = this.baseTargetMs;

    this.capacity = Math.ceil(this.inRate * 4);
    this.ring = new Float32Array(this.capacity);
    this.readIdx = 0;
    this.count = 0; // buffered input samples
    this.frac = 0; // position between ring[readIdx] and the next sample
    this.step = this.inRate / sampleRate; // input samples per output sample

    this.playing = false;
    this.fillSince = -1; // when audio first arrived while not playing
    this.dryAt = -1; // when playback last ran dry
    this.smoothSince = currentTime;
    this.underruns = 0;
    this.droppedSamples = 0;
    this.lastStats = 0;

    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  onMessage(msg) {
    if (msg instanceof ArrayBuffer) {
      this.push(msg);
    } else if (msg && msg.type === 'reset') {
      this.readIdx = 0;
      this.count = 0;
      this.frac = 0;
      this.playing = false;
      this.fillSince = -1;
      this.dryAt = -1;
      this.targetMs = this.baseTargetMs;
    } else if (msg && msg.type === 'config') {
      if (msg.inputRate && msg.inputRate !== this.inRate) {
        // A new rate invalidates what is buffered.
        this.inRate = msg.inputRate;
        this.capacity = Math.ceil(this.inRate * 4);
        this.ring = new Float32Array(this.capacity);
        this.readIdx = this.count = 0;
        this.frac = 0;
        this.playing = false;
        this.step = this.inRate / sampleRate;
      }
      if (msg.targetMs) this.baseTargetMs = this.targetMs = msg.targetMs;
      if (msg.maxMs) this.maxMs = msg.maxMs;
    }
  }

  ms(samples) {
    return (samples * 1000) / this.inRate;
  }

  push(buf) {
    const n = buf.byteLength >> 1;
    if (n === 0) return;
    const view = new DataView(buf);
    if (n > this.capacity - this.count) {
      this.drop(Math.min(this.count, n - (this.capacity - this.count)));
    }
    let w = (this.readIdx + this.count) % this.capacity;
    const start = n > this.capacity ? n - this.capacity : 0;
    for (let i = start; i < n; i++) {
      this.ring[w] = view.getInt16(i * 2, true) / 32768;
      w++;
      if (w === this.capacity) w = 0;
    }
    this.count += n - start;
    if (!this.playing && this.fillSince < 0) {
      this.fillSince = currentTime;
      // Dry only briefly: that was jitter, so buffer a little more.
      if (this.dryAt >= 0 && (currentTime - this.dryAt) * 1000 < this.jitterGapMs) {
        this.underruns++;
        this.targetMs = Math.min(this.maxTargetMs, this.targetMs + 50);
        this.smoothSince = currentTime;
      }
    }
  }

  drop(samples) {
    this.readIdx = (this.readIdx + samples) % this.capacity;
    this.count -= samples;
    this.droppedSamples += samples;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const buffered = this.ms(this.count);

    if (!this.playing && this.count > 1) {
      const waited = this.fillSince >= 0 ? (currentTime - this.fillSince) * 1000 : 0;
      if (buffered >= this.targetMs || waited >= this.targetMs) {
        this.playing = true;
        this.fillSince = -1;
      }
    }
    if (this.playing && buffered > this.maxMs) {
      this.drop(this.count - Math.round((this.targetMs * this.inRate) / 1000));
      this.frac = 0;
    }

    let i = 0;
    if (this.playing) {
      const ring = this.ring;
      const cap = this.capacity;
      for (; i < out.length; i++) {
        if (this.count < 2) {
          this.playing = false;
          this.dryAt = currentTime;
          break;
        }
        const a = ring[this.readIdx];
        const b = ring[(this.readIdx + 1) % cap];
        out[i] = a + (b - a) * this.frac;
        this.frac += this.step;
        while (this.frac >= 1 && this.count > 1) {
          this.frac -= 1;
          this.readIdx = (this.readIdx + 1) % cap;
          this.count--;
        }
      }
    }
    // No jitter for 10 s: come back down toward the base target.
    if (currentTime - this.smoothSince > 10 && this.targetMs > this.baseTargetMs) {
      this.targetMs = Math.max(this.baseTargetMs, this.targetMs - 25);
      this.smoothSince = currentTime;
    }
    for (; i < out.length; i++) out[i] = 0;

    if (currentTime - this.lastStats >= STATS_EVERY) {
      this.lastStats = currentTime;
      this.port.postMessage({
        type: 'stats',
        bufferedMs: Math.round(this.ms(this.count)),
        targetMs: this.targetMs,
        playing: this.playing,
        underruns: this.underruns,
        droppedMs: Math.round(this.ms(this.droppedSamples)),
      });
    }
    return true;
  }
}

registerProcessor('pcm-player', PcmPlayer);
