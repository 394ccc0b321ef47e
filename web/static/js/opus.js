// opus.js: Opus in the browser, through WebCodecs (AudioDecoder,
// AudioEncoder), in the framing of babelcast's WebSockets: 20 ms mono
// packets, each preceded by its length as 2 bytes, big-endian. Where the
// browser has no WebCodecs Opus, the callers fall back to PCM; every
// check here answers false rather than throwing.

import { OPUS_CLOCK_RATE } from './protocol.js';

/** Packets to a message the encoder sends: 100 ms, as PCM frames go. */
const PACKETS_PER_MESSAGE = 5;

const decodeConfig = { codec: 'opus', sampleRate: OPUS_CLOCK_RATE, numberOfChannels: 1 };

let decodeCheck = null;

/** Resolves true where this browser decodes Opus with AudioDecoder. */
export function opusDecodeSupported() {
  if (!decodeCheck) {
    decodeCheck = (async () => {
      try {
        if (typeof AudioDecoder === 'undefined') return false;
        return !!(await AudioDecoder.isConfigSupported(decodeConfig)).supported;
      } catch {
        return false;
      }
    })();
  }
  return decodeCheck;
}

function encodeConfig(sampleRate) {
  return { codec: 'opus', sampleRate, numberOfChannels: 1, bitrate: 32000, opus: { frameDuration: 20000 } };
}

/** Resolves true where this browser encodes Opus at sampleRate with AudioEncoder. */
export async function opusEncodeSupported(sampleRate) {
  try {
    if (typeof AudioEncoder === 'undefined' || typeof AudioData === 'undefined') return false;
    return !!(await AudioEncoder.isConfigSupported(encodeConfig(sampleRate))).supported;
  } catch {
    return false;
  }
}

/** The packets of a length-prefixed message (views into it); null when its framing is wrong. */
export function splitFramed(buf) {
  const view = new DataView(buf);
  const out = [];
  for (let at = 0; at < buf.byteLength;) {
    if (at + 2 > buf.byteLength) return null;
    const n = view.getUint16(at);
    at += 2;
    if (n === 0 || at + n > buf.byteLength) return null;
    out.push(new Uint8Array(buf, at, n));
    at += n;
  }
  return out;
}

/**
 * OpusPlayer decodes a listener's Opus messages to PCM16 for the player
 * worklet: onPCM(ArrayBuffer of PCM16LE mono, sampleRate).
 */
export class OpusPlayer {
  constructor(onPCM) {
    this.onPCM = onPCM;
    this.ts = 0; // µs: packets are 20 ms each, back to back
    this.errors = 0;
    this.decoder = null;
    this.open();
  }

  open() {
    this.decoder = new AudioDecoder({
      output: (data) => this.output(data),
      error: () => { this.errors++; this.decoder = null; }, // reopened at the next packet
    });
    this.decoder.configure(decodeConfig);
  }

  output(data) {
    const n = data.numberOfFrames;
    const f = new Float32Array(n);
    data.copyTo(f, { planeIndex: 0, format: 'f32-planar' });
    const rate = data.sampleRate;
    data.close();
    const pcm = new Int16Array(n);
    for (let i = 0; i < n; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(f[i] * 32767)));
    this.onPCM(pcm.buffer, rate);
  }

  /** Decodes one message; false when it is not Opus as the protocol frames it. */
  decode(buf) {
    const packets = splitFramed(buf);
    if (!packets) return false;
    if (!this.decoder || this.decoder.state === 'closed') this.open();
    for (const p of packets) {
      this.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: this.ts, data: p }));
      this.ts += 20000;
    }
    return true;
  }

  close() {
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
  }
}

/**
 * OpusSender encodes a microphone's PCM16 frames (at sampleRate) to Opus
 * messages for the speaker WebSocket: send(ArrayBuffer) gets a message of
 * PACKETS_PER_MESSAGE packets as they come out.
 */
export class OpusSender {
  constructor(sampleRate, send, onError) {
    this.sampleRate = sampleRate;
    this.sendMessage = send;
    this.samples = 0; // for timestamps
    this.pending = [];
    this.encoder = new AudioEncoder({
      output: (chunk) => this.output(chunk),
      error: (err) => onError?.(err),
    });
    this.encoder.configure(encodeConfig(sampleRate));
  }

  output(chunk) {
    const p = new Uint8Array(chunk.byteLength);
    chunk.copyTo(p);
    this.pending.push(p);
    if (this.pending.length >= PACKETS_PER_MESSAGE) this.flush();
  }

  flush() {
    if (this.pending.length === 0) return;
    const size = this.pending.reduce((n, p) => n + 2 + p.length, 0);
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const p of this.pending) {
      view.setUint16(at, p.length);
      out.set(p, at + 2);
      at += 2 + p.length;
    }
    this.pending = [];
    this.sendMessage(out.buffer);
  }

  /** Encodes a frame of PCM16LE mono. */
  encode(pcm) {
    if (this.encoder.state !== 'configured') return;
    const s = new Int16Array(pcm);
    const data = new AudioData({
      format: 's16', sampleRate: this.sampleRate, numberOfChannels: 1, numberOfFrames: s.length,
      timestamp: Math.round((this.samples * 1e6) / this.sampleRate), data: s,
    });
    this.samples += s.length;
    this.encoder.encode(data);
    data.close();
  }

  close() {
    if (this.encoder.state !== 'closed') this.encoder.close();
  }
}
