// speak.js: the speaker page, /rooms/{id}/speak.
//
// The speaker key comes from the URL fragment (#key=…, never sent to the
// server with the page request) or is typed; it is kept in sessionStorage
// and the fragment is removed from the address bar at once (SpeakerKey,
// mic.js).
//
// A room may have several mics live at once (a panel): each device says
// which mic it is ("main" unless told otherwise; a device that starts as a
// mic already on air takes it over), who speaks into it and in what
// language, which may change mid-talk. The microphone and its connection
// are mic.js's.
//
// Where the room takes questions from the audience, the page shows the
// queue (questions.js) with Accept and End, and while a question is live
// plays it interpreted into the speaker's language (the speaker's
// language's channel without the original: player.js).

import { openRoom, roomIdFromPath } from './api.js';
import { CaptionView } from './captions.js';
import { listMicrophones, LiveGuard, mediaSupported, Microphone, MicLink, micError, noMediaReason, noticeEndings, SpeakerKey, text as micText } from './mic.js';
import { AudioOut, ChannelStream } from './player.js';
import { ChannelState, Close, DEFAULT_MIC, Msg } from './protocol.js';
import { QuestionQueue } from './questions.js';
import { $, el, englishName, fmt, nativeName, notice, randomId, setMeter, setPill, store } from './ui.js';

const text = {
  loadingRoom: 'Loading room…',
  roomNotFound: 'Room not found',
  noRoomInLink: 'This link names no room.',
  askForLink: 'Ask the organizers for the speaker link.',
  cannotLoad: 'Cannot load the room',
  retrying: '{why} Trying again…',
  cannotReach: 'Cannot reach the server',
  speakIn: 'Speak in {langs}.',
  interpretedInto: 'Everything said is interpreted into the room’s other languages.',
  keyNotAccepted: 'Key not accepted',
  enterKey: 'Enter the speaker key for this room.',
  wrongKey: 'That key is not this room’s speaker key. Ask the organizers for a fresh speaker link.',
  keyRejectedLive: 'The speaker key was not accepted. It may have been changed by the organizers: ask them for the new speaker link.',
  keyStale: 'This speaker link’s key is no longer valid. Ask the organizers for the current speaker link.',
  noMicTitle: 'No microphone',
  defaultMic: 'System default microphone',
  defaultMicUnlabelled: 'Default microphone (allow access to choose)',
  micN: 'Microphone {n}',
  micStopped: 'The microphone stopped',
  micStoppedText: 'It was unplugged or taken by another app. Pick a microphone above to go on.',
  switchFailed: 'Could not switch the microphone',
  startFailed: 'Could not start the microphone',
  stopped: 'Stopped',
  stoppedText: 'Nothing is being sent. Press Start to go on air again.',
  slowNet: 'The network is too slow',
  slowNetText: 'Some audio could not be sent. Move closer to the Wi-Fi or use a cable.',
  serverProblem: 'The server reported a problem',
  replaced: 'Another device took over',
  replacedText: 'Someone started speaking as mic “{mic}” in this room from another device or tab, so this one stopped. Press Start to take over again, or pick another mic name to speak beside it.',
  refused: 'The server refused this microphone',
  restarting: 'The server is restarting',
  restartingText: 'Reconnecting by itself…',
  deleted: 'This room was deleted',
  deletedText: 'The organizers removed it while you were speaking. Nothing is being sent.',
  noSuchRoom: 'There is no room “{room}”',
  checkLink: 'Check the speaker link with the organizers.',
  badMicId: 'Use 1 to 32 lowercase letters, digits and dashes for the mic name, not starting with “q-”.',
  levelSilence: 'silence',
  levelDb: '{rms} dB (peak {peak} dB)',
  tooLoud: 'Too loud: move the microphone away a little.',
  tooQuiet: 'Almost nothing arrives: check the microphone.',
  meterSilent: 'silent',
  meterDb: '{db} decibels',
  original: 'Original ({lang})',
  yourVoice: 'original',
  start: 'Start',
  startAgain: 'Start again',
  mute: 'Mute',
  unmute: 'Unmute',
  pillClosed: 'Room closed',
  pillIdle: 'Not sending',
  pillStarting: 'Starting…',
  pillReconnecting: 'Reconnecting…',
  pillConnecting: 'Connecting…',
  pillMuted: 'Muted',
  pillLive: 'On air',
  stateIdle: 'Idle',
  stateStarting: 'Starting',
  stateActive: 'Active',
  stateError: 'Error',
  noName: 'no name',
  thisDevice: 'this device',
  question: 'audience question',
  noMics: 'No mic is on air.',
  micsWhenOnAir: 'Shown once you are on air.',
  hearing: 'A question is live: you hear it in {lang}. Use earphones, or this microphone sends it to the room again.',
  hearingOwn: 'A question is live, asked in {lang}: you hear it in the room.',
};

const roomId = roomIdFromPath();
const keys = {
  device: 'babelcast.micDeviceId',
  mic: `babelcast.micId.${roomId}`,
  name: 'babelcast.speakerName',
  lang: `babelcast.speakerLang.${roomId}`,
};
const MIC_ID = /^[a-z0-9-]{1,32}$/;

const ui = {
  pill: $('state-pill'),
  roomName: $('room-name'),
  sourceLine: $('source-line'),
  pageNotice: $('page-notice'),
  keyForm: $('key-form'),
  console: $('console'),
  name: $('speaker-name'),
  language: $('speaker-language'),
  micId: $('mic-id'),
  micAnother: $('mic-another'),
  micIdError: $('mic-id-error'),
  device: $('mic-select'),
  deviceAllow: $('mic-allow'),
  start: $('start'),
  mute: $('mute'),
  stop: $('stop'),
  localMeter: $('level-local'),
  localFill: $('level-local-fill'),
  serverMeter: $('level-server'),
  serverFill: $('level-server-fill'),
  serverValue: $('level-server-value'),
  levelHint: $('level-hint'),
  micsList: $('mics-list'),
  langBody: $('languages-body'),
  questions: $('questions'),
  questionsList: $('questions-list'),
  questionsEmpty: $('questions-empty'),
  questionsError: $('questions-error'),
  hear: $('question-hear'),
  hearLine: $('question-hear-line'),
  hearCaptions: $('question-captions'),
  hearCaptionsLive: $('question-captions-live'),
  hearSound: $('question-sound'),
  forget: $('forget-key'),
};

const st = {
  info: null,
  phase: 'idle', // idle | starting | live | stopped
  muted: false,
  ended: false,
  mic: '', // the mic id this device is (or was) on air as
  quietSince: 0,
  lastDropWarning: 0,
};

/** The capture and its connection, while on air. */
const cap = { mic: null, link: null };
const guard = new LiveGuard(() => st.phase === 'live');

const meterWords = { silent: text.meterSilent, level: text.meterDb };

// ---------- key ----------

const key = new SpeakerKey({
  roomId,
  form: ui.keyForm,
  text,
  hides: [ui.console],
  onAccepted: () => showConsole(),
  onRoomGone: roomGone,
});

ui.forget.addEventListener('click', () => {
  stopAll();
  queue.stop();
  key.forget();
});

// ---------- who and what this mic is ----------

function renderLanguageChoice() {
  const src = st.info.source_language;
  const all = [src, ...st.info.languages];
  const chosen = store.get('localStorage', keys.lang);
  ui.language.replaceChildren(...all.map((l) => el('option', { value: l.code, lang: l.code },
    l.english && l.english !== l.native ? `${l.native || l.code} · ${l.english}` : l.native || l.code)));
  ui.language.value = all.some((l) => l.code === chosen) ? chosen : src.code;
}

function language() {
  return ui.language.value || (st.info ? st.info.source_language.code : '');
}

ui.language.addEventListener('change', () => {
  store.set('localStorage', keys.lang, ui.language.value);
  if (cap.link) cap.link.setLanguage(ui.language.value); // mid-talk: from now on
  questionAudio.follow();
});

ui.name.addEventListener('change', () => store.set('localStorage', keys.name, ui.name.value.trim()));

function micIdValue() {
  return ui.micId.value.trim().toLowerCase();
}

function checkMicId() {
  const id = micIdValue();
  const ok = MIC_ID.test(id) && !id.startsWith('q-');
  notice(ui.micIdError, ok ? '' : 'error', '', ok ? '' : text.badMicId);
  if (ok) ui.micId.removeAttribute('aria-invalid');
  else ui.micId.setAttribute('aria-invalid', 'true');
  return ok;
}

ui.micId.addEventListener('change', () => {
  if (checkMicId()) store.set('localStorage', keys.mic, micIdValue());
});

ui.micAnother.addEventListener('click', () => {
  // A fresh name: no other device has it, so this one speaks beside them.
  ui.micId.value = `mic-${randomId(4)}`;
  checkMicId();
  store.set('localStorage', keys.mic, ui.micId.value);
  ui.micId.focus();
});

// ---------- microphone devices ----------

async function listDevices() {
  const devices = await listMicrophones();
  if (!devices.length && !mediaSupported()) return;
  const labelled = devices.some((d) => d.label);
  ui.deviceAllow.hidden = labelled;
  const chosen = store.get('localStorage', keys.device) || '';
  ui.device.replaceChildren(
    el('option', { value: '' }, labelled ? text.defaultMic : text.defaultMicUnlabelled),
    ...devices.filter((d) => d.deviceId && d.deviceId !== 'default').map((d, i) =>
      el('option', { value: d.deviceId, selected: d.deviceId === chosen }, d.label || fmt(text.micN, { n: i + 1 }))),
  );
}

ui.deviceAllow.addEventListener('click', async () => {
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    s.getTracks().forEach((t) => t.stop());
    await listDevices();
  } catch (err) {
    notice(ui.pageNotice, 'error', text.noMicTitle, micError(err));
  }
});

ui.device.addEventListener('change', async () => {
  store.set('localStorage', keys.device, ui.device.value);
  if (!cap.mic || st.phase !== 'live') return;
  try {
    await cap.mic.switchDevice();
    notice(ui.pageNotice, '', '');
  } catch (err) {
    notice(ui.pageNotice, 'error', text.switchFailed, micError(err));
  }
});

if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
  navigator.mediaDevices.addEventListener('devicechange', listDevices);
}

// ---------- start / mute / stop ----------

async function start() {
  if (st.ended || st.phase === 'starting' || st.phase === 'live') return;
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', micText.noMedia, noMediaReason());
    return;
  }
  if (!checkMicId()) {
    ui.micId.focus();
    return;
  }
  notice(ui.pageNotice, '', '');
  st.phase = 'starting';
  st.mic = micIdValue();
  render();
  const mic = new Microphone({
    deviceId: () => ui.device.value,
    onDeviceGone: () => { store.set('localStorage', keys.device, ''); ui.device.value = ''; },
    onFrame: onFrame,
    onTrackEnded: () => {
      if (st.phase === 'live') notice(ui.pageNotice, 'error', text.micStopped, text.micStoppedText);
    },
  });
  cap.mic = mic;
  mic.setMuted(st.muted);
  if (st.info.questions) questionAudio.unlock(); // in the press: a question's sound may start later
  try {
    await mic.start(); // makes its AudioContext before its first await
  } catch (err) {
    if (cap.mic !== mic) return; // stopped meanwhile
    stopAll();
    notice(ui.pageNotice, 'error', text.startFailed, micError(err));
    return;
  }
  if (cap.mic !== mic || !mic.running) return; // stopped meanwhile
  await listDevices(); // labels are known now
  if (cap.mic !== mic) return; // stopped meanwhile
  cap.link = new MicLink({
    roomId,
    key: () => key.value,
    sampleRate: () => mic.sampleRate,
    hello: () => ({ mic: st.mic, name: ui.name.value.trim(), language: language() }),
    onReady: () => {
      // For people debugging and for browser tests: what the mic sends.
      document.body.dataset.micCodec = cap.link ? cap.link.codec : '';
      if (ui.pageNotice.classList.contains('info') || ui.pageNotice.classList.contains('warn')) notice(ui.pageNotice, '', '');
      render();
    },
    onLevel,
    onStatus: renderStatus,
    onServerError: (e) => {
      // The close that follows says more where it can (refusal()).
      notice(ui.pageNotice, 'error', text.serverProblem, e.message || e.code);
    },
    onClose: () => render(),
    ...noticeEndings(ui.pageNotice, {
      stop: stopAll,
      text,
      vars: () => ({ mic: st.mic }),
      roomGone,
      keyRefused: () => key.forget(text.keyRejectedLive),
    }),
    onRetry: render,
    onDropped: () => {
      const now = performance.now();
      if (now - st.lastDropWarning > 10000) {
        st.lastDropWarning = now;
        notice(ui.pageNotice, 'warn', text.slowNet, text.slowNetText);
      }
    },
  });
  cap.link.start();
  st.phase = 'live';
  guard.keepAwake();
  render();
}

function stopAll() {
  if (cap.link) cap.link.stop('speaker stopped');
  if (cap.mic) cap.mic.stop();
  cap.link = cap.mic = null;
  guard.release();
  st.phase = st.phase === 'idle' ? 'idle' : 'stopped';
  setMeter(ui.localMeter, ui.localFill, -100, meterWords);
  setMeter(ui.serverMeter, ui.serverFill, -100, meterWords);
  ui.serverValue.textContent = '—';
  ui.levelHint.textContent = '';
  // The room's mics are known only while on air (from the status message).
  ui.micsList.replaceChildren(el('li', { class: 'muted' }, text.micsWhenOnAir));
  render();
}

ui.start.addEventListener('click', start);
ui.stop.addEventListener('click', () => {
  stopAll();
  notice(ui.pageNotice, 'info', text.stopped, text.stoppedText);
});
ui.mute.addEventListener('click', () => {
  st.muted = !st.muted;
  if (cap.mic) cap.mic.setMuted(st.muted);
  render();
});

// ---------- audio frames and server messages ----------

function onFrame(f) {
  setMeter(ui.localMeter, ui.localFill, st.muted ? -100 : f.rmsDb, meterWords);
  if (cap.link) cap.link.send(f.pcm);
}

function onLevel(msg) {
  const rms = typeof msg.rms_db === 'number' ? msg.rms_db : -100;
  const peak = typeof msg.peak_db === 'number' ? msg.peak_db : -100;
  setMeter(ui.serverMeter, ui.serverFill, rms, meterWords);
  ui.serverValue.textContent = rms <= -99 ? text.levelSilence : fmt(text.levelDb, { rms: rms.toFixed(0), peak: peak.toFixed(0) });
  const now = performance.now();
  if (rms > -50 || st.muted) st.quietSince = now;
  let hint = '';
  if (peak > -1) hint = text.tooLoud;
  else if (st.quietSince && now - st.quietSince > 8000) hint = text.tooQuiet;
  ui.levelHint.textContent = hint;
}

function roomGone(deleted) {
  st.ended = true;
  stopAll();
  queue.stop();
  questionAudio.stop();
  ui.console.hidden = true;
  ui.keyForm.hidden = true;
  notice(ui.pageNotice, 'error', deleted ? text.deleted : fmt(text.noSuchRoom, { room: roomId }),
    deleted ? text.deletedText : text.checkLink);
  render();
}

// ---------- rendering ----------

function langInfo(code) {
  if (!st.info) return null;
  if (code === st.info.source_language.code) return st.info.source_language;
  return st.info.languages.find((x) => x.code === code) || null;
}

function langName(code) {
  const l = langInfo(code);
  return (l && l.native) || nativeName(code);
}

/** A language's name in itself, with the English name under it when different. */
function langCell(code) {
  let native = nativeName(code);
  let english = englishName(code);
  const l = langInfo(code);
  if (l) ({ native, english } = { native: l.native || native, english: l.english || english });
  return el('td', { lang: code }, native, native !== english ? el('div', { class: 'small muted', lang: 'en' }, english) : null);
}

const stateWords = {
  [ChannelState.IDLE]: text.stateIdle, [ChannelState.STARTING]: text.stateStarting,
  [ChannelState.ACTIVE]: text.stateActive, [ChannelState.ERROR]: text.stateError,
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
      el('td', { class: 'muted' }, text.yourVoice),
      el('td', { class: 'num' }, String(msg.floor_listeners ?? 0))));
  }
  ui.langBody.replaceChildren(...rows);
  renderMics(msg.mics || []);
}

/** The room's live mics, from the status message. */
function renderMics(mics) {
  if (!mics.length) {
    ui.micsList.replaceChildren(el('li', { class: 'muted' }, text.noMics));
    return;
  }
  ui.micsList.replaceChildren(...mics.map((m) => el('li', { dataset: { testid: 'mic', mic: m.mic, language: m.language } },
    el('strong', {}, m.name || text.noName), ' ',
    el('code', {}, m.mic), ' · ',
    el('span', { lang: m.language }, langName(m.language)),
    m.mic === st.mic && st.phase === 'live' ? el('span', { class: 'tag' }, text.thisDevice) : null,
    m.mic.startsWith('q-') ? el('span', { class: 'tag' }, text.question) : null)));
}

function render() {
  const live = st.phase === 'live';
  const busy = live || st.phase === 'starting';
  const focused = document.activeElement;
  ui.start.disabled = st.ended || busy;
  ui.start.textContent = st.phase === 'stopped' ? text.startAgain : text.start;
  ui.stop.disabled = !busy;
  ui.mute.disabled = !live;
  ui.mute.dataset.muted = String(st.muted);
  ui.mute.textContent = st.muted ? text.unmute : text.mute;
  // Which mic this is and who speaks are said when the mic starts.
  ui.micId.disabled = busy;
  ui.micAnother.disabled = busy;
  ui.name.disabled = busy;
  // A control that disabled itself (Start once on air, Stop once off)
  // hands the keyboard focus on instead of dropping it to the page.
  if (focused && focused.disabled) {
    const next = [busy ? ui.stop : ui.start, ui.start, ui.stop].find((b) => !b.disabled);
    if (next) next.focus();
  }
  if (st.ended) return setPill(ui.pill, 'ended', text.pillClosed);
  if (!st.info) return undefined;
  if (st.phase === 'idle' || st.phase === 'stopped') return setPill(ui.pill, 'idle', text.pillIdle);
  if (st.phase === 'starting') return setPill(ui.pill, 'connecting', text.pillStarting);
  const l = cap.link;
  if (!l || !l.isOpen || !l.ready) {
    return l && l.attempt > 0 ? setPill(ui.pill, 'reconnecting', text.pillReconnecting) : setPill(ui.pill, 'connecting', text.pillConnecting);
  }
  if (st.muted) return setPill(ui.pill, 'silent', text.pillMuted);
  return setPill(ui.pill, 'live', text.pillLive);
}

// ---------- questions from the audience ----------

const queue = new QuestionQueue({
  roomId: () => roomId,
  token: () => key.value,
  list: ui.questionsList,
  empty: ui.questionsEmpty,
  error: ui.questionsError,
  langName,
  active: () => document.visibilityState === 'visible' || !!questionAudio.live,
  onAction: (q, action) => { if (action === 'accept') questionAudio.unlock(); },
  onChange: (qs) => questionAudio.update(qs.find((q) => q.state === 'accepted') || null),
});

/**
 * questionAudio plays a live question to the speaker in the speaker's
 * language: that language's channel without the original (the speaker's
 * own voice is not played back), with its captions.
 */
const questionAudio = {
  out: new AudioOut(),
  stream: null,
  live: null, // the accepted question, or null
  captions: new CaptionView(ui.hearCaptions, ui.hearCaptionsLive, { shown: 3 }),

  /** Makes the AudioContext inside a press, so the question's sound may start later. */
  unlock() {
    this.out.ensure().catch(() => {});
    this.out.ready?.catch(() => {});
  },

  update(q) {
    this.live = q;
    this.follow();
  },

  /** Plays (or stops) what the live question needs, in the language chosen now. */
  async follow() {
    const q = this.live;
    // A question in the speaker's own language has no interpretation for
    // them: they hear it in the room.
    const want = q && q.language !== language() ? language() : '';
    ui.hear.hidden = !q;
    ui.hear.dataset.lang = want;
    if (q) {
      ui.hearLine.textContent = want ? fmt(text.hearing, { lang: langName(want) }) : fmt(text.hearingOwn, { lang: langName(q.language) });
    }
    if (this.stream && this.stream.lang !== want) {
      this.stream.stop();
      this.stream = null;
      this.captions.clear();
      delete ui.hear.dataset.bytes;
    }
    if (!want || this.stream) return;
    if (!this.out.ctx || this.out.suspended) {
      // Sound needs a press on this page first.
      ui.hearSound.hidden = false;
      if (!this.out.ctx) return;
    }
    try {
      await this.out.ready;
    } catch {
      return;
    }
    if (this.stream || this.live !== q || language() !== want) return;
    this.stream = new ChannelStream(this.out, {
      roomId,
      lang: want,
      passthrough: false,
      key: () => key.value, // hears a room with a passcode without being told it
      onText: (msg) => { if (msg.type === Msg.CAPTION) this.captions.add(msg); },
      onStats: () => { ui.hear.dataset.bytes = String(this.stream ? this.stream.bytes : 0); },
      onClose: ({ code }) => code !== Close.ROOM_GONE,
    });
  },

  stop() {
    this.live = null;
    if (this.stream) this.stream.stop();
    this.stream = null;
    ui.hear.hidden = true;
  },
};

ui.hearSound.addEventListener('click', () => {
  questionAudio.out.ensure().then(() => {
    ui.hearSound.hidden = true;
    questionAudio.follow();
  }).catch(() => {});
});

// ---------- start ----------

function showConsole() {
  ui.console.hidden = false;
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', micText.noMedia, noMediaReason());
    ui.start.disabled = true;
  }
  listDevices();
  render();
  if (st.info.questions) {
    ui.questions.hidden = false;
    queue.start();
  }
}

async function init() {
  st.info = await openRoom(roomId, { text, roomName: ui.roomName, pageNotice: ui.pageNotice, pill: ui.pill, gone: () => roomGone(false) });
  if (!st.info) return;
  ui.roomName.textContent = st.info.name || roomId;
  document.title = `Speak: ${st.info.name || roomId} · babelcast`;
  const langs = [st.info.source_language, ...st.info.languages].map((l) => l.native || l.code);
  ui.sourceLine.textContent = `${fmt(text.speakIn, { langs: langs.join(', ') })} ${text.interpretedInto}`;
  ui.sourceLine.hidden = false;
  renderLanguageChoice();
  ui.name.value = store.get('localStorage', keys.name) || '';
  ui.micId.value = store.get('localStorage', keys.mic) || DEFAULT_MIC;
  // A stale link (the key was rotated) is told at once, not at Start.
  if (await key.verify(text.keyStale)) showConsole();
  else render();
}

init();
