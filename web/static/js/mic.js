// mic.js: a microphone sent to a room. The speaker page, the conversation
// page and an attendee's question all speak through it:
//
// - Microphone captures the device through /static/capture-worklet.js at
//   the AudioContext's own rate, in 100 ms PCM16 frames.
// - MicLink is the speaker WebSocket (/api/v1/rooms/{id}/speak): it
//   reconnects by itself, says which mic it is in its start message (mic
//   id, name, language, the capture's rate or "codec":"opus"), sends
//   frames while the browser keeps up (as Opus where WebCodecs encodes it:
//   opus.js; PCM elsewhere), passes the server's messages on, and tells
//   the page why the server ended the mic (replaced, room gone, refused,
//   key refused).
// - SpeakerKey is the room's speaker key on the pages that are a mic of
//   the room with it: from the link or the page's key form, checked.
//
// What a page says about a failure is the page's affair; the sentences
// both need are here (text), in one place for translation.

import { localize } from './i18n.js';
import { credentialProtocols, describeError, probeHandshake, wsURL } from './api.js';
import { Close, Codec, ErrorCode, Msg } from './protocol.js';
import { OpusSender, opusEncodeSupported } from './opus.js';
import { ReconnectingSocket } from './ws.js';
import { fmt, notice, secretFromFragment, store } from './ui.js';

/** The capture worklet, loaded by URL into the AudioContext. */
export const CAPTURE_WORKLET = '/static/capture-worklet.js';

/** Audio the browser may hold unsent before frames are dropped. */
const MAX_QUEUED_SECONDS = 2;

export const text = localize('mic', {
  micRefused: 'The browser was not allowed to use the microphone. Allow it in the site settings (the icon by the address), then try again.',
  micMissing: 'No microphone was found. Plug one in and try again.',
  micBusy: 'The microphone is busy or failed. Close other apps using it and try again.',
  noMedia: 'This browser cannot send a microphone',
  noMediaInsecure: 'Open this page over HTTPS (or on localhost): browsers allow the microphone only there.',
  noMediaOld: 'Use a current Chrome, Firefox, Edge or Safari.',
  // What the server refused, by its error code.
  badLanguage: 'This room does not offer that language (any more). Pick one of the room’s languages and start again.',
  tooManyMics: 'The room has as many microphones live as it allows. Ask the organizers to stop one or to allow more.',
  badMic: 'That mic name is not accepted: use 1 to 32 lowercase letters, digits and dashes, not starting with “q-”.',
  badAudio: 'The server refused the audio ({why}). Reload the page and try again.',
  keyRotated: 'The key was changed by the organizers. Ask them for the new link.',
});

/** Whether this browser can capture and send a microphone here. */
export function mediaSupported() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
}

/** Why the microphone cannot be used, when mediaSupported() is false. */
export function noMediaReason() {
  return window.isSecureContext ? text.noMediaOld : text.noMediaInsecure;
}

/** A sentence for a getUserMedia or capture failure. */
export function micError(err) {
  if (err.name === 'NotAllowedError' || err.name === 'SecurityError') return text.micRefused;
  if (err.name === 'NotFoundError') return text.micMissing;
  if (err.name === 'NotReadableError') return text.micBusy;
  return describeError(err);
}

/** The audio inputs, once the page may know them ([] when it may not). */
export async function listMicrophones() {
  if (!mediaSupported()) return [];
  try {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput');
  } catch {
    return [];
  }
}

/**
 * Microphone is one captured device feeding the capture worklet. Echo
 * cancellation, noise suppression and automatic gain are on: a speaker
 * near loudspeakers, and two phones on one table, need them.
 */
export class Microphone {
  /**
   * @param {object} o
   * @param {() => string} [o.deviceId]  the device to use ('' for the default)
   * @param {() => void} [o.onDeviceGone]  the chosen device is gone: the default is used
   * @param {(frame: {pcm: ArrayBuffer, rmsDb: number, peakDb: number}) => void} o.onFrame
   * @param {() => void} [o.onTrackEnded]  the device stopped (unplugged, taken)
   */
  constructor(o) {
    this.o = o;
    this.ctx = null;
    this.node = null;
    this.stream = null;
    this.source = null;
    this.muted = false;
  }

  get sampleRate() {
    return this.ctx ? this.ctx.sampleRate : 0;
  }

  get running() {
    return !!this.node;
  }

  constraints(id) {
    return {
      audio: {
        deviceId: id ? { exact: id } : undefined,
        channelCount: { ideal: 1 },
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
      video: false,
    };
  }

  async open() {
    const id = this.o.deviceId ? this.o.deviceId() : '';
    try {
      return await navigator.mediaDevices.getUserMedia(this.constraints(id));
    } catch (err) {
      if (id && (err.name === 'OverconstrainedError' || err.name === 'NotFoundError')) {
        this.o.onDeviceGone?.(); // the remembered device is gone: the default one
        return navigator.mediaDevices.getUserMedia(this.constraints(''));
      }
      throw err;
    }
  }

  /**
   * Starts capturing. Call it inside the press of a button: the
   * AudioContext is made (and resumed) before the first await, so browsers
   * let it run. Throws what getUserMedia throws (see micError); stopped
   * meanwhile, it resolves having started nothing.
   */
  async start() {
    if (this.ctx) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    const ctx = new AC({ latencyHint: 'interactive' });
    this.ctx = ctx;
    const resumed = ctx.resume();
    let stream = null;
    try {
      stream = await this.open();
      await resumed;
      await ctx.audioWorklet.addModule(CAPTURE_WORKLET);
      if (this.ctx !== ctx) { // stopped meanwhile
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      this.node = new AudioWorkletNode(ctx, 'pcm-capture', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { frameMs: 100 },
      });
      this.node.port.onmessage = (ev) => {
        if (ev.data && ev.data.type === 'frame') this.o.onFrame(ev.data);
      };
      this.node.port.postMessage({ type: 'mute', muted: this.muted });
      // The node must reach the destination to be pulled; it outputs silence.
      const sink = ctx.createGain();
      sink.gain.value = 0;
      this.node.connect(sink).connect(ctx.destination);
      this.attach(stream);
    } catch (err) {
      if (stream) stream.getTracks().forEach((t) => t.stop());
      if (this.ctx === ctx) this.stop();
      throw err;
    }
  }

  /** Connects a stream to the running capture node, letting the old one go. */
  attach(stream) {
    const old = { stream: this.stream, source: this.source };
    this.stream = stream;
    this.source = this.ctx.createMediaStreamSource(stream);
    this.source.connect(this.node);
    for (const t of stream.getAudioTracks()) {
      t.addEventListener('ended', () => {
        if (this.stream === stream) this.o.onTrackEnded?.();
      });
    }
    if (old.source) old.source.disconnect();
    if (old.stream) old.stream.getTracks().forEach((t) => t.stop());
  }

  /** Moves to the device deviceId() names now, while capturing. */
  async switchDevice() {
    if (!this.node) return;
    this.attach(await this.open());
  }

  /** While muted the worklet sends silence, so interpreters finish their words. */
  setMuted(muted) {
    this.muted = muted;
    if (this.node) this.node.port.postMessage({ type: 'mute', muted });
  }

  stop() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.ctx) this.ctx.close().catch(() => {});
    this.ctx = this.node = this.stream = this.source = null;
  }
}

/** The speaker endpoint of a room (a plain GET with the key checks the key). */
export function speakPath(roomId) {
  return `/api/v1/rooms/${encodeURIComponent(roomId)}/speak`;
}

/** Whether a key check's answer (probeHandshake) refuses the key. */
function keyRefused(err) {
  return !!err && (err.status === 401 || err.status === 403);
}

/**
 * MicLink is one speaker WebSocket: a mic of the room. Its start message
 * says the capture's rate and, from hello(), which mic it is, who speaks
 * and in what language (each omitted when empty: the server's defaults).
 *
 * When the server ends the mic, the handler for the reason is told and the
 * link does not reconnect: onReplaced (the same mic was opened elsewhere),
 * onRoomGone (deleted: true when the server said so, false when a key check
 * found no room), onRefused (refusal()), onKeyRefused (a connection that
 * never opened, and the key check refuses the key: only asked where the
 * handler is given). A close without a handler, and a network drop, is
 * retried; onShutdown is told of a server restart before the retry.
 */
export class MicLink {
  /**
   * @param {object} o
   * @param {string} o.roomId
   * @param {() => string} o.key  the speaker key, or an accepted question's token
   * @param {() => number} o.sampleRate
   * @param {string} [o.codec]  Codec.PCM to send PCM; by default Opus where the browser encodes it
   * @param {() => {mic?: string, name?: string, language?: string}} [o.hello]
   * @param {(msg: object) => void} [o.onReady]
   * @param {(msg: object) => void} [o.onLevel]
   * @param {(msg: object) => void} [o.onStatus]
   * @param {(err: {code: string, message: string}) => void} [o.onServerError]
   * @param {(info: object) => any} [o.onClose]  every close, first; false stops (as ReconnectingSocket's); lastError is on the link
   * @param {() => void} [o.onReplaced]
   * @param {(deleted: boolean) => void} [o.onRoomGone]
   * @param {(refused: {reason: string, text: string}) => void} [o.onRefused]
   * @param {() => void} [o.onKeyRefused]
   * @param {() => void} [o.onShutdown]
   * @param {() => void} [o.onRetry]
   * @param {() => void} [o.onDropped]  a frame was dropped: the network is too slow
   * @param {() => string} [o.path]  another endpoint taking a mic (a booth's); default the speaker's
   * @param {(buf: ArrayBuffer) => void} [o.onAudio]  binary messages (a booth sends what it hears)
   * @param {(msg: object) => void} [o.onOther]  text messages of other types
   */
  constructor(o) {
    this.o = o;
    this.ready = false;
    this.lastError = null; // {code, message} the server sent before closing
    this.opusOK = false; // this browser encodes Opus at the capture's rate
    this.codec = ''; // what this connection sends: Codec.OPUS or Codec.PCM
    this.enc = null; // the connection's OpusSender
    this.stopped = false;
    this.socket = new ReconnectingSocket(() => wsURL(o.path ? o.path() : speakPath(o.roomId)), {
      // The key goes in the subprotocol, out of every access log.
      protocols: () => credentialProtocols('key', o.key()),
      onopen: (ws) => {
        this.ready = false;
        this.lastError = null;
        const start = { type: Msg.START, sample_rate: o.sampleRate() };
        this.closeEncoder();
        if (this.opusOK) {
          try {
            // The encoder answers asynchronously: a packet may come out
            // after this connection closed (it is lost with it).
            const send = (msg) => { if (ws.readyState === WebSocket.OPEN) ws.send(msg); };
            this.enc = new OpusSender(o.sampleRate(), send, () => {
              // The encoder failed: PCM from the next connection on.
              this.opusOK = false;
              this.socket.retryNow();
            });
            start.codec = Codec.OPUS;
            delete start.sample_rate;
          } catch {
            this.opusOK = false;
            this.enc = null;
          }
        }
        this.codec = this.enc ? Codec.OPUS : Codec.PCM;
        const h = o.hello ? o.hello() : {};
        for (const k of ['mic', 'name', 'language']) if (h[k]) start[k] = h[k];
        ws.send(JSON.stringify(start));
      },
      onmessage: (ev) => this.onMessage(ev),
      onclose: async (info) => {
        this.ready = false;
        this.closeEncoder();
        const go = o.onClose ? await o.onClose(info) : true;
        if (go === false || (await this.ended(info))) return false;
        return typeof go === 'number' ? go : true;
      },
      onretry: () => { this.ready = false; o.onRetry?.(); },
    });
  }

  /** Tells the page's handler when a close ends the mic for good; returns whether it did. */
  async ended({ code, opened }) {
    const o = this.o;
    if (code === Close.REPLACED && o.onReplaced) {
      o.onReplaced();
      return true;
    }
    if (code === Close.ROOM_GONE && o.onRoomGone) {
      o.onRoomGone(true);
      return true;
    }
    if (code === Close.SHUTDOWN) {
      o.onShutdown?.();
      return false;
    }
    const refused = refusal(code, this.lastError);
    if (refused && o.onRefused) {
      o.onRefused(refused);
      return true;
    }
    if (!opened && o.onKeyRefused) {
      // Browsers hide why a handshake failed: a plain request tells.
      const err = await probeHandshake(o.path ? o.path() : speakPath(o.roomId), { token: o.key() });
      if (keyRefused(err)) {
        o.onKeyRefused();
        return true;
      }
      if (err && err.status === 404 && o.onRoomGone) {
        o.onRoomGone(false);
        return true;
      }
    }
    return false;
  }

  /** Connects, once it is known whether this browser encodes Opus. */
  start() {
    this.stopped = false;
    const check = this.o.codec === Codec.PCM ? Promise.resolve(false) : opusEncodeSupported(this.o.sampleRate());
    check.then((ok) => {
      this.opusOK = ok;
      if (!this.stopped) this.socket.start();
    });
  }

  stop(reason = 'stopped') {
    this.stopped = true;
    this.ready = false;
    this.closeEncoder();
    this.socket.stop(Close.NORMAL, reason);
  }

  closeEncoder() {
    if (this.enc) this.enc.close();
    this.enc = null;
  }

  get isOpen() { return this.socket.isOpen; }

  get attempt() { return this.socket.attempt; }

  /**
   * Sends a frame of PCM (encoded first, on an Opus connection), unless
   * the browser already holds too much unsent.
   */
  send(pcm) {
    const s = this.socket;
    if (!s.isOpen) return false; // live audio: what is captured while offline is not kept
    const perSecond = this.enc ? 4000 : this.o.sampleRate() * 2; // Opus: 32 kbit/s
    if (s.bufferedAmount > MAX_QUEUED_SECONDS * perSecond) {
      this.o.onDropped?.();
      return false;
    }
    if (this.enc) {
      this.enc.encode(pcm);
      return true;
    }
    return s.send(pcm);
  }

  /** Sends a text message (a booth's take, hand_over, mute). */
  message(msg) {
    return this.socket.send(JSON.stringify(msg));
  }

  /** Tells the server the mic speaks another language from now on. */
  setLanguage(language) {
    return this.socket.send(JSON.stringify({ type: Msg.LANGUAGE, language }));
  }

  onMessage(ev) {
    if (typeof ev.data !== 'string') {
      this.o.onAudio?.(ev.data);
      return;
    }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    switch (msg.type) {
      case Msg.READY:
        this.ready = true;
        this.o.onReady?.(msg);
        break;
      case Msg.LEVEL:
        this.o.onLevel?.(msg);
        break;
      case Msg.STATUS:
        this.o.onStatus?.(msg);
        break;
      case Msg.ERROR:
        this.lastError = { code: msg.code || '', message: msg.message || '' };
        this.o.onServerError?.(this.lastError);
        break;
      default:
        this.o.onOther?.(msg); // newer servers may say more
    }
  }
}

/**
 * What the server refused when it closed a mic over something (1007, 1008,
 * 1009): {reason: its error code, text: what to tell a person}; null for
 * other closes.
 */
export function refusal(code, lastError) {
  if (code !== Close.BAD_AUDIO && code !== Close.BAD_MESSAGE && code !== Close.TOO_LARGE) return null;
  const reason = (lastError && lastError.code) || String(code);
  switch (reason) {
    case ErrorCode.BAD_LANGUAGE: return { reason, text: text.badLanguage };
    case ErrorCode.TOO_MANY_MICS: return { reason, text: text.tooManyMics };
    case ErrorCode.BAD_MIC: return { reason, text: text.badMic };
    case ErrorCode.KEY_ROTATED: return { reason, text: text.keyRotated };
    default: return { reason, text: fmt(text.badAudio, { why: lastError ? lastError.message : `close code ${code}` }) };
  }
}

/**
 * LiveGuard holds what a live mic needs of the page: the screen stays on
 * (a phone that sleeps stops its microphone), taken again when the page
 * is shown again, and leaving the page asks first.
 */
export class LiveGuard {
  /** @param {() => boolean} isLive */
  constructor(isLive) {
    this.isLive = isLive;
    this.lock = null;
    window.addEventListener('beforeunload', (ev) => {
      if (this.isLive()) {
        ev.preventDefault();
        ev.returnValue = '';
      }
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.keepAwake();
    });
  }

  async keepAwake() {
    if (!('wakeLock' in navigator) || !this.isLive() || this.lock) return;
    try {
      this.lock = await navigator.wakeLock.request('screen');
      this.lock.addEventListener('release', () => { this.lock = null; });
    } catch {
      // Not allowed now (battery saver, hidden page): fine.
    }
  }

  release() {
    if (this.lock) this.lock.release().catch(() => {});
    this.lock = null;
  }
}

/**
 * MicLink's ending handlers for a page that stops its mic and says why in
 * a notice box (the speaker and conversation pages). The words are the
 * page's (text.replaced, replacedText with vars(), restarting,
 * restartingText, refused); a refusal also sets the box's data-reason to
 * the server's reason. stop() stops the mic; roomGone and keyRefused (the
 * mic already stopped) are the page's own.
 * @param {HTMLElement} box
 * @param {{stop: () => void, text: object, vars?: () => object,
 *          roomGone: (deleted: boolean) => void, keyRefused: () => void}} o
 */
export function noticeEndings(box, o) {
  const say = (kind, title, body, reason) => {
    notice(box, kind, title, body);
    if (reason) box.dataset.reason = reason;
  };
  return {
    onReplaced: () => {
      o.stop();
      say('warn', o.text.replaced, fmt(o.text.replacedText, o.vars ? o.vars() : {}), 'replaced');
    },
    onRoomGone: o.roomGone,
    onShutdown: () => say('info', o.text.restarting, o.text.restartingText),
    onRefused: (refused) => {
      o.stop();
      say('error', o.text.refused, refused.text, refused.reason);
    },
    onKeyRefused: () => {
      o.stop();
      o.keyRefused();
    },
  };
}

/**
 * SpeakerKey is the room's speaker key on a page that is a mic of the room
 * with it (the speaker and conversation pages): from the link's fragment
 * (secretFromFragment) or typed into the page's key form, checked against
 * the speak endpoint before it is used, and kept for this tab only.
 */
export class SpeakerKey {
  /**
   * @param {object} o
   * @param {string} o.roomId
   * @param {HTMLFormElement} o.form  the key form: its input named key, its alert (role=alert), its submit button
   * @param {{keyNotAccepted: string, enterKey: string, wrongKey: string}} o.text  the page's words, read when shown
   * @param {HTMLElement[]} o.hides  what needs the key: hidden while the form asks for it
   * @param {() => void} o.onAccepted  a typed key was accepted; the form is hidden
   * @param {(deleted: boolean) => void} o.onRoomGone  a check found no such room (deleted false)
   */
  constructor(o) {
    this.o = o;
    this.storageKey = `babelcast.speakerKey.${o.roomId}`;
    this.value = secretFromFragment(this.storageKey);
    this.ui = {
      form: o.form,
      input: o.form.elements.namedItem('key'),
      error: o.form.querySelector('[role=alert]'),
      submit: o.form.querySelector('[type=submit]'),
    };
    if (!this.ui.input || !this.ui.error || !this.ui.submit) throw new Error('the key form lacks its key input, alert or submit button');
    o.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
  }

  /** Asks the speak endpoint about a key: an ApiError if refused, null if it looks fine. */
  check(key) {
    return probeHandshake(speakPath(this.o.roomId), { token: key });
  }

  /** Shows the form, saying why the key is asked for again ('' the first time). */
  ask(error) {
    const u = this.ui;
    for (const e of this.o.hides) e.hidden = true;
    u.form.hidden = false;
    notice(u.error, 'error', error ? this.o.text.keyNotAccepted : '', error || '');
    if (error) u.input.setAttribute('aria-invalid', 'true');
    u.input.focus();
  }

  /** Lets the key go (this tab keeps it no more) and asks for another. */
  forget(error = '') {
    this.value = '';
    store.set('sessionStorage', this.storageKey, '');
    this.ask(error);
  }

  /**
   * Checks the key the page came with, before anything uses it: true when
   * it may go on; otherwise the form asks (saying stale when the key is
   * refused) or the room is gone.
   */
  async verify(stale) {
    if (!this.value) {
      this.ask('');
      return false;
    }
    const err = await this.check(this.value);
    if (keyRefused(err)) {
      this.forget(stale);
      return false;
    }
    if (err && err.status === 404) {
      this.o.onRoomGone(false);
      return false;
    }
    return true;
  }

  async submit() {
    const u = this.ui;
    const key = u.input.value.trim();
    if (!key) return this.ask(this.o.text.enterKey);
    u.submit.disabled = true;
    const err = await this.check(key);
    u.submit.disabled = false;
    if (keyRefused(err)) return this.ask(this.o.text.wrongKey);
    if (err && err.status === 404) return this.o.onRoomGone(false);
    this.value = key;
    store.set('sessionStorage', this.storageKey, key);
    u.input.value = '';
    u.input.removeAttribute('aria-invalid');
    u.form.hidden = true;
    return this.o.onAccepted();
  }
}
