// listen.js: the attendee page, /rooms/{id}.
//
// One listener WebSocket carries the chosen language (audio + captions +
// state + delay). Every language of the room is a channel: it plays the
// original voice while the floor speaks that language, else the
// interpretation. A second connection carries the floor itself (every mic,
// untranslated: lang=floor), mixed underneath at the "original underneath"
// level, so the speakers' own voices stay audible under an
// interpretation. When the chosen channel's translator is in error, the
// page plays the floor at full level by itself, and goes back when it
// recovers.
//
// Where the room takes questions, the attendee may ask one (ask.js): once
// the moderator accepts it, this phone becomes a mic of the room, and the
// page hears the channel without the original meanwhile (no echo of the
// attendee's own voice).
//
// Audio plays through player.js; the AudioContext is created and resumed
// on the Play press.

import { ApiError, describeError, loadRoom, localMessage, probeHandshake, roomIdFromPath, roomPublic } from './api.js';
import { QuestionFlow } from './ask.js';
import { CaptionView } from './captions.js';
import { EarlierView } from './earlier.js';
import { browserLanguages, languageOption, localize, nameLanguages, onLanguage, setLanguage } from './i18n.js';
import { AudioOut, ChannelStream, checkPasscode } from './player.js';
import { ChannelState, Close, Codec, FLOOR, Msg } from './protocol.js';
import { $, el, fmt, notice, setPill, store } from './ui.js';

const text = localize('listen', {
  loading: 'Loading…',
  loadingRoom: 'Loading room…',
  roomNotFound: 'Room not found',
  roomNotFoundTitle: 'Room not found · babelcast',
  noSuchRoom: 'There is no room “{room}”.',
  noSuchRoomPill: 'No such room',
  checkLink: 'Check the link or the code.',
  enterCode: 'Enter a room code',
  linkNamesNoRoom: 'This link names no room.',
  cannotLoad: 'Cannot load the room',
  retrying: '{why} Trying again…',
  cannotReach: 'Cannot reach the server',
  roomClosed: 'This room has closed',
  roomClosedText: 'The organizers removed it. ',
  joinAnother: 'Join another room',
  pillClosed: 'Room closed',
  pillPasscode: 'Passcode needed',
  pillPress: 'Press play',
  pillConnecting: 'Connecting…',
  pillReconnecting: 'Reconnecting…',
  pillFallback: 'Translator error · original',
  pillSilent: 'Speaker silent',
  pillStarting: 'Starting translation…',
  pillLive: 'Live',
  play: 'Play',
  pause: 'Pause',
  resume: 'Tap to resume sound',
  soundFailed: 'Sound could not start',
  langGone: 'That language is no longer offered',
  langGoneText: 'Switched to {lang}. Pick another language above if you like.',
  fallbackTitle: 'The {lang} translation is not working right now.',
  fallbackTitleWhy: 'The {lang} translation is not working right now ({why}).',
  fallbackText: 'You are hearing the original voices until it is back. This switches back by itself.',
  passcodeChanged: 'The organizers changed the passcode. Enter the new one to go on listening.',
  passcodeChangedTitle: 'Passcode changed',
  passcodeRefused: 'That passcode was not accepted. Ask the organizers for the current one.',
  passcodeWrong: 'Wrong passcode',
  passcodeWrongShort: 'That passcode was not accepted.',
  passcodeEnter: 'Enter the passcode the organizers gave you.',
  tooManyAttempts: 'Too many attempts',
  notLetIn: 'Not let in for now',
  delay: 'Delay {s} s',
  audioOpus: 'Audio: Opus, decoded by the browser (WebCodecs), {kb} kB so far',
  audioPCM: 'Audio: PCM 24 kHz, {kb} kB so far (this browser decodes no Opus, or ?codec=pcm asked for PCM)',
  delayDetail: 'Interpretation {s} s + buffer {buffer} ms + output {out} ms',
  percent: '{n} percent',
  hide: 'Hide',
  show: 'Show',
  hideCaptions: 'Hide captions',
  showCaptions: 'Show captions',
  voiceHuman: 'Interpreter',
  voiceAI: 'AI',
});

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
const DEFAULT_MIX = 15;

const ui = {
  pill: $('state-pill'),
  voice: $('voice'),
  delay: $('delay'),
  audioDebug: $('audio-debug'),
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
  // passcodeTaken: the server took st.passcode on this page (a stream's hello
  // or the form's check). A stream refused with it before its own hello then
  // means the passcode changed, not that it was mistyped: both streams end
  // when it changes, and one of them may be refused while it connects.
  passcodeTaken: false,
  playing: false,
  ended: false, // room deleted: nothing more to do
  main: null, // Stream of the chosen channel
  floor: null, // Stream of the original underneath (or as fallback)
  asking: false, // this phone is a mic of the room: hear no original
  channelState: '', // idle|starting|active|error of the chosen channel
  channelMessage: '',
  speaker: null, // true/false once known
  fallback: false, // playing the floor because the translator is in error
  delayMs: null,
  delayAt: 0,
  captionSizeIdx: clampIdx(Number(store.get('localStorage', keys.captionSize) ?? 2)),
};

const captions = new CaptionView(ui.captions, ui.captionsLive);
const earlier = new EarlierView({
  box: $('earlier'), list: $('earlier-lines'), more: $('earlier-more'), roomId, passcode: () => st.passcode,
});

function clampIdx(i) {
  return Number.isInteger(i) ? Math.min(CAPTION_SIZES.length - 1, Math.max(0, i)) : 2;
}

const out = new AudioOut({ volume: Number(ui.volume.value) / 100, onStateChange: () => renderPlay() });

// ---------- streams ----------

/**
 * Stream is one channel the page plays: role "main" (the chosen channel)
 * or "floor" (the original underneath).
 */
class Stream {
  constructor(role, lang, passthrough = true) {
    this.role = role;
    this.cs = new ChannelStream(out, {
      roomId,
      lang,
      passthrough,
      // ?codec=pcm on the page's address refuses Opus (for comparing, debugging).
      codec: new URLSearchParams(location.search).get('codec') || '',
      passcode: () => st.passcode,
      onOpen: () => { if (this.role === 'main') renderState(); },
      onText: (msg) => this.onText(msg),
      onClose: (info) => this.onClose(info),
      onRetry: () => { if (this.role === 'main') renderState(); },
      onStats: (s) => {
        // For people debugging and for browser tests: what this stream plays.
        const d = ui.player.dataset;
        d[`${this.role}Bytes`] = String(this.cs.bytes);
        d[`${this.role}BufferedMs`] = String(s.bufferedMs);
        d[`${this.role}Playing`] = String(s.playing);
        d[`${this.role}Codec`] = this.cs.codec;
        if (this.role === 'main') {
          renderDelay();
          renderAudioDebug(this.cs);
        }
      },
    });
  }

  get lang() { return this.cs.lang; }

  get passthrough() { return this.cs.passthrough; }

  get hello() { return this.cs.hello; }

  get socket() { return this.cs.socket; }

  stop() {
    for (const k of ['Bytes', 'BufferedMs', 'Playing', 'Codec']) delete ui.player.dataset[`${this.role}${k}`];
    this.cs.stop();
  }

  onText(msg) {
    switch (msg.type) {
      case Msg.HELLO:
        st.passcodeTaken = true;
        if (this.role === 'main') {
          ui.player.dataset.passthrough = String(msg.passthrough !== false);
          renderState();
        }
        break;
      case Msg.CAPTION:
        if (this.role === 'main' || st.fallback) captions.add(msg);
        break;
      case Msg.EARLIER:
        if (this.role === 'main') earlier.take(msg, this.lang);
        break;
      case Msg.STATE:
        if (this.role === 'main') onChannelState(msg);
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

  async onClose({ code, opened, greeted }) {
    if (code === Close.ROOM_GONE) return this.onGone();
    if (code === Close.PASSCODE_CHANGED) {
      // After a hello (this stream's or another's): the organizers changed
      // it while we listened; otherwise it was never taken.
      if (greeted || st.passcodeTaken) lockedOut(text.passcodeChanged, text.passcodeChangedTitle);
      else lockedOut(text.passcodeRefused);
      return false;
    }
    if (code === Close.TOO_SLOW) {
      // Fell behind (slow network): start fresh at once.
      if (this.role === 'main') renderState();
      return 300;
    }
    if (!opened) {
      const err = await probeHandshake(this.cs.path());
      if (this.cs.stopped) return false; // the page moved on meanwhile
      if (err) return this.onRefused(err);
    }
    if (this.role === 'main') renderState();
    return true;
  }

  /** The server refused the handshake: decide whether to go on. */
  async onRefused(err) {
    if (err.status === 403) {
      lockedOut(text.passcodeRefused);
      return false;
    }
    if (err.status === 429) {
      // Too many wrong passcodes from this network, or too many listeners
      // from it: try again in a while.
      if (this.role === 'main') notice(ui.pageNotice, 'warn', text.notLetIn, fmt(text.retrying, { why: err.message }));
      return 5000;
    }
    if (err.status === 404 || err.status === 400) {
      // The room or this language may be gone: look again.
      const ok = await loadInfo();
      if (!ok || this.cs.stopped) return false;
      if (!offered(this.lang)) {
        this.languageGone();
        return false;
      }
    }
    return true;
  }

  /**
   * Closed with 4404: the room was deleted, or this stream's language
   * removed (the chosen channel's: the floor is never removed). The room's
   * public description tells which.
   */
  async onGone() {
    try {
      st.info = await roomPublic(roomId);
    } catch (err) {
      if (this.cs.stopped) return false;
      if (err instanceof ApiError && err.status === 404) {
        roomEnded();
        return false;
      }
      return true; // cannot tell now: the next attempt's handshake will
    }
    if (this.cs.stopped) return false;
    if (offered(this.lang)) return true; // given back meanwhile
    this.languageGone();
    return false;
  }

  /** The chosen channel's language is no longer offered: the source language plays instead. */
  languageGone() {
    if (this.role !== 'main') return;
    const src = st.info.source_language;
    notice(ui.pageNotice, 'warn', text.langGone, fmt(text.langGoneText, { lang: src.native || src.code }));
    renderLanguages();
    queueMicrotask(() => chooseLanguage(src.code));
  }
}

function isFloor(code) {
  return code === FLOOR;
}

function isSource(code) {
  return !!st.info && code === st.info.source_language.code;
}

function offered(code) {
  return !!st.info && (isFloor(code) || isSource(code) || st.info.languages.some((l) => l.code === code));
}

function mixLevel() {
  return Number(ui.mix.value) / 100;
}

/** Whether the original underneath is offered on the chosen channel. */
function mixOffered(code) {
  // The source language's channel carries the original voice most of the
  // time: the floor under it would double the voice.
  return !isFloor(code) && !isSource(code);
}

/**
 * Opens or closes the streams the situation needs and sets their gains:
 * the chosen channel (without the original while this phone is a mic),
 * and the floor underneath or instead of it.
 */
function applyMix() {
  if (!st.playing || !out.ctx) return;
  const passthrough = !st.asking;
  if (st.main && st.main.passthrough !== passthrough) {
    st.main.stop();
    st.main = null;
  }
  if (!st.main) st.main = new Stream('main', st.lang, passthrough);
  const wantFloor = !st.asking && !isFloor(st.lang) && (st.fallback || (mixOffered(st.lang) && mixLevel() > 0));
  if (wantFloor && !st.floor) st.floor = new Stream('floor', FLOOR);
  if (!wantFloor && st.floor) {
    st.floor.stop();
    st.floor = null;
  }
  st.main.cs.setGain(st.fallback && !isFloor(st.lang) ? 0 : 1);
  if (st.floor) st.floor.cs.setGain(st.fallback ? 1 : mixLevel());
}

/** Whose interpretation plays: the booth's interpreter or the AI. */
function renderVoice() {
  const voice = ui.voice.dataset.voice;
  ui.voice.hidden = !voice;
  ui.voice.textContent = voice === 'human' ? text.voiceHuman : text.voiceAI;
}

function onChannelState(msg) {
  if (typeof msg.speaker === 'boolean') st.speaker = msg.speaker;
  st.channelState = msg.state || '';
  st.channelMessage = msg.message || '';
  ui.voice.dataset.voice = msg.voice || '';
  renderVoice();
  const wasFallback = st.fallback;
  st.fallback = !isFloor(st.lang) && st.channelState === ChannelState.ERROR;
  if (st.fallback !== wasFallback) {
    if (st.fallback) captions.clear();
    applyMix();
  }
  renderFallback();
  renderState();
}

// ---------- play / pause ----------

async function startPlaying() {
  if (st.ended || !st.info) return;
  const resumed = out.ensure(); // synchronously inside the gesture
  st.playing = true;
  renderPlay();
  renderState();
  try {
    await resumed;
    await out.ready;
  } catch (err) {
    st.playing = false;
    renderPlay();
    notice(ui.pageNotice, 'error', text.soundFailed, describeError(err));
    return;
  }
  if (!st.playing) return; // paused meanwhile
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
  out.suspend();
  renderPlay();
  renderState();
  renderDelay();
  if ('mediaSession' in navigator) navigator.mediaSession.playbackState = 'paused';
}

ui.play.addEventListener('click', () => {
  if (st.playing && out.suspended) {
    // The system suspended sound (a call, another app): this press resumes it.
    out.ctx.resume().catch(() => {});
    return;
  }
  if (st.playing) stopPlaying();
  else startPlaying();
});

/** The room is no more (or never was): nothing plays, nothing is asked. */
function endRoom() {
  st.ended = true;
  stopPlaying();
  questions?.roomGone();
  ui.player.hidden = true;
}

function roomEnded() {
  endRoom();
  renderState();
  notice(ui.pageNotice, 'error', text.roomClosed,
    el('span', {}, text.roomClosedText, el('a', { href: '/' }, text.joinAnother)));
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
  captions.clear();
  earlier.clear();
  renderFallback();
  followLanguage();
  ui.mixRow.hidden = !mixOffered(code);
  if (st.playing && out.ctx) {
    if (st.main) st.main.stop();
    st.main = null;
    applyMix();
  }
  questions?.render();
  renderState();
  mediaSession();
}

/** The language to start with: remembered, else the browser's, else the source language. */
function initialLanguage() {
  const remembered = [store.get('localStorage', keys.lang), store.get('localStorage', keys.anyLang)];
  for (const c of remembered) if (c && !isFloor(c) && offered(c)) return c;
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
  const option = (code, name) => languageOption(code, name, { name: 'lang', checked: code === st.lang, onchange: () => chooseLanguage(code) });
  const src = info.source_language;
  ui.langList.replaceChildren(
    ...info.languages.map((l) => option(l.code, l.native || l.code)),
    option(src.code, src.native || src.code),
  );
  nameLanguages(ui.langList);
  ui.mixRow.hidden = !mixOffered(st.lang);
}

/**
 * The page speaks the chosen channel's language where it has a catalog,
 * else the browser's (the original, "floor", has no language of its own).
 */
function followLanguage() {
  const remembered = store.get('localStorage', keys.anyLang);
  const chosen = st.lang || remembered;
  setLanguage([chosen && !isFloor(chosen) ? chosen : '', ...browserLanguages()]);
}

onLanguage(() => {
  if (!st.info) {
    // Still loading, or there is no such room (said before the catalog came).
    ui.roomName.textContent = st.ended ? text.roomNotFound : text.loadingRoom;
    if (st.ended) setPill(ui.pill, 'ended', text.noSuchRoomPill);
    else setPill(ui.pill, 'idle', text.loading);
  }
  nameLanguages(ui.langList);
  captions.render();
  earlier.render(false);
  renderCaptionPrefs();
  renderSliders();
  renderPlay();
  renderFallback();
  renderState();
  renderDelay();
  renderVoice();
  questions?.render();
});

// ---------- captions ----------

function renderCaptionPrefs() {
  const shown = store.get('localStorage', keys.captions) !== 'off';
  ui.captions.hidden = !shown;
  ui.captionsToggle.setAttribute('aria-expanded', String(shown));
  ui.captionsToggle.textContent = shown ? text.hide : text.show;
  ui.captionsToggle.setAttribute('aria-label', shown ? text.hideCaptions : text.showCaptions);
  ui.smaller.disabled = !shown || st.captionSizeIdx === 0;
  ui.larger.disabled = !shown || st.captionSizeIdx === CAPTION_SIZES.length - 1;
  // Hidden captions are not read out either.
  captions.setAnnouncing(shown);
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
  // A button that disabled itself at the limit hands the focus to the other one.
  const pressed = delta < 0 ? ui.smaller : ui.larger;
  if (pressed.disabled) (delta < 0 ? ui.larger : ui.smaller).focus();
}
ui.smaller.addEventListener('click', () => resizeCaptions(-1));
ui.larger.addEventListener('click', () => resizeCaptions(1));

// ---------- sliders ----------

function renderSliders() {
  ui.volumeValue.textContent = `${ui.volume.value}%`;
  ui.mixValue.textContent = `${ui.mix.value}%`;
  ui.volume.setAttribute('aria-valuetext', fmt(text.percent, { n: ui.volume.value }));
  ui.mix.setAttribute('aria-valuetext', fmt(text.percent, { n: ui.mix.value }));
}

ui.volume.addEventListener('input', () => {
  store.set('localStorage', keys.volume, ui.volume.value);
  out.setVolume(Number(ui.volume.value) / 100);
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
  if (isSource(code)) return st.info.source_language.native || code;
  const l = st.info.languages.find((x) => x.code === code);
  return l ? l.native || code : code;
}

function renderState() {
  if (st.ended) return setPill(ui.pill, 'ended', text.pillClosed);
  if (!st.info) return;
  if (!ui.passForm.hidden) return setPill(ui.pill, 'idle', text.pillPasscode);
  if (!st.playing) return setPill(ui.pill, 'idle', text.pillPress);
  const m = st.main;
  if (!m || !m.socket.isOpen || !m.hello) {
    return setPill(ui.pill, m && m.socket.attempt > 0 ? 'reconnecting' : 'connecting',
      m && m.socket.attempt > 0 ? text.pillReconnecting : text.pillConnecting);
  }
  if (st.fallback) return setPill(ui.pill, 'error', text.pillFallback);
  if (st.speaker === false) return setPill(ui.pill, 'silent', text.pillSilent);
  if (!isFloor(st.lang) && !isSource(st.lang) &&
      (st.channelState === ChannelState.STARTING || st.channelState === ChannelState.IDLE)) {
    return setPill(ui.pill, 'starting', text.pillStarting);
  }
  return setPill(ui.pill, 'live', text.pillLive);
}

/** The debug line: which codec the main stream plays, and what it took. */
function renderAudioDebug(cs) {
  if (!cs.codec) return;
  const kb = (cs.received / 1000).toFixed(0);
  ui.audioDebug.textContent = fmt(cs.codec === Codec.OPUS ? text.audioOpus : text.audioPCM, { kb });
  ui.audioDebug.dataset.codec = cs.codec;
  ui.audioDebug.hidden = false;
}

function renderDelay() {
  const m = st.main;
  const fresh = st.delayMs !== null && performance.now() - st.delayAt < 5000;
  if (!st.playing || !m || !fresh) {
    ui.delay.hidden = true;
    return;
  }
  const buffered = m.cs.stats ? m.cs.stats.bufferedMs : 0;
  const outMs = out.ctx ? (out.ctx.outputLatency || out.ctx.baseLatency || 0) * 1000 : 0;
  const total = Math.max(0, st.delayMs + buffered + outMs);
  ui.delay.textContent = fmt(text.delay, { s: (total / 1000).toFixed(1) });
  ui.delay.title = fmt(text.delayDetail, { s: (st.delayMs / 1000).toFixed(1), buffer: Math.round(buffered), out: Math.round(outMs) });
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
  const title = st.channelMessage
    ? fmt(text.fallbackTitleWhy, { lang: langLabel(st.lang), why: st.channelMessage })
    : fmt(text.fallbackTitle, { lang: langLabel(st.lang) });
  notice(ui.fallback, 'warn', title, text.fallbackText);
}

function renderPlay() {
  const suspended = st.playing && out.suspended;
  ui.play.dataset.playing = String(st.playing);
  ui.play.disabled = st.ended || !st.info;
  ui.playLabel.textContent = suspended ? text.resume : st.playing ? text.pause : text.play;
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
  st.passcodeTaken = false;
  store.set('sessionStorage', keys.passcode, '');
  ui.passInput.value = '';
  askPasscode(why, title);
  renderState();
}

function askPasscode(error, title = text.passcodeWrong) {
  ui.player.hidden = true;
  ui.passForm.hidden = false;
  notice(ui.passError, error ? 'error' : '', error ? title : '', error || '');
  if (error) ui.passInput.setAttribute('aria-invalid', 'true');
  ui.passInput.focus();
}

ui.passForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const code = ui.passInput.value.trim();
  if (!code) return askPasscode(text.passcodeEnter);
  ui.passSubmit.disabled = true;
  // Ask the listener endpoint whether the passcode is right before going on.
  const answer = await checkPasscode(roomId, st.info.source_language.code, code);
  ui.passSubmit.disabled = false;
  if (answer === 'wrong') return askPasscode(text.passcodeWrongShort);
  if (answer instanceof ApiError && answer.status === 429) return askPasscode(localMessage(answer), text.tooManyAttempts);
  // No answer (the server out of reach, or refusing for another reason):
  // go on, and let the stream tell; the passcode is not taken yet.
  st.passcode = code;
  st.passcodeTaken = answer === 'ok';
  store.set('sessionStorage', keys.passcode, code);
  ui.passInput.removeAttribute('aria-invalid');
  ui.passForm.hidden = true;
  showPlayer();
  ui.play.focus(); // the form that had the focus is gone
});

// ---------- questions ----------

/** The audience's questions, where the room takes them (made once the room is known). */
let questions = null;

function setupQuestions() {
  if (questions || !st.info.questions) return;
  questions = new QuestionFlow({
    roomId,
    language: () => (isFloor(st.lang) ? st.info.source_language.code : st.lang),
    languageName: () => langLabel(isFloor(st.lang) ? st.info.source_language.code : st.lang),
    passcode: () => st.passcode,
    onLive: (live) => {
      st.asking = live;
      applyMix();
    },
  });
}

// ---------- start ----------

/** Loads public info again; false when the page cannot go on. */
async function loadInfo() {
  try {
    st.info = await roomPublic(roomId);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      noSuchRoom();
      return false;
    }
    throw err;
  }
}

/** The room the link names does not exist: the page says so. */
function noSuchRoom() {
  endRoom();
  ui.roomName.textContent = text.roomNotFound;
  document.title = text.roomNotFoundTitle;
  setPill(ui.pill, 'ended', text.noSuchRoomPill);
  notice(ui.pageNotice, 'error', fmt(text.noSuchRoom, { room: roomId }),
    el('span', {}, `${text.checkLink} `, el('a', { href: '/' }, text.enterCode)));
}

function showPlayer() {
  ui.player.hidden = false;
  renderLanguages();
  renderPlay();
  renderState();
  mediaSession();
  setupQuestions();
}

async function init() {
  followLanguage();
  renderSliders();
  renderCaptionPrefs();
  if (!roomId) {
    ui.roomName.textContent = text.roomNotFound;
    notice(ui.pageNotice, 'error', text.linkNamesNoRoom, el('a', { href: '/' }, text.enterCode));
    return;
  }
  const vol = store.get('localStorage', keys.volume);
  if (vol !== null) {
    ui.volume.value = vol;
    out.setVolume(Number(vol) / 100);
  }
  const mix = store.get('localStorage', keys.mix);
  ui.mix.value = mix !== null ? mix : String(DEFAULT_MIX);
  renderSliders();

  const info = await loadRoom(roomId, (err) => {
    setPill(ui.pill, 'reconnecting', text.cannotReach);
    notice(ui.pageNotice, 'error', text.cannotLoad, fmt(text.retrying, { why: localMessage(err) }));
  });
  if (!info) return noSuchRoom();
  st.info = info;
  notice(ui.pageNotice, '', '');
  ui.roomName.replaceChildren(el('bdi', {}, st.info.name || roomId)); // in its own direction, isolated
  $('recorded-note').hidden = !st.info.record;
  document.title = `${st.info.name || roomId} · babelcast`;
  st.lang = initialLanguage();
  followLanguage();
  if (st.info.passcode_required && !st.passcode) {
    setPill(ui.pill, 'idle', text.pillPasscode);
    askPasscode('');
    return;
  }
  showPlayer();
}

init();
