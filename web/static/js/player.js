// player.js: hearing a channel of a room. The attendee page, the
// conversation page and the speaker page (an audience question, in the
// speaker's language) all play through it:
//
// - AudioOut is the page's AudioContext and master volume, made on a
//   press (browsers let sound start only then), with the player worklet.
// - ChannelStream is one listener WebSocket (/api/v1/rooms/{id}/listen)
//   feeding one player node (/static/player-worklet.js: jitter buffer and
//   resampling) through its own gain; it hands the text messages (hello,
//   caption, state, delay) to its owner. It asks for Opus (a twelfth of
//   PCM's bandwidth: venue Wi-Fi) where the browser decodes it with
//   WebCodecs (opus.js), PCM elsewhere, and plays what the hello says.

import { credentialProtocols, probeHandshake, wsURL } from './api.js';
import { Close, Codec, FLOOR, Msg, SAMPLE_RATE } from './protocol.js';
import { OpusPlayer, opusDecodeSupported } from './opus.js';
import { ReconnectingSocket } from './ws.js';

/** The player worklet, loaded by URL into the AudioContext. */
export const PLAYER_WORKLET = '/static/player-worklet.js';

/**
 * The listener endpoint of a channel. A passcode never goes in it: it is
 * offered as the WebSocket subprotocol (credentialProtocols), which no
 * load balancer logs.
 */
export function listenPath(roomId, lang, { passthrough = true, codec = '' } = {}) {
  const q = new URLSearchParams({ lang });
  if (!passthrough) q.set('passthrough', 'false');
  if (codec && codec !== Codec.PCM) q.set('codec', codec);
  return `/api/v1/rooms/${encodeURIComponent(roomId)}/listen?${q}`;
}

/**
 * Asks the server whether code is roomId's passcode: a listener WebSocket
 * on lang that says hello (right) or closes with 4403 before it (wrong).
 * The server answers nothing else about a passcode, and counts wrong ones:
 * too many from this network and it refuses for a while (429, which a
 * failed handshake hides; a plain GET tells). Resolves to 'ok', 'wrong',
 * or an ApiError (null: no answer).
 */
export function checkPasscode(roomId, lang, code) {
  const path = listenPath(roomId, lang);
  return new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(wsURL(path), credentialProtocols('passcode', code));
    } catch {
      resolve(null);
      return;
    }
    let settled = false;
    const settle = (v) => {
      if (settled) return;
      settled = true;
      ws.onmessage = ws.onclose = ws.onerror = ws.onopen = null;
      try { ws.close(Close.NORMAL, 'checked'); } catch { /* closed */ }
      resolve(v);
    };
    const timer = setTimeout(() => settle(null), 10000);
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      try {
        if (JSON.parse(ev.data).type === Msg.HELLO) { clearTimeout(timer); settle('ok'); }
      } catch { /* not JSON */ }
    };
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onclose = async (ev) => {
      clearTimeout(timer);
      if (ev.code === Close.PASSCODE_CHANGED) return settle('wrong');
      settle(opened ? null : await probeHandshake(path));
    };
  });
}

/** The page's sound: one AudioContext, one master gain, the player worklet. */
export class AudioOut {
  constructor({ volume = 1, onStateChange } = {}) {
    this.ctx = null;
    this.master = null;
    this.ready = null; // Promise of the worklet module
    this.volume = volume;
    this.onStateChange = onStateChange;
  }

  /**
   * Makes (the first time) and resumes the context. Call it inside the
   * press of a button: everything that needs the gesture happens before
   * the first await. Returns the resume's promise.
   */
  ensure() {
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      // A 24 kHz context lets the browser's own resampler do the work. Safari
      // (every iOS browser) has crackled with rates other than the
      // hardware's, so there the worklet resamples instead.
      const apple = navigator.vendor === 'Apple Computer, Inc.';
      try {
        this.ctx = apple ? new AC({ latencyHint: 'interactive' }) : new AC({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
      } catch {
        this.ctx = new AC({ latencyHint: 'interactive' }); // 24 kHz not supported: the worklet resamples
      }
      this.master = this.ctx.createGain();
      this.master.gain.value = this.volume;
      this.master.connect(this.ctx.destination);
      this.ready = this.ctx.audioWorklet.addModule(PLAYER_WORKLET);
      if (this.onStateChange) this.ctx.addEventListener('statechange', this.onStateChange);
      // Older iOS unlocks audio only after something is started in the gesture.
      const blip = this.ctx.createBufferSource();
      blip.buffer = this.ctx.createBuffer(1, 1, this.ctx.sampleRate);
      blip.connect(this.ctx.destination);
      blip.start();
    }
    if ('audioSession' in navigator) {
      try { navigator.audioSession.type = 'playback'; } catch { /* not supported */ }
    }
    return this.ctx.resume();
  }

  /** True while sound plays (the system may suspend it: a call, another app). */
  get running() {
    return !!this.ctx && this.ctx.state === 'running';
  }

  get suspended() {
    return !!this.ctx && this.ctx.state !== 'running' && this.ctx.state !== 'closed';
  }

  setVolume(v) {
    this.volume = v;
    if (this.master) rampGain(this.ctx, this.master, v);
  }

  suspend() {
    if (this.running) this.ctx.suspend().catch(() => {});
  }

  close() {
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = this.master = this.ready = null;
  }
}

/** Ramps a gain without clicks. */
export function rampGain(ctx, gain, value) {
  const t = ctx.currentTime;
  gain.gain.cancelScheduledValues(t);
  gain.gain.setTargetAtTime(value, t, 0.05);
}

/**
 * A player worklet node with its own gain, into out's master. Paced audio
 * (the floor, as mics send it) keeps at most a second; an interpretation,
 * which comes in bursts, may buffer many seconds.
 */
export function playerNode(out, paced) {
  const node = new AudioWorkletNode(out.ctx, 'pcm-player', {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: paced
      ? { inputRate: SAMPLE_RATE, targetMs: 150, maxMs: 1000, catchUpMs: 250 }
      : { inputRate: SAMPLE_RATE, targetMs: 150, maxMs: 12000, catchUpMs: 1000 },
  });
  const gain = out.ctx.createGain();
  node.connect(gain).connect(out.master);
  return { node, gain };
}

/**
 * ChannelStream plays one channel. The floor (lang=floor) arrives paced at
 * real time by the mics, so more than a second buffered is lag to drop. A
 * channel may carry an interpretation, which arrives in bursts faster than
 * real time (the model speaks a sentence quicker than it is said), so it
 * may buffer many seconds; the player catches up by shortening pauses.
 */
export class ChannelStream {
  /**
   * @param {AudioOut} out  ensured, with its worklet loaded
   * @param {object} o
   * @param {string} o.roomId
   * @param {string} o.lang  a language of the room, or FLOOR
   * @param {boolean} [o.passthrough=true]  false: interpretations only, never the original
   * @param {string} [o.codec]  Codec.PCM to refuse Opus; by default Opus where the browser decodes it
   * @param {() => string} [o.passcode]
   * @param {() => string} [o.key]  the room's speaker key, in place of the passcode (the room's own mics)
   * @param {(msg: object) => void} [o.onText]  every text message, hello included
   * @param {() => void} [o.onOpen]
   * @param {(info: object) => any} [o.onClose]  as ReconnectingSocket's, with greeted: the hello had come
   * @param {() => void} [o.onRetry]
   * @param {(stats: object) => void} [o.onStats]  the player's stats, a few times a second
   */
  constructor(out, o) {
    this.out = out;
    this.o = o;
    this.lang = o.lang;
    this.passthrough = o.passthrough !== false;
    this.hello = false;
    this.bytes = 0; // audio played, in bytes of 24 kHz PCM16 (whatever the codec)
    this.received = 0; // bytes of audio off the network
    this.stats = null;
    this.wantOpus = false; // ask for Opus (decided before the first connection)
    this.codec = ''; // what the hello said: Codec.OPUS or Codec.PCM
    this.opus = null; // OpusPlayer while the connection is Opus
    this.playRate = SAMPLE_RATE; // the rate the worklet is told
    this.stopped = false;
    ({ node: this.node, gain: this.gain } = playerNode(out, o.lang === FLOOR));
    this.node.port.onmessage = (ev) => {
      if (ev.data && ev.data.type === 'stats') {
        this.stats = ev.data;
        o.onStats?.(ev.data);
      }
    };
    this.socket = new ReconnectingSocket(() => wsURL(this.path()), {
      // The passcode (or key) goes in the subprotocol, out of every access log.
      protocols: () => (o.key ? credentialProtocols('key', o.key())
        : credentialProtocols('passcode', o.passcode ? o.passcode() : '')),
      onopen: () => o.onOpen?.(),
      onmessage: (ev) => this.onMessage(ev),
      onclose: (info) => {
        // greeted: the hello came on this connection (a 4403 before it
        // is a wrong passcode, after it a changed one).
        const greeted = this.hello;
        this.hello = false;
        this.closeOpus();
        this.node.port.postMessage({ type: 'reset' });
        return o.onClose ? o.onClose({ ...info, greeted }) : true;
      },
      onretry: () => { this.hello = false; o.onRetry?.(); },
    });
    // Opus where this browser decodes it, unless the owner says PCM.
    const check = o.codec === Codec.PCM ? Promise.resolve(false) : opusDecodeSupported();
    check.then((ok) => {
      this.wantOpus = ok;
      if (!this.stopped) this.socket.start();
    });
  }

  /** The endpoint's path and query (the passcode goes in the subprotocol). */
  path() {
    return listenPath(this.o.roomId, this.lang, { passthrough: this.passthrough, codec: this.wantOpus ? Codec.OPUS : '' });
  }

  /** Tells the worklet the rate of what it gets. */
  setRate(rate) {
    if (rate && rate !== this.playRate) {
      this.playRate = rate;
      this.node.port.postMessage({ type: 'config', inputRate: rate });
    }
  }

  closeOpus() {
    if (this.opus) this.opus.close();
    this.opus = null;
  }

  get isOpen() {
    return this.socket.isOpen;
  }

  setGain(v) {
    rampGain(this.out.ctx, this.gain, v);
  }

  stop() {
    this.stopped = true;
    this.closeOpus();
    this.socket.stop(Close.NORMAL, 'bye');
    this.node.port.postMessage({ type: 'reset' });
    this.node.disconnect();
    this.gain.disconnect();
  }

  onMessage(ev) {
    if (ev.data instanceof ArrayBuffer) {
      let buf = ev.data;
      this.received += buf.byteLength;
      if (this.opus) {
        this.opus.decode(buf);
        return;
      }
      if (buf.byteLength & 1) buf = buf.slice(0, buf.byteLength - 1);
      this.bytes += buf.byteLength;
      this.node.port.postMessage(buf, [buf]);
      return;
    }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === Msg.HELLO) {
      this.hello = true;
      this.codec = msg.codec === Codec.OPUS ? Codec.OPUS : Codec.PCM;
      this.closeOpus();
      if (this.codec === Codec.OPUS) {
        // Decoded at the decoder's own rate (48 kHz), which the worklet is told.
        this.opus = new OpusPlayer((pcm, rate) => {
          this.bytes += Math.round((pcm.byteLength * SAMPLE_RATE) / rate);
          this.setRate(rate);
          this.node.port.postMessage(pcm, [pcm]);
        });
      } else {
        this.setRate(msg.sample_rate || SAMPLE_RATE);
      }
    }
    this.o.onText?.(msg);
  }
}
