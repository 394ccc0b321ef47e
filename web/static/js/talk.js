// talk.js: the conversation page, /rooms/{id}/talk#key=….
//
// Two (or more) people, each on their own phone, each in their own
// language: every phone is a mic of the room (mic id talk-<random>, the
// person's name and language) and listens to the channel of its own
// language without the original (passthrough=false), so it hears what the
// others say, interpreted, and never its own voice. The captions of that
// channel are both sides of the conversation: the original's lines
// (source:true) are what was said in this phone's language (its owner's
// words), the interpretation's lines what the others said, with their
// names.
//
// The key (the room's speaker key) comes in the link's fragment, as on the
// speaker page. The key, the microphone and its connection are mic.js's,
// the sound player.js's, the captions captions.js's.

import { ApiError, describeError, openRoom, roomIdFromPath, roomPublic } from './api.js';
import { CaptionView } from './captions.js';
import { browserLanguages, dirOf, languageOption, localize, nameLanguages, onLanguage, setLanguage } from './i18n.js';
import { LiveGuard, mediaSupported, Microphone, MicLink, micError, noMediaReason, noticeEndings, SpeakerKey, text as micText } from './mic.js';
import { AudioOut, ChannelStream } from './player.js';
import { Close, Msg } from './protocol.js';
import { $, el, fmt, notice, randomId, setMeter, setPill, store } from './ui.js';

const text = localize('talk', {
  roomNotFound: 'Room not found',
  loading: 'Loading…',
  loadingRoom: 'Loading room…',
  noRoomInLink: 'This link names no room.',
  askForLink: 'Ask the organizers for the conversation link.',
  noSuchRoom: 'There is no room “{room}”',
  cannotLoad: 'Cannot load the room',
  retrying: '{why} Trying again…',
  cannotReach: 'Cannot reach the server',
  keyNotAccepted: 'Key not accepted',
  enterKey: 'Enter the conversation key.',
  wrongKey: 'That key is not this room’s. Ask the organizers for a fresh conversation link.',
  keyStale: 'This conversation link is no longer valid. Ask the organizers for the current one.',
  pickLanguage: 'Pick the language you speak.',
  startFailed: 'Could not start the microphone',
  soundFailed: 'Sound could not start',
  refused: 'The server refused this phone’s microphone',
  replaced: 'The conversation went on in another tab',
  replacedText: 'This phone’s microphone was opened again elsewhere (another tab of this browser?), so this one stopped.',
  roomDeleted: 'This conversation was closed',
  roomDeletedText: 'The organizers removed the room.',
  restarting: 'The server is restarting',
  restartingText: 'Reconnecting by itself…',
  micStopped: 'The microphone stopped',
  micStoppedText: 'It was unplugged or taken by another app. Leave and start again.',
  slowNet: 'The network is too slow',
  slowNetText: 'Some of your words could not be sent. Move closer to the Wi-Fi.',
  you: 'You',
  someone: 'Someone',
  mute: 'Mute',
  unmute: 'Unmute',
  pillIdle: 'Not connected',
  pillConnecting: 'Connecting…',
  pillReconnecting: 'Reconnecting…',
  pillMuted: 'Muted',
  pillLive: 'Live',
  pillClosed: 'Closed',
  meterSilent: 'silent',
  meterDb: '{db} decibels',
  title: 'Conversation: {room} · babelcast',
});

const roomId = roomIdFromPath();
const keys = {
  lang: `babelcast.talkLang.${roomId}`,
  name: 'babelcast.talkName',
  mic: `babelcast.talkMic.${roomId}`,
};

const ui = {
  pill: $('state-pill'),
  roomName: $('room-name'),
  pageNotice: $('page-notice'),
  keyForm: $('key-form'),
  setup: $('setup'),
  langList: $('lang-list'),
  name: $('talk-name'),
  start: $('talk-start'),
  talk: $('talk'),
  language: $('talk-language'),
  meter: $('talk-level'),
  meterFill: $('talk-level-fill'),
  conversation: $('conversation'),
  conversationLive: $('conversation-live'),
  mute: $('talk-mute'),
  leave: $('talk-leave'),
};

const st = {
  info: null,
  lang: store.get('localStorage', keys.lang) || '',
  phase: 'setup', // setup | starting | live | ended
  muted: false,
  // This tab's mic: the same id across reconnects and reloads, so a new
  // connection takes over its own stale one rather than adding a mic.
  mic: store.get('sessionStorage', keys.mic) || `talk-${randomId(6)}`,
};
store.set('sessionStorage', keys.mic, st.mic);

const out = new AudioOut({ onStateChange: () => render() });
const live = { mic: null, link: null, stream: null };
const guard = new LiveGuard(() => st.phase === 'live');

const captions = new CaptionView(ui.conversation, ui.conversationLive, {
  shown: 0,
  keep: 60,
  markOriginal: false,
  who: (l) => (isMine(l) ? text.you : l.speaker || text.someone),
  kind: (l) => (isMine(l) ? 'mine' : 'theirs'),
  onRender: () => { ui.conversation.scrollTop = ui.conversation.scrollHeight; },
});

/** A line said in this phone's language by its owner (or by someone unnamed). */
function isMine(line) {
  if (!line.source) return false;
  const me = ui.name.value.trim();
  return !line.speaker || line.speaker === me;
}

// ---------- key ----------

const key = new SpeakerKey({
  roomId,
  form: ui.keyForm,
  text,
  hides: [ui.setup, ui.talk],
  onAccepted: () => {
    showSetup();
    (ui.langList.querySelector('input:checked') || ui.langList.querySelector('input'))?.focus(); // the form is gone
  },
  onRoomGone: roomGone,
});

// ---------- languages ----------

function languages() {
  return [st.info.source_language, ...st.info.languages];
}

function langName(code) {
  const l = languages().find((x) => x.code === code);
  return (l && l.native) || code;
}

function renderLanguages() {
  const all = languages();
  if (!all.some((l) => l.code === st.lang)) st.lang = '';
  ui.langList.replaceChildren(...all.map((l) => languageOption(l.code, l.native || l.code, {
    name: 'lang', checked: l.code === st.lang,
    onchange: () => {
      st.lang = l.code;
      store.set('localStorage', keys.lang, l.code);
      followLanguage();
    },
  })));
  nameLanguages(ui.langList);
  ui.language.replaceChildren(...all.map((l) => el('option', { value: l.code, lang: l.code, dir: dirOf(l.code) }, l.native || l.code)));
  if (st.lang) ui.language.value = st.lang;
}

/** The page speaks the language this phone speaks where it has a catalog, else the browser's. */
function followLanguage() {
  setLanguage([st.lang, ...browserLanguages()]);
}

onLanguage(() => {
  if (!st.info) {
    ui.roomName.textContent = text.loadingRoom;
    setPill(ui.pill, 'idle', text.loading);
  } else if (st.phase !== 'ended') {
    document.title = fmt(text.title, { room: st.info.name || roomId });
  }
  nameLanguages(ui.langList);
  captions.render();
  render();
});

/** Changing language mid-conversation: the mic says so, the phone listens to the new channel. */
ui.language.addEventListener('change', () => {
  st.lang = ui.language.value;
  store.set('localStorage', keys.lang, st.lang);
  followLanguage();
  const r = document.getElementById(`lang-${st.lang}`);
  if (r) r.checked = true;
  if (st.phase !== 'live' && st.phase !== 'starting') return;
  live.link?.setLanguage(st.lang);
  if (live.stream) {
    live.stream.stop();
    live.stream = null;
    listen();
  }
});

// ---------- start / leave ----------

async function start() {
  if (st.phase === 'starting' || st.phase === 'live' || st.phase === 'ended') return;
  if (!st.lang) {
    notice(ui.pageNotice, 'warn', text.pickLanguage);
    ui.langList.querySelector('input')?.focus();
    return;
  }
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', micText.noMedia, noMediaReason());
    return;
  }
  notice(ui.pageNotice, '', '');
  store.set('localStorage', keys.name, ui.name.value.trim());
  ui.language.value = st.lang;
  st.phase = 'starting';
  render();
  ui.mute.focus(); // the setup, with the Start button, is gone
  // Both the playback and the capture are made in this press.
  const played = out.ensure();
  const mic = new Microphone({
    onFrame: (f) => {
      setMeter(ui.meter, ui.meterFill, st.muted ? -100 : f.rmsDb, { silent: text.meterSilent, level: text.meterDb });
      live.link?.send(f.pcm);
    },
    onTrackEnded: () => {
      if (st.phase === 'live') notice(ui.pageNotice, 'error', text.micStopped, text.micStoppedText);
    },
  });
  live.mic = mic;
  mic.setMuted(st.muted);
  try {
    await mic.start();
  } catch (err) {
    if (live.mic !== mic) return;
    leave();
    notice(ui.pageNotice, 'error', text.startFailed, micError(err));
    return;
  }
  if (live.mic !== mic || !mic.running) return; // left meanwhile
  try {
    await played;
    await out.ready;
  } catch (err) {
    if (live.mic !== mic) return; // left meanwhile
    leave();
    notice(ui.pageNotice, 'error', text.soundFailed, describeError(err));
    return;
  }
  if (live.mic !== mic) return;
  live.link = new MicLink({
    roomId,
    key: () => key.value,
    sampleRate: () => mic.sampleRate,
    hello: () => ({ mic: st.mic, name: ui.name.value.trim(), language: st.lang }),
    onReady: () => render(),
    onClose: () => render(),
    ...noticeEndings(ui.pageNotice, { stop: leave, text, roomGone, keyRefused: () => key.forget(text.keyStale) }),
    onRetry: () => render(),
    onDropped: () => notice(ui.pageNotice, 'warn', text.slowNet, text.slowNetText),
  });
  live.link.start();
  listen();
  st.phase = 'live';
  guard.keepAwake();
  render();
}

/** Listens to this phone's language without the original: the others, interpreted. */
function listen() {
  const stream = new ChannelStream(out, {
    roomId,
    lang: st.lang,
    passthrough: false,
    key: () => key.value, // hears a room with a passcode without being told it
    onOpen: () => render(),
    onText: (msg) => {
      if (msg.type === Msg.HELLO) ui.talk.dataset.passthrough = String(msg.passthrough !== false);
      if (msg.type === Msg.CAPTION) captions.add(msg);
      render();
    },
    onStats: () => { ui.talk.dataset.bytes = String(stream.bytes); },
    onRetry: () => render(),
    onClose: async ({ code }) => {
      if (code === Close.ROOM_GONE) return channelGone(stream);
      render();
      return code === Close.TOO_SLOW ? 300 : true;
    },
  });
  live.stream = stream;
}

/**
 * This phone's channel closed with 4404: the room was deleted, or this
 * phone's language removed (its mic goes on, in a language the room no
 * longer has). The room's public description tells which; the answer is
 * whether to try the channel again.
 */
async function channelGone(stream) {
  let info;
  try {
    info = await roomPublic(roomId);
  } catch (err) {
    if (live.stream !== stream) return false; // left meanwhile
    if (err instanceof ApiError && err.status === 404) {
      roomGone(true);
      return false;
    }
    return true; // cannot tell now: try again
  }
  if (live.stream !== stream) return false;
  st.info = info;
  if (languages().some((l) => l.code === st.lang)) return true; // given back meanwhile
  leave();
  showSetup(); // without the language, to pick another
  notice(ui.pageNotice, 'warn', micText.badLanguage);
  return false;
}

function leave() {
  if (live.link) live.link.stop('left');
  if (live.stream) live.stream.stop();
  if (live.mic) live.mic.stop();
  live.link = live.stream = live.mic = null;
  guard.release();
  out.suspend();
  if (st.phase !== 'ended') st.phase = 'setup';
  delete ui.talk.dataset.bytes;
  render();
}

ui.start.addEventListener('click', start);
ui.leave.addEventListener('click', () => {
  leave();
  ui.start.focus();
});
ui.mute.addEventListener('click', () => {
  st.muted = !st.muted;
  live.mic?.setMuted(st.muted);
  render();
});

function roomGone(deleted) {
  leave();
  st.phase = 'ended';
  ui.setup.hidden = true;
  ui.talk.hidden = true;
  ui.keyForm.hidden = true;
  notice(ui.pageNotice, 'error', deleted ? text.roomDeleted : fmt(text.noSuchRoom, { room: roomId }),
    deleted ? text.roomDeletedText : text.askForLink);
  render();
}

// ---------- rendering ----------

function render() {
  const on = st.phase === 'live' || st.phase === 'starting';
  if (st.phase !== 'ended' && st.info && ui.keyForm.hidden) {
    ui.setup.hidden = on;
    ui.talk.hidden = !on;
  }
  ui.start.disabled = on;
  ui.mute.dataset.muted = String(st.muted);
  ui.mute.textContent = st.muted ? text.unmute : text.mute;
  ui.talk.dataset.mic = st.mic;
  if (st.phase === 'ended') return setPill(ui.pill, 'ended', text.pillClosed);
  if (!on) return setPill(ui.pill, 'idle', text.pillIdle);
  const l = live.link;
  const s = live.stream;
  if (!l || !l.isOpen || !l.ready || !s || !s.isOpen || !s.hello) {
    const again = (l && l.attempt > 0) || (s && s.socket.attempt > 0);
    return setPill(ui.pill, again ? 'reconnecting' : 'connecting', again ? text.pillReconnecting : text.pillConnecting);
  }
  if (st.muted) return setPill(ui.pill, 'silent', text.pillMuted);
  return setPill(ui.pill, 'live', text.pillLive);
}

function showSetup() {
  renderLanguages();
  ui.setup.hidden = false;
  render();
}

async function init() {
  followLanguage();
  ui.name.value = store.get('localStorage', keys.name) || '';
  st.info = await openRoom(roomId, { text, roomName: ui.roomName, pageNotice: ui.pageNotice, pill: ui.pill, gone: () => roomGone(false) });
  if (!st.info) return;
  ui.roomName.replaceChildren(el('bdi', {}, st.info.name || roomId)); // in its own direction, isolated
  document.title = fmt(text.title, { room: st.info.name || roomId });
  if (await key.verify(text.keyStale)) showSetup();
}

init();
