// speak.js: the speaker page, /rooms/{id}/speak.
//
// The speaker key comes from the URL fragment (#key=…, never sent to the
// server with the page request) or is typed; it is kept in sessionStorage
// and the fragment is removed from the address bar at once. The microphone
// is captured by /static/capture-worklet.js at the AudioContext's own rate
// in 100 ms PCM16 frames; the start message tells the server that rate.

import { api, ApiError, describeError, probeHandshake, roomIdFromPath, wsURL } from './api.js';
import { ChannelState, Close, Msg } from './protocol.js';
import { ReconnectingSocket } from './ws.js';
import { $, el, englishName, nativeName, notice, store } from './ui.js';

const roomId = roomIdFromPath();
const keys = {
  key: `babelcast.speakerKey.${roomId}`,
  mic: 'babelcast.micDeviceId',
};
const MAX_QUEUED_SECONDS = 2; // audio the browser may hold unsent before frames are dropped

const ui = {
  pill: $('state-pill'),
  roomName: $('room-name'),
  sourceLine: $('source-line'),
  pageNotice: $('page-notice'),
  keyForm: $('key-form'),
  keyInput: $('speaker-key'),
  keyError: $('key-error'),
  keySubmit: $('key-submit'),
  console: $('console'),
  mic: $('mic-select'),
  micAllow: $('mic-allow'),
  start: $('start'),
  mute: $('mute'),
  stop: $('stop'),
  localMeter: $('level-local'),
  localFill: $('level-local-fill'),
  serverMeter: $('level-server'),
  serverFill: $('level-server-fill'),
  serverValue: $('level-server-value'),
  levelHint: $('level-hint'),
  langBody: $('languages-body'),
  forget: $('forget-key'),
};

const st = {
  info: null,
  key: '',
  phase: 'idle', // idle | starting | live | stopped
  ready: false, // server said ready on this connection
  muted: false,
  ended: false,
  lastError: null, // {code, message} from the server before a close
  droppedFrames: 0,
  quietSince: 0,
};

const cap = {
  ctx: null,
  stream: null,
  source: null,
  node: null,
  socket: null,
  wakeLock: null,
};

// ---------- key ----------

function takeKeyFromFragment() {
  const frag = new URLSearchParams(location.hash.slice(1));
  const k = frag.get('key');
  if (k) {
    store.set('sessionStorage', keys.key, k);
    // Off the address bar (and out of history), so it is not shown or shared by accident.
    history.replaceState(null, '', location.pathname + location.search);
  }
  return k || store.get('sessionStorage', keys.key) || '';
}

function askKey(error) {
  ui.console.hidden = true;
  ui.keyForm.hidden = false;
  notice(ui.keyError, 'error', error ? 'Key not accepted' : '', error || '');
  if (error) ui.keyInput.setAttribute('aria-invalid', 'true');
  ui.keyInput.focus();
}

/** Asks the speak endpoint about a key: an ApiError if refused, null if it looks fine. */
function checkKey(key) {
  return probeHandshake(`/api/v1/rooms/${encodeURIComponent(roomId)}/speak`, { token: key });
}

ui.keyForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return askKey('Enter the speaker key for this room.');
  ui.keySubmit.disabled = true;
  const err = await checkKey(key);
  ui.keySubmit.disabled = false;
  if (err && (err.status === 401 || err.status === 403)) {
    return askKey('That key is not this room’s speaker key. Ask the organizers for a fresh speaker link.');
  }
  if (err && err.status === 404) return roomGone(false);
  st.key = key;
  store.set('sessionStorage', keys.key, key);
  ui.keyInput.value = '';
  ui.keyInput.removeAttribute('aria-invalid');
  ui.keyForm.hidden = true;
  showConsole();
});

ui.forget.addEventListener('click', () => {
  stopAll();
  st.key = '';
  store.set('sessionStorage', keys.key, '');
  askKey('');
});

// ---------- microphones ----------

function mediaSupported() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
}

async function listMics() {
  if (!mediaSupported()) return;
  let devices = [];
  try {
    devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput');
  } catch {
    return;
  }
  const labelled = devices.some((d) => d.label);
  ui.micAllow.hidden = labelled;
  const chosen = store.get('localStorage', keys.mic) || '';
  ui.mic.replaceChildren(
    el('option', { value: '' }, labelled ? 'System default microphone' : 'Default microphone (allow access to choose)'),
    ...devices.filter((d) => d.deviceId && d.deviceId !== 'default').map((d, i) =>
      el('option', { value: d.deviceId, selected: d.deviceId === chosen }, d.label || `Microphone ${i + 1}`)),
  );
}

function constraints() {
  const id = ui.mic.value;
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

async function getMic() {
  try {
    return await navigator.mediaDevices.getUserMedia(constraints());
  } catch (err) {
    if (err.name === 'OverconstrainedError' || err.name === 'NotFoundError') {
      // The remembered device is gone: fall back to the default one.
      store.set('localStorage', keys.mic, '');
      ui.mic.value = '';
      return navigator.mediaDevices.getUserMedia(constraints());
    }
    throw err;
  }
}

function micError(err) {
  if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
    return 'The browser was not allowed to use the microphone. Allow it in the site settings (the icon by the address), then press Start again.';
  }
  if (err.name === 'NotFoundError') return 'No microphone was found. Plug one in and press Start again.';
  if (err.name === 'NotReadableError') return 'The microphone is busy or failed. Close other apps using it and try again.';
  return describeError(err);
}

ui.micAllow.addEventListener('click', async () => {
  try {
    const s = await navigator.mediaDevices.getUserMedia(constraints());
    s.getTracks().forEach((t) => t.stop());
    await listMics();
  } catch (err) {
    notice(ui.pageNotice, 'error', 'No microphone', micError(err));
  }
});

ui.mic.addEventListener('change', () => {
  store.set('localStorage', keys.mic, ui.mic.value);
  if (cap.ctx && st.phase === 'live') switchMic();
});

if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', listMics);
}

/** Connects a new microphone stream to the running capture node. */
async function attachMic(stream) {
  const old = { stream: cap.stream, source: cap.source };
  cap.stream = stream;
  cap.source = cap.ctx.createMediaStreamSource(stream);
  cap.source.connect(cap.node);
  for (const t of stream.getAudioTracks()) {
    t.addEventListener('ended', () => {
      if (cap.stream === stream && st.phase === 'live') {
        notice(ui.pageNotice, 'error', 'The microphone stopped',
          'It was unplugged or taken by another app. Pick a microphone above to go on.');
      }
    });
  }
  if (old.source) old.source.disconnect();
  if (old.stream) old.stream.getTracks().forEach((t) => t.stop());
}

async function switchMic() {
  try {
    await attachMic(await getMic());
    notice(ui.pageNotice, '', '');
  } catch (err) {
    notice(ui.pageNotice, 'error', 'Could not switch the microphone', micError(err));
  }
}

// ---------- start / mute / stop ----------

async function start() {
  if (st.ended || st.phase === 'starting' || st.phase === 'live') return;
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', 'This browser cannot send a microphone',
      window.isSecureContext ? 'Use a current Chrome, Firefox, Edge or Safari.'
        : 'The page must be opened over HTTPS (or on localhost) for the browser to allow the microphone.');
    return;
  }
  notice(ui.pageNotice, '', '');
  st.phase = 'starting';
  st.lastError = null;
  render();
  // The context is made inside the press, so browsers let it run.
  const AC = window.AudioContext || window.webkitAudioContext;
  const ctx = new AC({ latencyHint: 'interactive' });
  cap.ctx = ctx;
  const resumed = ctx.resume();
  let stream = null;
  try {
    stream = await getMic();
    await resumed;
    await ctx.audioWorklet.addModule('/static/capture-worklet.js');
    if (st.phase !== 'starting' || cap.ctx !== ctx) { // stopped meanwhile
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    cap.node = new AudioWorkletNode(ctx, 'pcm-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { frameMs: 100 },
    });
    cap.node.port.onmessage = (ev) => onFrame(ev.data);
    // The node must reach the destination to be pulled; it outputs silence.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    cap.node.connect(sink).connect(ctx.destination);
    await attachMic(stream);
    await listMics(); // labels are known now
  } catch (err) {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (cap.ctx !== ctx) return; // stopped meanwhile
    stopAll();
    notice(ui.pageNotice, 'error', 'Could not start the microphone', micError(err));
    return;
  }
  cap.node.port.postMessage({ type: 'mute', muted: st.muted });
  cap.socket = new ReconnectingSocket(
    () => wsURL(`/api/v1/rooms/${encodeURIComponent(roomId)}/speak?key=${encodeURIComponent(st.key)}`),
    {
      onopen: (ws) => {
        st.ready = false;
        ws.send(JSON.stringify({ type: Msg.START, sample_rate: cap.ctx.sampleRate }));
        render();
      },
      onmessage: onServerMessage,
      onclose: onClose,
      onretry: () => { st.ready = false; render(); },
    },
  );
  cap.socket.start();
  st.phase = 'live';
  keepAwake();
  render();
}

function stopAll() {
  if (cap.socket) cap.socket.stop(Close.NORMAL, 'speaker stopped');
  if (cap.stream) cap.stream.getTracks().forEach((t) => t.stop());
  if (cap.ctx) cap.ctx.close().catch(() => {});
  cap.socket = cap.stream = cap.source = cap.node = cap.ctx = null;
  if (cap.wakeLock) cap.wakeLock.release().catch(() => {});
  cap.wakeLock = null;
  st.phase = st.phase === 'idle' ? 'idle' : 'stopped';
  st.ready = false;
  setMeter(ui.localMeter, ui.localFill, -100);
  setMeter(ui.serverMeter, ui.serverFill, -100);
  ui.serverValue.textContent = '—';
  ui.levelHint.textContent = '';
  render();
}

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', () => {
  stopAll();
  notice(ui.pageNotice, 'info', 'Stopped', 'Nothing is being sent. Press Start to go on air again.');
});
ui.mute.addEventListener('click', () => {
  st.muted = !st.muted;
  if (cap.node) cap.node.port.postMessage({ type: 'mute', muted: st.muted });
  render();
});

window.addEventListener('beforeunload', (ev) => {
  if (st.phase === 'live') {
    ev.preventDefault();
    ev.returnValue = '';
  }
});

/** Keeps the screen (and so the microphone) on while live. */
async function keepAwake() {
  if (!('wakeLock' in navigator) || st.phase !== 'live' || cap.wakeLock) return;
  try {
    cap.wakeLock = await navigator.wakeLock.request('screen');
    cap.wakeLock.addEventListener('release', () => { cap.wakeLock = null; });
  } catch {
    // Not allowed now (battery saver, hidden page): fine.
  }
}
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') keepAwake();
});

// ---------- audio frames and server messages ----------

let lastDropWarning = 0;

function onFrame(msg) {
  if (!msg || msg.type !== 'frame') return;
  setMeter(ui.localMeter, ui.localFill, st.muted ? -100 : msg.rmsDb);
  const s = cap.socket;
  if (!s || !s.isOpen) return; // live audio: what is captured while offline is not kept
  const limit = MAX_QUEUED_SECONDS * (cap.ctx ? cap.ctx.sampleRate : 48000) * 2;
  if (s.bufferedAmount > limit) {
    st.droppedFrames++;
    const now = performance.now();
    if (now - lastDropWarning > 10000) {
      lastDropWarning = now;
      notice(ui.pageNotice, 'warn', 'The network is too slow',
        'Some audio could not be sent. Move closer to the Wi-Fi or use a cable.');
    }
    return;
  }
  s.send(msg.pcm);
}

function onServerMessage(ev) {
  if (typeof ev.data !== 'string') return;
  let msg;
  try { msg = JSON.parse(ev.data); } catch { return; }
  switch (msg.type) {
    case Msg.READY:
      st.ready = true;
      if (ui.pageNotice.classList.contains('info') || ui.pageNotice.classList.contains('warn')) notice(ui.pageNotice, '', '');
      render();
      break;
    case Msg.LEVEL:
      onLevel(msg);
      break;
    case Msg.STATUS:
      renderStatus(msg);
      break;
    case Msg.ERROR:
      st.lastError = { code: msg.code || '', message: msg.message || '' };
      notice(ui.pageNotice, 'error', 'The server reported a problem', msg.message || msg.code || '');
      break;
    default:
      break;
  }
}

function onLevel(msg) {
  const rms = typeof msg.rms_db === 'number' ? msg.rms_db : -100;
  const peak = typeof msg.peak_db === 'number' ? msg.peak_db : -100;
  setMeter(ui.serverMeter, ui.serverFill, rms);
  ui.serverValue.textContent = rms <= -99 ? 'silence' : `${rms.toFixed(0)} dB (peak ${peak.toFixed(0)} dB)`;
  const now = performance.now();
  if (rms > -50 || st.muted) st.quietSince = now;
  let hint = '';
  if (peak > -1) hint = 'Too loud: move the microphone away a little.';
  else if (st.quietSince && now - st.quietSince > 8000) hint = 'Almost nothing arrives: check the microphone.';
  ui.levelHint.textContent = hint;
}

function setMeter(meter, fill, db) {
  const v = Math.max(-60, Math.min(0, db));
  fill.style.width = `${((v + 60) / 60) * 100}%`;
  meter.setAttribute('aria-valuenow', String(Math.round(v)));
  meter.setAttribute('aria-valuetext', db <= -60 ? 'silent' : `${Math.round(db)} decibels`);
}

async function onClose({ code, opened }) {
  st.ready = false;
  render();
  switch (code) {
    case Close.REPLACED:
      stopAll();
      notice(ui.pageNotice, 'warn', 'Another device took over',
        'Someone started speaking in this room from another device or tab with the speaker key, so this one stopped. Press Start to take over again.');
      return false;
    case Close.ROOM_GONE:
      roomGone(true);
      return false;
    case Close.BAD_AUDIO:
    case Close.BAD_MESSAGE: {
      const why = st.lastError ? st.lastError.message : `close code ${code}`;
      stopAll();
      notice(ui.pageNotice, 'error', 'The server refused the audio', `${why}. Reload the page and try again.`);
      return false;
    }
    case Close.SHUTDOWN:
      notice(ui.pageNotice, 'info', 'The server is restarting', 'Reconnecting by itself…');
      return true;
    default:
      break;
  }
  if (!opened) {
    const err = await checkKey(st.key);
    if (err && (err.status === 401 || err.status === 403)) {
      stopAll();
      st.key = '';
      store.set('sessionStorage', keys.key, '');
      askKey('The speaker key was not accepted. It may have been changed by the organizers: ask them for the new speaker link.');
      return false;
    }
    if (err && err.status === 404) {
      roomGone(false);
      return false;
    }
  }
  return true;
}

function roomGone(deleted) {
  st.ended = true;
  stopAll();
  ui.console.hidden = true;
  ui.keyForm.hidden = true;
  notice(ui.pageNotice, 'error', deleted ? 'This room was deleted' : `There is no room “${roomId}”`,
    deleted ? 'The organizers removed it while you were speaking. Nothing is being sent.'
      : 'Check the speaker link with the organizers.');
  render();
}

// ---------- rendering ----------

/** A language's name in itself, with the English name under it when different. */
function langCell(code) {
  let native = nativeName(code);
  let english = englishName(code);
  if (st.info) {
    const src = st.info.source_language;
    if (code === src.code) return el('td', {}, `Original (${src.native || code})`);
    const l = st.info.languages.find((x) => x.code === code);
    if (l) ({ native, english } = { native: l.native || native, english: l.english || english });
  }
  return el('td', { lang: code }, native, native !== english ? el('div', { class: 'small muted', lang: 'en' }, english) : null);
}

const stateWords = {
  [ChannelState.IDLE]: 'Idle', [ChannelState.STARTING]: 'Starting', [ChannelState.ACTIVE]: 'Active', [ChannelState.ERROR]: 'Error',
};

function renderStatus(msg) {
  const rows = (msg.languages || []).map((l) => el('tr', { dataset: { lang: l.code } },
    langCell(l.code),
    el('td', {},
      el('span', { class: 'state', dataset: { state: l.state || ChannelState.IDLE } }, stateWords[l.state] || l.state || '—'),
      l.error ? el('div', { class: 'small muted' }, l.error) : null),
    el('td', { class: 'num' }, String(l.listeners ?? 0))));
  if (st.info) {
    rows.push(el('tr', { dataset: { lang: st.info.source_language.code } },
      langCell(st.info.source_language.code),
      el('td', { class: 'muted' }, 'your voice'),
      el('td', { class: 'num' }, String(msg.floor_listeners ?? 0))));
  }
  ui.langBody.replaceChildren(...rows);
}

function setPill(state, text) {
  ui.pill.dataset.state = state;
  if (ui.pill.textContent !== text) ui.pill.textContent = text;
}

function render() {
  const live = st.phase === 'live';
  ui.start.disabled = st.ended || live || st.phase === 'starting';
  ui.start.textContent = st.phase === 'stopped' ? 'Start again' : 'Start';
  ui.stop.disabled = !live && st.phase !== 'starting';
  ui.mute.disabled = !live;
  ui.mute.dataset.muted = String(st.muted);
  ui.mute.textContent = st.muted ? 'Unmute' : 'Mute';
  if (st.ended) return setPill('ended', 'Room closed');
  if (!st.info) return undefined;
  if (st.phase === 'idle' || st.phase === 'stopped') return setPill('idle', 'Not sending');
  if (st.phase === 'starting') return setPill('connecting', 'Starting…');
  const s = cap.socket;
  if (!s || !s.isOpen || !st.ready) {
    return s && s.attempt > 0 ? setPill('reconnecting', 'Reconnecting…') : setPill('connecting', 'Connecting…');
  }
  if (st.muted) return setPill('silent', 'Muted');
  return setPill('live', 'On air');
}

function showConsole() {
  ui.console.hidden = false;
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', 'This browser cannot send a microphone',
      window.isSecureContext ? 'Use a current Chrome, Firefox, Edge or Safari.'
        : 'Open this page over HTTPS (or on localhost): browsers allow the microphone only there.');
    ui.start.disabled = true;
  }
  listMics();
  render();
}

// ---------- start ----------

async function init() {
  st.key = takeKeyFromFragment();
  if (!roomId) {
    ui.roomName.textContent = 'Room not found';
    notice(ui.pageNotice, 'error', 'This link names no room.', 'Ask the organizers for the speaker link.');
    return;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      st.info = await api(`/api/v1/rooms/${encodeURIComponent(roomId)}/public`);
      st.info.languages = st.info.languages || [];
      break;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        ui.roomName.textContent = 'Room not found';
        return roomGone(false);
      }
      setPill('reconnecting', 'Cannot reach the server');
      notice(ui.pageNotice, 'error', 'Cannot load the room', `${describeError(err)} Trying again…`);
      await new Promise((r) => setTimeout(r, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
  notice(ui.pageNotice, '', '');
  ui.roomName.textContent = st.info.name || roomId;
  document.title = `Speak: ${st.info.name || roomId} · babelcast`;
  const src = st.info.source_language;
  const targets = st.info.languages.map((l) => l.native || l.code).join(', ');
  ui.sourceLine.textContent = `Speak in ${src.english || src.code}${src.native && src.native !== src.english ? ` (${src.native})` : ''}.` +
    (targets ? ` Interpreted into ${targets}.` : ' No target languages yet.');
  ui.sourceLine.hidden = false;
  if (!st.key) {
    render();
    askKey('');
    return;
  }
  // A stale link (the key was rotated) is told at once, not at Start.
  const err = await checkKey(st.key);
  if (err && (err.status === 401 || err.status === 403)) {
    st.key = '';
    store.set('sessionStorage', keys.key, '');
    render();
    askKey('This speaker link’s key is no longer valid. Ask the organizers for the current speaker link.');
    return;
  }
  if (err && err.status === 404) return roomGone(false);
  showConsole();
}

init();
