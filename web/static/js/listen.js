// listen.js: the attendee page, /rooms/{id}.
//
// One listener WebSocket carries the chosen language (audio + captions +
// state + delay). A second one carries the floor (the speaker's own voice)
// mixed underneath at the "original underneath" level, because the
// translation model can stay silent on speech already in the target
// language. When the chosen channel's translator is in error, the page
// plays the floor at full level by itself, and goes back when it recovers.
//
// Audio plays through /static/player-worklet.js (jitter buffer +
// resampling); the AudioContext is created and resumed on the Play press.

import { api, ApiError, describeError, probeHandshake, roomIdFromPath, wsURL } from './api.js';
import { ChannelState, Close, Msg, SAMPLE_RATE } from './protocol.js';
import { ReconnectingSocket } from './ws.js';
import { $, el, notice, store } from './ui.js';

const roomId = roomIdFromPath();
const keys = {
  lang: `babelcast.lang.${roomId}`,
  anyLang: 'babelcast.lang',
  passcode: `babelcast.passcode.${roomId}`,
  volume: 'babelcast.volume',
  mix: 'babelcast.originalMix',
  captions: 'babelcast.captions',
  captionSize: 'babelcast.captionSize',
};
const CAPTION_SIZES = [1, 1.25, 1.5, 1.85, 2.25, 2.75, 3.25]; // rem
const CAPTION_LINES = 4; // lines shown
const CAPTION_ANNOUNCED = 3; // final lines kept in the screen reader log
const DEFAULT_MIX = 15;

const ui = {
  pill: $('state-pill'),
  delay: $('delay'),
  roomName: $('room-name'),
  pageNotice: $('page-notice'),
  passForm: $('passcode-form'),
  passInput: $('passcode'),
  passError: $('passcode-error'),
  passSubmit: $('passcode-submit'),
  player: $('player'),
  langList: $('lang-list'),
  fallback: $('fallback-notice'),
  play: $('play'),
  playLabel: $('play-label'),
  playIcon: $('play').querySelector('.icon'),
  volume: $('volume'),
  volumeValue: $('volume-value'),
  mix: $('original-mix'),
  mixValue: $('original-mix-value'),
  mixRow: $('original-mix-row'),
  captions: $('captions'),
  captionsLive: $('captions-live'),
  captionsToggle: $('captions-toggle'),
  smaller: $('caption-smaller'),
  larger: $('caption-larger'),
};

/** Everything the page knows, in one place. */
const st = {
  info: null, // room.Public
  lang: '', // chosen channel code
  passcode: store.get('sessionStorage', keys.passcode) || '',
  playing: false,
  ended: false, // room deleted: nothing more to do
  main: null, // Stream of the chosen channel
  floor: null, // Stream of the original underneath (or as fallback)
  channelState: '', // idle|starting|active|error of the chosen channel
  channelMessage: '',
  speaker: null, // true/false once known
  fallback: false, // playing the floor because the translator is in error
  delayMs: null,
  delayAt: 0,
  captionLines: [], // {lang, seg, text, final}
  captionSizeIdx: clampIdx(Number(store.get('localStorage', keys.captionSize) ?? 2)),
};

function clampIdx(i) {
  return Number.isInteger(i) ? Math.min(CAPTION_SIZES.length - 1, Math.max(0, i)) : 2;
}

// ---------- audio ----------

const audio = {
  ctx: null,
  master: null,
  ready: null, // Promise of the worklet module
};

/** Creates (on the Play gesture) the AudioContext and master volume. */
function ensureAudio() {
  if (!audio.ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    // A 24 kHz context lets the browser's own resampler do the work. Safari
    // (every iOS browser) has crackled with rates other than the
    // hardware's, so there the worklet resamples instead.
    const apple = navigator.vendor === 'Apple Computer, Inc.';
    try {
      audio.ctx = apple ? new AC({ latencyHint: 'interactive' }) : new AC({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
    } catch {
      audio.ctx = new AC({ latencyHint: 'interactive' }); // 24 kHz not supported: the worklet resamples
    }
    audio.master = audio.ctx.createGain();
    audio.master.gain.value = Number(ui.volume.value) / 100;
    audio.master.connect(audio.ctx.destination);
    audio.ready = audio.ctx.audioWorklet.addModule('/static/player-worklet.js');
    audio.ctx.addEventListener('statechange', renderPlay);
    // Older iOS unlocks audio only after something is started in the gesture.
    const blip = audio.ctx.createBufferSource();
    blip.buffer = audio.ctx.createBuffer(1, 1, audio.ctx.sampleRate);
    blip.connect(audio.ctx.destination);
    blip.start();
  }
  if ('audioSession' in navigator) {
    try { navigator.audioSession.type = 'playback'; } catch { /* not supported */ }
  }
  return audio.ctx.resume();
}

/**
 * A player node (jitter buffer) with its own gain into the master. The
 * floor arrives paced at real time, so more than a second buffered is lag
 * to drop. A translation arrives in bursts faster than real time (the
 * model speaks a sentence quicker than it is said), so it may buffer many
 * seconds; the player catches up by shortening pauses instead.
 */
function makePlayer(paced) {
  const node = new AudioWorkletNode(audio.ctx, 'pcm-player', {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: paced
      ? { inputRate: SAMPLE_RATE, targetMs: 150, maxMs: 1000, catchUpMs: 250 }
      : { inputRate: SAMPLE_RATE, targetMs: 150, maxMs: 12000, catchUpMs: 1000 },
  });
  const gain = audio.ctx.createGain();
  node.connect(gain).connect(audio.master);
  return { node, gain, stats: null };
}

/** Ramps a gain without clicks. */
function setGain(gain, value) {
  const t = audio.ctx.currentTime;
  gain.gain.cancelScheduledValues(t);
  gain.gain.setTargetAtTime(value, t, 0.05);
}

// ---------- streams ----------

/**
 * Stream is one listener WebSocket feeding one player node. role is
 * "main" (the chosen channel) or "floor" (the original underneath).
 */
class Stream {
  constructor(role, lang) {
    this.role = role;
    this.lang = lang;
    this.player = makePlayer(isFloor(lang));
    this.player.node.port.onmessage = (ev) => {
      if (ev.data && ev.data.type === 'stats') {
        this.player.stats = ev.data;
        // For people debugging and for browser tests: what this stream plays.
        const d = ui.player.dataset;
        d[`${this.role}Bytes`] = String(this.bytes);
        d[`${this.role}BufferedMs`] = String(ev.data.bufferedMs);
        d[`${this.role}Playing`] = String(ev.data.playing);
        if (this.role === 'main') renderDelay();
      }
    };
    this.hello = false;
    this.bytes = 0; // audio received, for the data-*-bytes attributes
    this.socket = new ReconnectingSocket(() => this.url(), {
      onopen: () => { if (this.role === 'main') renderState(); },
      onmessage: (ev) => this.onMessage(ev),
      onclose: (info) => this.onClose(info),
      onretry: () => { this.hello = false; if (this.role === 'main') renderState(); },
    });
    this.socket.start();
  }

  /** The listener endpoint's path and query (the passcode may change). */
  path() {
    const q = new URLSearchParams({ lang: this.lang });
    if (st.passcode) q.set('passcode', st.passcode);
    return `/api/v1/rooms/${encodeURIComponent(roomId)}/listen?${q}`;
  }

  url() {
    return wsURL(this.path());
  }

  stop() {
    for (const k of ['Bytes', 'BufferedMs', 'Playing']) delete ui.player.dataset[`${this.role}${k}`];
    this.socket.stop(Close.NORMAL, 'bye');
    this.player.node.port.postMessage({ type: 'reset' });
    this.player.node.disconnect();
    this.player.gain.disconnect();
  }

  onMessage(ev) {
    if (ev.data instanceof ArrayBuffer) {
      let buf = ev.data;
      if (buf.byteLength & 1) buf = buf.slice(0, buf.byteLength - 1);
      this.bytes += buf.byteLength;
      this.player.node.port.postMessage(buf, [buf]);
      return;
    }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    switch (msg.type) {
      case Msg.HELLO:
        this.hello = true;
        if (msg.sample_rate && msg.sample_rate !== SAMPLE_RATE) {
          this.player.node.port.postMessage({ type: 'config', inputRate: msg.sample_rate });
        }
        if (this.role === 'main') renderState();
        break;
      case Msg.CAPTION:
        if (this.role === 'main' || st.fallback) addCaption(msg);
        break;
      case Msg.STATE:
        if (this.role === 'main') onChannelState(msg);
        else if (typeof msg.speaker === 'boolean' && isFloor(st.lang)) st.speaker = msg.speaker;
        break;
      case Msg.DELAY:
        if (this.role === 'main' && typeof msg.ms === 'number') {
          st.delayMs = msg.ms;
          st.delayAt = performance.now();
          renderDelay();
        }
        break;
      default:
        break; // newer servers may say more
    }
  }

  async onClose({ code, opened }) {
    this.hello = false;
    this.player.node.port.postMessage({ type: 'reset' });
    if (code === Close.ROOM_GONE) {
      roomEnded();
      return false;
    }
    if (code === Close.PASSCODE_CHANGED) {
      lockedOut('The organizers changed the passcode. Enter the new one to go on listening.', 'Passcode changed');
      return false;
    }
    if (code === Close.TOO_SLOW) {
      // Fell behind (slow network): start fresh at once.
      if (this.role === 'main') renderState();
      return 300;
    }
    if (!opened) {
      const err = await probeHandshake(this.path());
      if (err) return this.onRefused(err);
    }
    if (this.role === 'main') renderState();
    return true;
  }

  /** The server refused the handshake: decide whether to go on. */
  async onRefused(err) {
    if (err.status === 403) {
      lockedOut('That passcode was not accepted. Ask the organizers for the current one.');
      return false;
    }
    if (err.status === 404 || err.status === 400) {
      // The room or this language may be gone: look again.
      const ok = await loadInfo();
      if (!ok) return false;
      if (!offered(this.lang)) {
        if (this.role === 'main') {
          notice(ui.pageNotice, 'warn', 'That language is no longer offered',
            'Switched to the original. Pick another language above if you like.');
          queueMicrotask(() => chooseLanguage(st.info.source_language.code));
        }
        return false;
      }
    }
    return true;
  }
}

function isFloor(code) {
  return !!st.info && code === st.info.source_language.code;
}

function offered(code) {
  return !!st.info && (isFloor(code) || st.info.languages.some((l) => l.code === code));
}

function mixLevel() {
  return Number(ui.mix.value) / 100;
}

/** Opens or closes the floor stream and sets both gains for the current situation. */
function applyMix() {
  if (!st.playing || !audio.ctx) return;
  const chosenIsFloor = isFloor(st.lang);
  const wantFloor = !chosenIsFloor && (st.fallback || mixLevel() > 0);
  if (wantFloor && !st.floor) st.floor = new Stream('floor', st.info.source_language.code);
  if (!wantFloor && st.floor) {
    st.floor.stop();
    st.floor = null;
  }
  if (st.main) setGain(st.main.player.gain, st.fallback && !chosenIsFloor ? 0 : 1);
  if (st.floor) setGain(st.floor.player.gain, st.fallback ? 1 : mixLevel());
}

function onChannelState(msg) {
  if (typeof msg.speaker === 'boolean') st.speaker = msg.speaker;
  st.channelState = msg.state || '';
  st.channelMessage = msg.message || '';
  const wasFallback = st.fallback;
  st.fallback = !isFloor(st.lang) && st.channelState === ChannelState.ERROR;
  if (st.fallback !== wasFallback) {
    if (st.fallback) clearCaptions();
    applyMix();
  }
  renderFallback();
  renderState();
}

// ---------- play / pause ----------

async function startPlaying() {
  if (st.ended || !st.info) return;
  const resumed = ensureAudio(); // synchronously inside the gesture
  st.playing = true;
  renderPlay();
  renderState();
  try {
    await resumed;
    await audio.ready;
  } catch (err) {
    st.playing = false;
    renderPlay();
    notice(ui.pageNotice, 'error', 'Sound could not start', describeError(err));
    return;
  }
  if (!st.playing) return; // paused meanwhile
  if (!st.main) st.main = new Stream('main', st.lang);
  applyMix();
  mediaSession();
}

function stopPlaying() {
  st.playing = false;
  if (st.main) st.main.stop();
  if (st.floor) st.floor.stop();
  st.main = st.floor = null;
  st.delayMs = null;
  st.channelState = '';
  st.fallback = false;
  renderFallback();
  if (audio.ctx && audio.ctx.state === 'running') audio.ctx.suspend().catch(() => {});
  renderPlay();
  renderState();
  renderDelay();
  if ('mediaSession' in navigator) navigator.mediaSession.playbackState = 'paused';
}

ui.play.addEventListener('click', () => {
  if (st.playing && audio.ctx && audio.ctx.state !== 'running') {
    // The system suspended sound (a call, another app): this press resumes it.
    audio.ctx.resume().catch(() => {});
    return;
  }
  if (st.playing) stopPlaying();
  else startPlaying();
});

function roomEnded() {
  st.ended = true;
  stopPlaying();
  ui.player.hidden = true;
  renderState();
  notice(ui.pageNotice, 'error', 'This room has closed',
    el('span', {}, 'The organizers removed it. ', el('a', { href: '/' }, 'Join another room')));
}

// ---------- language ----------

function chooseLanguage(code) {
  if (!offered(code) || code === st.lang) return;
  st.lang = code;
  store.set('localStorage', keys.lang, code);
  store.set('localStorage', keys.anyLang, code);
  const input = document.getElementById(`lang-${code}`);
  if (input) input.checked = true;
  st.channelState = '';
  st.channelMessage = '';
  st.fallback = false;
  st.delayMs = null;
  clearCaptions();
  renderFallback();
  ui.mixRow.hidden = isFloor(code);
  if (st.playing && audio.ctx) {
    if (st.main) st.main.stop();
    st.main = new Stream('main', code);
    applyMix();
  }
  renderState();
  mediaSession();
}

/** The language to start with: remembered, else the browser's, else the original. */
function initialLanguage() {
  const remembered = [store.get('localStorage', keys.lang), store.get('localStorage', keys.anyLang)];
  for (const c of remembered) if (c && offered(c)) return c;
  const all = [st.info.source_language, ...st.info.languages].map((l) => l.code);
  for (const pref of navigator.languages || [navigator.language]) {
    const exact = all.find((c) => c.toLowerCase() === pref.toLowerCase());
    if (exact) return exact;
    const base = all.find((c) => c.split('-')[0] === pref.split('-')[0].toLowerCase());
    if (base) return base;
  }
  return st.info.source_language.code;
}

function renderLanguages() {
  const { info } = st;
  const option = (code, name, sub) => el('label', { class: 'lang-option', dataset: { testid: 'lang-option', lang: code } },
    el('input', {
      type: 'radio', name: 'lang', id: `lang-${code}`, value: code,
      checked: code === st.lang,
      onchange: () => chooseLanguage(code),
    }),
    el('span', { lang: code }, name, sub && sub !== name ? el('small', { lang: 'en' }, sub) : null));
  const src = info.source_language;
  ui.langList.replaceChildren(
    ...info.languages.map((l) => option(l.code, l.native || l.code, l.english)),
    option(src.code, `Original (${src.native || src.code})`, src.english && src.english !== src.native ? src.english : ''),
  );
  ui.mixRow.hidden = isFloor(st.lang);
}

// ---------- captions ----------

function addCaption(msg) {
  if (typeof msg.text !== 'string') return;
  const lines = st.captionLines;
  const seg = msg.segment ?? null;
  let line = null;
  for (let i = lines.length - 1; i >= Math.max(0, lines.length - 8); i--) {
    if (lines[i].lang === msg.lang && lines[i].seg === seg && seg !== null && !lines[i].final) {
      line = lines[i];
      break;
    }
  }
  if (!line) {
    if (!msg.text.trim()) return;
    line = { lang: msg.lang, seg, text: '', final: false };
    lines.push(line);
    if (lines.length > 20) lines.splice(0, lines.length - 20);
  }
  line.text = msg.text;
  line.final = !!msg.final;
  renderCaptions();
  if (line.final && line.text.trim()) announce(line.text, msg.lang);
}

function clearCaptions() {
  st.captionLines = [];
  renderCaptions();
}

function renderCaptions() {
  const shown = st.captionLines.slice(-CAPTION_LINES);
  ui.captions.replaceChildren(...shown.map((l, i) => el('p', {
    class: l.final ? (i < shown.length - 1 ? 'older' : '') : 'partial',
    lang: l.lang || null,
  }, l.text)));
}

function announce(text, lang) {
  ui.captionsLive.append(el('p', { lang: lang || null }, text));
  while (ui.captionsLive.childElementCount > CAPTION_ANNOUNCED) ui.captionsLive.firstElementChild.remove();
}

function renderCaptionPrefs() {
  const shown = store.get('localStorage', keys.captions) !== 'off';
  ui.captions.hidden = !shown;
  ui.captionsToggle.setAttribute('aria-expanded', String(shown));
  ui.captionsToggle.textContent = shown ? 'Hide' : 'Show';
  ui.captionsToggle.setAttribute('aria-label', shown ? 'Hide captions' : 'Show captions');
  ui.smaller.disabled = !shown || st.captionSizeIdx === 0;
  ui.larger.disabled = !shown || st.captionSizeIdx === CAPTION_SIZES.length - 1;
  ui.captions.style.setProperty('--caption-size', `${CAPTION_SIZES[st.captionSizeIdx]}rem`);
}

ui.captionsToggle.addEventListener('click', () => {
  const shown = store.get('localStorage', keys.captions) !== 'off';
  store.set('localStorage', keys.captions, shown ? 'off' : 'on');
  renderCaptionPrefs();
});
function resizeCaptions(delta) {
  st.captionSizeIdx = clampIdx(st.captionSizeIdx + delta);
  store.set('localStorage', keys.captionSize, String(st.captionSizeIdx));
  renderCaptionPrefs();
}
ui.smaller.addEventListener('click', () => resizeCaptions(-1));
ui.larger.addEventListener('click', () => resizeCaptions(1));

// ---------- sliders ----------

function renderSliders() {
  ui.volumeValue.textContent = `${ui.volume.value}%`;
  ui.mixValue.textContent = `${ui.mix.value}%`;
  ui.volume.setAttribute('aria-valuetext', `${ui.volume.value} percent`);
  ui.mix.setAttribute('aria-valuetext', `${ui.mix.value} percent`);
}

ui.volume.addEventListener('input', () => {
  store.set('localStorage', keys.volume, ui.volume.value);
  if (audio.master) setGain(audio.master, Number(ui.volume.value) / 100);
  renderSliders();
});
ui.mix.addEventListener('input', () => {
  store.set('localStorage', keys.mix, ui.mix.value);
  applyMix();
  renderSliders();
});

// ---------- state, delay, play button ----------

function langLabel(code) {
  if (!st.info) return code;
  if (isFloor(code)) return `Original (${st.info.source_language.native || code})`;
  const l = st.info.languages.find((x) => x.code === code);
  return l ? l.native || code : code;
}

function setPill(state, text) {
  if (ui.pill.dataset.state === state && ui.pill.textContent === text) return;
  ui.pill.dataset.state = state;
  ui.pill.textContent = text;
}

function renderState() {
  if (st.ended) return setPill('ended', 'Room closed');
  if (!st.info) return;
  if (!ui.passForm.hidden) return setPill('idle', 'Passcode needed');
  if (!st.playing) return setPill('idle', 'Press play');
  const m = st.main;
  if (!m || !m.socket.isOpen || !m.hello) {
    return setPill(m && m.socket.attempt > 0 ? 'reconnecting' : 'connecting',
      m && m.socket.attempt > 0 ? 'Reconnecting…' : 'Connecting…');
  }
  if (st.fallback) return setPill('error', 'Translator error · original');
  if (st.speaker === false) return setPill('silent', 'Speaker silent');
  if (!isFloor(st.lang) && (st.channelState === ChannelState.STARTING || st.channelState === ChannelState.IDLE)) {
    return setPill('starting', 'Starting translation…');
  }
  return setPill('live', 'Live');
}

function renderDelay() {
  const m = st.main;
  const fresh = st.delayMs !== null && performance.now() - st.delayAt < 5000;
  if (!st.playing || !m || !fresh) {
    ui.delay.hidden = true;
    return;
  }
  const buffered = m.player.stats ? m.player.stats.bufferedMs : 0;
  const out = audio.ctx ? (audio.ctx.outputLatency || audio.ctx.baseLatency || 0) * 1000 : 0;
  const total = Math.max(0, st.delayMs + buffered + out);
  ui.delay.textContent = `Delay ${(total / 1000).toFixed(1)} s`;
  ui.delay.title = `Interpretation ${(st.delayMs / 1000).toFixed(1)} s + buffer ${Math.round(buffered)} ms + output ${Math.round(out)} ms`;
  ui.delay.hidden = false;
}
setInterval(renderDelay, 1000);

function renderFallback() {
  for (const opt of ui.langList.querySelectorAll('.lang-option')) {
    if (st.fallback && opt.dataset.lang === st.lang) opt.dataset.state = ChannelState.ERROR;
    else delete opt.dataset.state;
  }
  if (!st.fallback) {
    notice(ui.fallback, '', '');
    return;
  }
  const why = st.channelMessage ? ` (${st.channelMessage})` : '';
  notice(ui.fallback, 'warn', `The ${langLabel(st.lang)} translation is not working right now${why}.`,
    `You are hearing the original (${st.info.source_language.native}) until it is back. This switches back by itself.`);
}

function renderPlay() {
  const suspended = st.playing && audio.ctx && audio.ctx.state !== 'running' && audio.ctx.state !== 'closed';
  ui.play.dataset.playing = String(st.playing);
  ui.play.disabled = st.ended || !st.info;
  ui.playLabel.textContent = suspended ? 'Tap to resume sound' : st.playing ? 'Pause' : 'Play';
  ui.playIcon.textContent = st.playing && !suspended ? '❚❚' : '▶';
}

// ---------- Media Session ----------

function mediaSession() {
  if (!('mediaSession' in navigator) || !st.info) return;
  try {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: st.info.name,
      artist: langLabel(st.lang),
      album: 'babelcast',
      artwork: [{ src: '/static/icon.svg', sizes: '64x64', type: 'image/svg+xml' }],
    });
    navigator.mediaSession.playbackState = st.playing ? 'playing' : 'paused';
    navigator.mediaSession.setActionHandler('play', () => { if (!st.playing) startPlaying(); });
    navigator.mediaSession.setActionHandler('pause', () => { if (st.playing) stopPlaying(); });
    navigator.mediaSession.setActionHandler('stop', () => { if (st.playing) stopPlaying(); });
  } catch {
    // Some actions are not supported everywhere.
  }
}

// ---------- passcode ----------

/** The server no longer takes our passcode: stop and ask for the current one. */
function lockedOut(why, title) {
  if (ui.player.hidden && !ui.passForm.hidden) return; // asked already (both streams end)
  stopPlaying();
  st.passcode = '';
  store.set('sessionStorage', keys.passcode, '');
  ui.passInput.value = '';
  askPasscode(why, title);
  renderState();
}

function askPasscode(error, title = 'Wrong passcode') {
  ui.player.hidden = true;
  ui.passForm.hidden = false;
  notice(ui.passError, error ? 'error' : '', error ? title : '', error || '');
  if (error) ui.passInput.setAttribute('aria-invalid', 'true');
  ui.passInput.focus();
}

ui.passForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const code = ui.passInput.value.trim();
  if (!code) return askPasscode('Enter the passcode the organizers gave you.');
  ui.passSubmit.disabled = true;
  // Ask the listener endpoint whether the passcode is right before going on.
  const q = new URLSearchParams({ lang: st.info.source_language.code, passcode: code });
  const err = await probeHandshake(`/api/v1/rooms/${encodeURIComponent(roomId)}/listen?${q}`);
  ui.passSubmit.disabled = false;
  if (err && err.status === 403) return askPasscode('That passcode was not accepted.');
  st.passcode = code;
  store.set('sessionStorage', keys.passcode, code);
  ui.passInput.removeAttribute('aria-invalid');
  ui.passForm.hidden = true;
  showPlayer();
});

// ---------- start ----------

/** Loads public info; false when the page cannot go on. */
async function loadInfo() {
  try {
    st.info = await api(`/api/v1/rooms/${encodeURIComponent(roomId)}/public`);
    st.info.languages = st.info.languages || [];
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      st.ended = true;
      stopPlaying();
      ui.player.hidden = true;
      ui.roomName.textContent = 'Room not found';
      document.title = 'Room not found · babelcast';
      setPill('ended', 'No such room');
      notice(ui.pageNotice, 'error', `There is no room “${roomId}”.`,
        el('span', {}, 'Check the link or the code. ', el('a', { href: '/' }, 'Enter a room code')));
      return false;
    }
    throw err;
  }
}

function showPlayer() {
  ui.player.hidden = false;
  renderLanguages();
  renderPlay();
  renderState();
  mediaSession();
}

async function init() {
  renderSliders();
  renderCaptionPrefs();
  if (!roomId) {
    ui.roomName.textContent = 'Room not found';
    notice(ui.pageNotice, 'error', 'This link names no room.', el('a', { href: '/' }, 'Enter a room code'));
    return;
  }
  const vol = store.get('localStorage', keys.volume);
  if (vol !== null) ui.volume.value = vol;
  const mix = store.get('localStorage', keys.mix);
  ui.mix.value = mix !== null ? mix : String(DEFAULT_MIX);
  renderSliders();

  for (let attempt = 0; ; attempt++) {
    try {
      if (!(await loadInfo())) return;
      break;
    } catch (err) {
      setPill('reconnecting', 'Cannot reach the server');
      notice(ui.pageNotice, 'error', 'Cannot load the room', `${describeError(err)} Trying again…`);
      await new Promise((r) => setTimeout(r, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
  notice(ui.pageNotice, '', '');
  ui.roomName.textContent = st.info.name || roomId;
  document.title = `${st.info.name || roomId} · babelcast`;
  st.lang = initialLanguage();
  if (st.info.passcode_required && !st.passcode) {
    setPill('idle', 'Passcode needed');
    askPasscode('');
    return;
  }
  showPlayer();
}

init();
