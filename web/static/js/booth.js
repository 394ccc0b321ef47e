// booth.js: an interpreter's booth, /rooms/{id}/booth/{lang}#key=….
//
// The booth WebSocket carries both ways: the interpreter's microphone
// goes up (a mic, as mic.js's MicLink sends it, with the booth's path),
// and what the interpreter hears comes down (the floor, or with ?hear= a
// relayed channel), played on its own volume. "Take the air" puts this
// interpreter on air (the partner goes off), "Hand over" takes them off,
// "Cough" mutes them while on air; the server says who is on air in
// on_air messages, with everyone in the booth. While nobody is on air (or
// the one on air is silent for 4 s while the floor speaks) listeners hear
// the AI. Floor captions come down the same socket as a crib; the glossary
// comes with the key check.

import { api, describeError, roomIdFromPath } from './api.js';
import { CaptionView } from './captions.js';
import { LiveGuard, mediaSupported, Microphone, MicLink, micError, noMediaReason } from './mic.js';
import { AudioOut, playerNode } from './player.js';
import { FLOOR, Msg } from './protocol.js';
import { $, el, fmt, notice, nativeName, secretFromFragment, setMeter, setPill, store } from './ui.js';

const text = {
  noKey: 'This booth link holds no key',
  noKeyText: 'Open the booth link the organizers shared.',
  wrongKey: 'This booth link is not valid any more',
  wrongKeyText: 'Ask the organizers for the current booth link.',
  cannotLoad: 'Cannot load the booth',
  title: '{lang} booth · {room}',
  floor: 'The floor',
  relay: 'Relay: {lang}',
  onAir: 'ON AIR',
  onAirMuted: 'ON AIR · muted',
  offAir: 'Off air',
  offAirWho: 'Off air · {name} is on air',
  offAirNobody: 'Off air · listeners hear the AI',
  someone: 'Someone',
  you: ' (you)',
  listens: 'listens to {what}',
  theFloor: 'the floor',
  startFailed: 'Could not start the microphone',
  soundFailed: 'Sound could not start',
  refused: 'The server refused this booth',
  roomGone: 'The booth was closed',
  roomGoneText: 'The organizers removed the room or its booth.',
  pillLive: 'Connected',
  pillConnecting: 'Connecting…',
  pillIdle: 'Not connected',
  meterSilent: 'silent',
  meterDb: '{db} decibels',
};

const roomId = roomIdFromPath();
const lang = decodeURIComponent(location.pathname.split('/')[4] || '');
const keyName = `babelcast.boothKey.${roomId}.${lang}`;

const ui = {
  pill: $('state-pill'), roomName: $('room-name'), pageNotice: $('page-notice'),
  setup: $('setup'), name: $('booth-name'), hear: $('booth-hear'), start: $('booth-start'),
  booth: $('booth'), onAir: $('on-air'), take: $('take'), handOver: $('hand-over'), cough: $('cough'),
  volume: $('volume'), volumeValue: $('volume-value'), meter: $('booth-level'), meterFill: $('booth-level-fill'),
  partners: $('partners'), crib: $('crib'), cribLive: $('crib-live'),
  glossaryBox: $('glossary-box'), glossary: $('glossary'), notes: $('notes'), leave: $('leave'),
};

const st = { key: secretFromFragment(keyName), info: null, live: false, onAir: null, muted: false, me: '', resume: false };
const out = new AudioOut({ volume: 1 });
const live = { mic: null, link: null, player: null };
const guard = new LiveGuard(() => st.live);
const crib = new CaptionView(ui.crib, ui.cribLive, { shown: 6, keep: 30 });

function boothPath() {
  const hear = ui.hear.value && ui.hear.value !== FLOOR ? `?hear=${encodeURIComponent(ui.hear.value)}` : '';
  return `/api/v1/rooms/${encodeURIComponent(roomId)}/booth/${encodeURIComponent(lang)}${hear}`;
}

async function load() {
  if (!st.key) {
    notice(ui.pageNotice, 'error', text.noKey, text.noKeyText);
    ui.pill.textContent = text.pillIdle;
    return;
  }
  try {
    st.info = await api(`/api/v1/rooms/${encodeURIComponent(roomId)}/booth/${encodeURIComponent(lang)}`, { token: st.key });
  } catch (err) {
    const stale = err.status === 401 || err.status === 404;
    notice(ui.pageNotice, 'error', stale ? text.wrongKey : text.cannotLoad, stale ? text.wrongKeyText : describeError(err));
    ui.pill.textContent = text.pillIdle;
    return;
  }
  const title = fmt(text.title, { lang: nativeName(lang), room: st.info.name });
  ui.roomName.textContent = title;
  document.title = `${title} · babelcast`;
  ui.hear.replaceChildren(el('option', { value: FLOOR }, text.floor),
    ...st.info.languages.filter((l) => l !== lang).map((l) => el('option', { value: l }, fmt(text.relay, { lang: nativeName(l) }))));
  ui.name.value = store.get('localStorage', 'babelcast.boothName') || '';
  renderGlossary();
  ui.setup.hidden = false;
  ui.pill.textContent = text.pillIdle;
}

function renderGlossary() {
  const g = st.info.glossary || [];
  ui.glossaryBox.hidden = g.length === 0;
  ui.glossary.replaceChildren(...g.map((e) => el('tr', {},
    el('th', { scope: 'row' }, e.term),
    el('td', {}, (e.translations && e.translations[lang]) || ''),
    el('td', { class: 'muted' }, e.note || ''))));
  ui.notes.hidden = !st.info.notes;
  ui.notes.textContent = st.info.notes || '';
}

async function enter() {
  if (st.live) return;
  if (!mediaSupported()) {
    notice(ui.pageNotice, 'error', text.startFailed, noMediaReason());
    return;
  }
  notice(ui.pageNotice, '', '');
  store.set('localStorage', 'babelcast.boothName', ui.name.value.trim());
  const played = out.ensure(); // in this press, with the microphone
  const mic = new Microphone({
    onFrame: (f) => live.link?.send(f.pcm),
  });
  live.mic = mic;
  let step = 'mic';
  try {
    await mic.start();
    step = 'sound';
    await played;
    await out.ready;
  } catch (err) {
    if (live.mic !== mic) return; // left meanwhile
    leave();
    if (step === 'mic') notice(ui.pageNotice, 'error', text.startFailed, micError(err));
    else notice(ui.pageNotice, 'error', text.soundFailed, describeError(err));
    return;
  }
  if (live.mic !== mic) return;
  const player = playerNode(out, true);
  live.player = player;
  out.setVolume(Number(ui.volume.value) / 100);
  live.link = new MicLink({
    roomId,
    key: () => st.key,
    path: boothPath,
    sampleRate: () => mic.sampleRate,
    hello: () => ({ name: ui.name.value.trim() }),
    onReady: (msg) => { st.me = msg.conn || ''; render(); },
    onLevel: (m) => setMeter(ui.meter, ui.meterFill, m.rms_db, { silent: text.meterSilent, level: text.meterDb }),
    onAudio: (buf) => {
      let b = buf;
      if (b.byteLength & 1) b = b.slice(0, b.byteLength - 1);
      player.node.port.postMessage(b, [b]);
    },
    onOther: (msg) => {
      if (msg.type === Msg.ON_AIR) {
        // Back after a network drop while on air, and nobody took over
        // meanwhile: on air again (the AI covered the gap).
        if (st.resume && !msg.interpreters.some((i) => i.on_air)) {
          st.muted = false; // a take is never muted
          live.link?.message({ type: Msg.TAKE });
        }
        st.resume = false;
        st.onAir = msg;
        render();
      }
      if (msg.type === Msg.CAPTION) crib.add(msg);
    },
    onClose,
    // The booth cannot be entered again: no setup to go back to.
    onRoomGone: () => {
      st.info = null;
      leave();
      notice(ui.pageNotice, 'error', text.roomGone, text.roomGoneText);
    },
    onRefused: (refused) => {
      leave();
      notice(ui.pageNotice, 'error', text.refused, refused.text);
      ui.pageNotice.dataset.reason = refused.reason;
    },
    // The key was changed while the booth was away (a network drop): its
    // reconnection is refused at the handshake, for good.
    onKeyRefused: () => {
      st.info = null;
      leave();
      notice(ui.pageNotice, 'error', text.wrongKey, text.wrongKeyText);
    },
    onRetry: () => render(),
  });
  live.link.start();
  st.live = true;
  ui.setup.hidden = true;
  ui.booth.hidden = false;
  guard.keepAwake();
  render();
  // The setup, with the Enter button, is gone: the focus goes to the
  // on-air light (Take comes next), which says where the booth stands.
  ui.onAir.tabIndex = -1;
  ui.onAir.focus();
}

/**
 * Any close: who is on air is not known until the next on_air message.
 * Whether to take the air again is decided at the close that took it
 * away, and kept through failed attempts until a connection says who is
 * on air.
 */
function onClose() {
  st.resume = st.resume || !!(st.onAir && st.onAir.on_air);
  st.onAir = null;
  render();
}

function leave() {
  st.live = false;
  st.resume = false; // entering again starts off air
  st.onAir = null;
  live.link?.stop('left the booth');
  live.mic?.stop();
  live.player?.node.disconnect();
  live.link = live.mic = live.player = null;
  guard.release();
  ui.booth.hidden = true;
  ui.setup.hidden = !st.info;
  render();
  if (!ui.setup.hidden) ui.start.focus(); // the booth's controls are gone
}

function setMuted(muted) {
  st.muted = muted;
  live.link?.message({ type: Msg.MUTE, muted });
  render();
}

function render() {
  const m = st.onAir;
  const mine = !!(m && m.on_air);
  const focused = document.activeElement;
  ui.onAir.dataset.onAir = String(mine);
  ui.onAir.dataset.muted = String(mine && m.muted);
  if (mine) ui.onAir.textContent = m.muted ? text.onAirMuted : text.onAir;
  else if (m && m.name) ui.onAir.textContent = fmt(text.offAirWho, { name: m.name });
  else if (m && m.interpreters.some((i) => i.on_air)) ui.onAir.textContent = fmt(text.offAirWho, { name: text.someone });
  else ui.onAir.textContent = m ? text.offAirNobody : text.offAir;
  ui.take.disabled = !m || mine;
  ui.handOver.disabled = !mine;
  ui.cough.disabled = !mine;
  ui.cough.setAttribute('aria-pressed', String(mine && st.muted));
  // Take and Hand over disable themselves: the focus goes on to the other.
  if (focused && focused.disabled) [ui.handOver, ui.take, ui.leave].find((b) => !b.disabled && !b.hidden)?.focus();
  const open = !!(live.link && live.link.isOpen);
  if (open) setPill(ui.pill, 'live', text.pillLive);
  else setPill(ui.pill, st.live ? 'connecting' : 'idle', st.live ? text.pillConnecting : text.pillIdle);
  ui.partners.replaceChildren(...(m ? m.interpreters : []).map((i) => el('li', {
    dataset: { testid: 'partner', onAir: String(i.on_air), muted: String(!!i.muted) },
  }, el('strong', {}, (i.name || text.someone) + (i.conn === st.me ? text.you : '')), ' ',
  i.on_air ? el('span', { class: 'pill', dataset: { state: 'live' } }, i.muted ? text.onAirMuted : text.onAir) : '',
  ' ', el('span', { class: 'muted small' }, fmt(text.listens, { what: i.hear && i.hear !== FLOOR ? nativeName(i.hear) : text.theFloor })))));
}

ui.start.addEventListener('click', enter);
ui.leave.addEventListener('click', leave);
ui.take.addEventListener('click', () => { st.muted = false; live.link?.message({ type: Msg.TAKE }); });
ui.handOver.addEventListener('click', () => live.link?.message({ type: Msg.HAND_OVER }));
ui.cough.addEventListener('click', () => setMuted(!st.muted));
ui.volume.addEventListener('input', () => {
  ui.volumeValue.textContent = `${ui.volume.value}%`;
  out.setVolume(Number(ui.volume.value) / 100);
});
load();
