// player-worklet.js: the attendee's playback, in the audio thread.
//
// The page posts PCM16LE mono frames (24 kHz from the server) as
// ArrayBuffers; this processor keeps them in a jitter buffer and plays
// them at the AudioContext's rate, resampling by linear interpolation.
//
// Two kinds of stream arrive. The floor (the speaker's own voice) is paced
// at real time by the speaker. A translation is not: the interpreter model
// produces a sentence faster than it is spoken, so whole seconds can arrive
// at once, and every word of them must still be heard. The page says which
// through processorOptions (catchUpMs, maxMs).
//
// Jitter buffer policy:
// - Playback starts when `targetMs` (~150 ms) is buffered, or when the
//   oldest buffered audio has waited that long (so a short last phrase is
//   never held back).
// - Running dry and getting audio again soon after is network jitter: the
//   target grows by 50 ms (up to maxTargetMs). Long quiet stretches do not
//   count. After 10 s without jitter the target shrinks back.
// - Catching up: while more than target + `catchUpMs` is buffered, silent
//   stretches (10 ms windows below -46 dBFS) are skipped, so pauses get
//   shorter and the listener drifts back toward the room without losing a
//   word or shifting the pitch.
// - Hard bound: past `maxMs` buffered (a stall followed by a flood, clock
//   drift on the floor) the oldest audio is dropped down to the target, so
//   the listener never falls far behind.
// - The ring holds maxMs + 2 s; past that the oldest audio is dropped too.

const STATS_EVERY = 0.25; // seconds between stats posts
const SILENCE = 0.005; // amplitude below which a window counts as silent (-46 dBFS)
const WINDOW_MS = 10; // silence is skipped in windows of this length
const MAX_SKIPS = 4; // windows skipped per render quantum at most

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.baseTargetMs = o.targetMs || 150;
    this.maxTargetMs = o.maxTargetMs || 600;
    this.maxMs = o.maxMs || 1000;
    this.catchUpMs = o.catchUpMs || 300;
    this.jitterGapMs = o.jitterGapMs || 400;
    this.targetMs = this.baseTargetMs;
    this.setRate(o.inputRate || 24000);

    this.fillSince = -1; // when audio first arrived while not playing
    this.dryAt = -1; // when playback last ran dry
    this.smoothSince = currentTime;
    this.underruns = 0;
    this.droppedSamples = 0;
    this.skippedSamples = 0;
    this.lastStats = 0;

    this.port.onmessage = (ev) => this.onMessage(ev.data);
  }

  /** (Re)sizes the ring for an input rate; what was buffered is gone. */
  setRate(rate) {
    this.inRate = rate;
    this.capacity = Math.ceil((rate * (this.maxMs + 2000)) / 1000);
    this.ring = new Float32Array(this.capacity);
    this.readIdx = 0;
    this.count = 0; // buffered input samples
    this.frac = 0; // position between ring[readIdx] and the next sample
    this.playing = false;
    this.step = rate / sampleRate; // input samples per output sample
    this.window = Math.max(1, Math.round((rate * WINDOW_MS) / 1000));
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
      if (msg.inputRate && msg.inputRate !== this.inRate) this.setRate(msg.inputRate);
      if (msg.targetMs) this.baseTargetMs = this.targetMs = msg.targetMs;
    }
  }

  ms(samples) {
    return (samples * 1000) / this.inRate;
  }

  samples(ms) {
    return Math.round((ms * this.inRate) / 1000);
  }

  push(buf) {
    const n = buf.byteLength >> 1;
    if (n === 0) return;
    const view = new DataView(buf);
    const start = n > this.capacity ? n - this.capacity : 0;
    const room = this.capacity - this.count;
    if (n - start > room) this.drop(Math.min(this.count, n - start - room));
    let w = (this.readIdx + this.count) % this.capacity;
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

  /** Skips silent windows at the read position while we are behind. */
  skipSilence() {
    const behind = this.samples(this.targetMs + this.catchUpMs);
    const win = this.window;
    const ring = this.ring;
    const cap = this.capacity;
    for (let k = 0; k < MAX_SKIPS && this.count > behind + win; k++) {
      let idx = this.readIdx;
      for (let i = 0; i < win; i++) {
        const v = ring[idx];
        if (v > SILENCE || v < -SILENCE) return;
        idx++;
        if (idx === cap) idx = 0;
      }
      this.readIdx = idx;
      this.count -= win;
      this.skippedSamples += win;
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;

    if (!this.playing && this.count > 1) {
      const waited = this.fillSince >= 0 ? (currentTime - this.fillSince) * 1000 : 0;
      if (this.ms(this.count) >= this.targetMs || waited >= this.targetMs) {
        this.playing = true;
        this.fillSince = -1;
      }
    }
    if (this.playing) {
      if (this.ms(this.count) > this.maxMs) {
        this.drop(this.count - this.samples(this.targetMs));
        this.frac = 0;
      } else {
        this.skipSilence();
      }
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
    for (; i < out.length; i++) out[i] = 0;

    // No jitter for 10 s: come back down toward the base target.
    if (currentTime - this.smoothSince > 10 && this.targetMs > this.baseTargetMs) {
      this.targetMs = Math.max(this.baseTargetMs, this.targetMs - 25);
      this.smoothSince = currentTime;
    }

    if (currentTime - this.lastStats >= STATS_EVERY) {
      this.lastStats = currentTime;
      this.port.postMessage({
        type: 'stats',
        bufferedMs: Math.round(this.ms(this.count)),
        targetMs: this.targetMs,
        playing: this.playing,
        underruns: this.underruns,
        droppedMs: Math.round(this.ms(this.droppedSamples)),
        skippedMs: Math.round(this.ms(this.skippedSamples)),
      });
    }
    return true;
  }
}

registerProcessor('pcm-player', PcmPlayer);
