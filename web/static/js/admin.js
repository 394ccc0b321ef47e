// admin.js: the organizer console, /admin.
//
// The admin token is typed once and kept in sessionStorage (this tab only),
// sent as a Bearer header, and never put in a URL. Rooms are created and
// edited through the organizer API; the languages offered come from
// /api/v1/engines (what the live translator nodes serve). The selected
// room's status is polled every 2 s while the page is visible.

import { boothLine, renderBoothLinks } from './admin-booths.js';
import { api, apiBlob, ApiError, describeError } from './api.js';
import { ChannelState } from './protocol.js';
import { QuestionQueue } from './questions.js';
import { RecordPanel } from './record.js';
import { $, copyText, el, englishName, fmt, formatDuration, nativeName, notice, setMeter, store } from './ui.js';

// Sentences of the parts for several mics and questions (the rest of the
// console's are still inline).
const text = {
  noMics: 'No mic is on air.',
  noName: 'no name',
  question: 'audience question',
  speaking: 'speaking',
  silent: 'silent',
  levelDb: '{db} decibels',
  micsLive: '● {n} mics on air',
  micLive: '● speaker live',
  noSpeaker: '○ no speaker',
  floorRow: 'Floor · every voice, untranslated',
  sourceRow: '{lang} · source',
  maxMics: 'The number of mics must be from 1 to 32.',
  talkCopied: 'Conversation link',
  questionsOn: 'questions from the audience',
  upToMics: 'up to {n} mics',
  micLevel: 'Level of {mic}',
};

const TOKEN_KEY = 'babelcast.adminToken';
const POLL_MS = 2000;
const LIST_EVERY = 5; // refresh the room list every LIST_EVERY polls
const VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'];
const MODES = ['auto', 'translate', 'interpret'];
// Offered when the engines accept any language (or none is running).
const COMMON = ['en', 'es', 'fr', 'de', 'it', 'pt', 'pt-BR', 'nl', 'sv', 'da', 'nb', 'fi', 'pl', 'cs', 'sk',
  'hu', 'ro', 'bg', 'el', 'tr', 'ru', 'uk', 'ar', 'he', 'fa', 'hi', 'bn', 'ur', 'ta', 'th', 'vi', 'id', 'ms',
  'fil', 'ja', 'ko', 'zh', 'zh-Hant', 'sw', 'ca', 'eu', 'gl', 'hr', 'sr', 'sl', 'lt', 'lv', 'et'];

const ui = {
  signout: $('signout'),
  signinForm: $('signin-form'),
  token: $('admin-token'),
  signinError: $('signin-error'),
  signinSubmit: $('signin-submit'),
  app: $('app'),
  newRoom: $('new-room'),
  enginesSummary: $('engines-summary'),
  apiError: $('api-error'),
  roomsEmpty: $('rooms-empty'),
  roomsList: $('rooms-list'),
  detail: $('room-detail'),
  detailName: $('detail-name'),
  roomsTitle: $('rooms-title'),
  detailMeta: $('detail-meta'),
  edit: $('edit-room'),
  del: $('delete-room'),
  statusUpdated: $('status-updated'),
  statusSpeaker: $('status-speaker'),
  statusBody: $('status-body'),
  statusAlerts: $('status-alerts'),
  qrListen: $('qr-listen'),
  qrSpeak: $('qr-speak'),
  linkListen: $('link-listen'),
  linkSpeak: $('link-speak'),
  copyListen: $('copy-listen'),
  openListen: $('open-listen'),
  printQR: $('print-qr'),
  showSpeak: $('show-speak'),
  copySpeak: $('copy-speak'),
  rotate: $('rotate-key'),
  qrTalk: $('qr-talk'),
  linkTalk: $('link-talk'),
  showTalk: $('show-talk'),
  copyTalk: $('copy-talk'),
  boothLinks: $('booth-links'),
  micsBody: $('mics-body'),
  questions: $('questions'),
  questionsList: $('questions-list'),
  questionsEmpty: $('questions-empty'),
  questionsError: $('questions-error'),
  fMaxMics: $('f-max-mics'),
  fQuestions: $('f-questions'),
  fRecord: $('f-record'),
  fPublicTranscript: $('f-public-transcript'),
  shareStatus: $('share-status'),
  dialog: $('room-dialog'),
  dialogTitle: $('room-dialog-title'),
  form: $('room-form'),
  formError: $('room-form-error'),
  enginesWarning: $('engines-warning'),
  fName: $('f-name'),
  fId: $('f-id'),
  fSource: $('f-source'),
  fLanguages: $('f-languages'),
  addLanguage: $('add-language'),
  fGlossary: $('f-glossary'),
  addTerm: $('add-term'),
  fNotes: $('f-notes'),
  fPasscode: $('f-passcode'),
  save: $('room-save'),
  cancel: $('room-cancel'),
  confirm: $('confirm-dialog'),
  confirmTitle: $('confirm-title'),
  confirmText: $('confirm-text'),
  confirmOk: $('confirm-ok'),
  printName: $('print-name'),
  printImg: $('print-qr-img'),
  printUrl: $('print-url'),
  printCode: $('print-code'),
};

const st = {
  token: store.get('sessionStorage', TOKEN_KEY) || '',
  rooms: [], // admin rooms (with links), sorted by id
  statuses: new Map(), // id → status body
  selected: decodeURIComponent((location.hash.match(/^#room=([^&]+)/) || [])[1] || ''),
  engines: null, // /api/v1/engines body
  editing: null, // room being edited, null for a new one
  pollTimer: 0,
  polls: 0,
  polling: Promise.resolve(), // the poll in progress, if any
  deleting: new Set(), // ids of rooms being deleted: not polled
  qrURLs: {}, // object URLs to revoke
  qrFor: '', // room id + key the QR codes were made for
  boothsShown: '', // room id + booth links the booth figures were made for
  lastStates: new Map(), // "room/lang" → state, for announcing changes
  detailFor: '', // room the detail panel shows
  listFailed: false, // the api-error notice says the room list failed
  gen: 0, // bumped by every change made here, so an older room list is not shown over it
};

/** The selected room's recordings and transcripts. */
const record = new RecordPanel({
  body: $('record-body'), note: $('record-note'), error: $('record-error'),
  token: () => st.token, langName: (code) => langLabel(code),
});

/** The selected room's questions from the audience, where it takes them. */
const queue = new QuestionQueue({
  roomId: () => st.selected,
  token: () => st.token,
  list: ui.questionsList,
  empty: ui.questionsEmpty,
  error: ui.questionsError,
  langName: (code) => langLabel(code),
  // Not while the room is being deleted: its questions would be a 404.
  active: () => document.visibilityState === 'visible' && !st.deleting.has(st.selected),
});

// ---------- API with the token ----------

async function call(path, opts = {}) {
  try {
    return await api(path, { ...opts, token: st.token });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403) && err.code !== 'too_many_attempts') {
      signOut('Signed out: the admin token was not accepted. Sign in again.');
    }
    throw err;
  }
}

function showApiError(title, err) {
  notice(ui.apiError, 'error', title, describeError(err));
}

// ---------- sign in / out ----------

ui.signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  if (!token) {
    notice(ui.signinError, 'error', 'Enter the admin token');
    return;
  }
  ui.signinSubmit.disabled = true;
  try {
    await api('/api/v1/rooms', { token });
    st.token = token;
    store.set('sessionStorage', TOKEN_KEY, token);
    ui.token.value = '';
    notice(ui.signinError, '', '');
    await enter();
    ui.roomsTitle.focus(); // the form that had the focus is gone
  } catch (err) {
    const msg = err instanceof ApiError && (err.status === 401 || err.status === 403)
      ? 'That token was not accepted. Check it in the server log or BABELCAST_ADMIN_TOKEN.'
      : describeError(err);
    notice(ui.signinError, 'error', 'Could not sign in', msg);
    ui.token.focus();
  } finally {
    ui.signinSubmit.disabled = false;
  }
});

function signOut(message) {
  st.token = '';
  store.set('sessionStorage', TOKEN_KEY, '');
  clearTimeout(st.pollTimer);
  st.pollTimer = 0;
  queue.stop();
  st.rooms = [];
  st.statuses.clear();
  revokeQRs();
  ui.app.hidden = true;
  ui.signout.hidden = true;
  ui.signinForm.hidden = false;
  notice(ui.signinError, message ? 'warn' : '', message ? 'Signed out' : '', message || '');
  if (ui.dialog.open) ui.dialog.close();
  ui.token.focus();
}

ui.signout.addEventListener('click', () => signOut(''));

async function enter() {
  ui.signinForm.hidden = true;
  ui.app.hidden = false;
  ui.signout.hidden = false;
  await Promise.all([loadRooms(), loadEngines()]);
  schedulePoll(0);
}

// ---------- engines and languages ----------

async function loadEngines() {
  try {
    st.engines = await api('/api/v1/engines');
  } catch (err) {
    st.engines = null;
    ui.enginesSummary.textContent = `Could not read the translator engines: ${describeError(err)}`;
    return;
  }
  const list = st.engines.engines || [];
  if (list.length === 0) {
    ui.enginesSummary.textContent = 'No translator is running right now: rooms can be set up, but nothing is interpreted until one starts.';
    return;
  }
  const names = [...new Set(list.map((e) => e.engine))].join(', ');
  const targets = st.engines.any_target ? 'any language' : `${(st.engines.targets || []).length} languages`;
  ui.enginesSummary.textContent = `Translators online: ${list.length} (${names}), serving ${targets}.`;
}

/** A label for a language: "Spanish · Español". */
function langLabel(code, lang) {
  const english = (lang && lang.english) || englishName(code);
  const native = (lang && lang.native) || nativeName(code);
  return english && native && english !== native ? `${english}\u00a0· ${native}` : english || native || code;
}

/** The languages to offer: what the engines serve, or a common set when they take any (or none runs). */
function offeredLanguages(kind) {
  const e = st.engines;
  const list = e && !(kind === 'source' ? e.any_source : e.any_target) && (e.engines || []).length > 0
    ? (kind === 'source' ? e.sources : e.targets) || []
    : COMMON.map((code) => ({ code }));
  const seen = new Set();
  return list.filter((l) => !seen.has(l.code) && seen.add(l.code))
    .map((l) => ({ code: l.code, label: langLabel(l.code, l.english ? l : null) }))
    .sort((a, b) => a.label.localeCompare(b.label));
}

/** Options for a language select, keeping value even when no engine offers it. */
function languageOptions(kind, value) {
  const options = offeredLanguages(kind);
  if (value && !options.some((o) => o.code === value)) {
    options.unshift({ code: value, label: `${langLabel(value)} (not offered by the running translators)` });
  }
  return options.map((o) => el('option', { value: o.code, selected: o.code === value }, o.label));
}

function languageSelect(id, kind, value, testid) {
  return el('select', { id, dataset: { testid } }, languageOptions(kind, value));
}

// ---------- rooms list ----------

async function loadRooms() {
  const gen = st.gen;
  try {
    const body = await call('/api/v1/rooms');
    if (gen !== st.gen) return; // changed here meanwhile: this list is older
    st.rooms = (body && body.rooms) || [];
    if (st.listFailed) notice(ui.apiError, '', '');
    st.listFailed = false;
  } catch (err) {
    if (st.token) {
      showApiError('Could not load the rooms', err);
      st.listFailed = true;
    }
    return;
  }
  if (st.selected && !st.rooms.some((r) => r.id === st.selected)) select('');
  renderRooms();
  renderDetail();
}

function roomSummary(r) {
  const s = st.statuses.get(r.id);
  if (!s) return '';
  const listeners = (s.floor ? (s.floor.listeners || 0) + (s.floor.mix_listeners || 0) : 0) +
    (s.languages || []).reduce((n, l) => n + (l.listeners || 0), 0);
  const errors = (s.languages || []).filter((l) => l.state === ChannelState.ERROR).length;
  const mics = (s.mics || []).length;
  return [
    mics > 1 ? fmt(text.micsLive, { n: mics }) : s.speaker && s.speaker.connected ? text.micLive : text.noSpeaker,
    `${listeners} listening`,
    errors ? `${errors} translator error${errors > 1 ? 's' : ''}` : '',
  ].filter(Boolean).join(' · ');
}

function renderRooms() {
  ui.roomsEmpty.hidden = st.rooms.length > 0;
  ui.roomsList.replaceChildren(...st.rooms.map((r) => el('li', {
    class: 'room-item', dataset: { testid: 'room-item', room: r.id },
    'aria-current': r.id === st.selected ? 'true' : 'false',
  },
  el('h3', {}, r.name || r.id),
  el('div', { class: 'meta' }, `${r.id} · ${r.source_language} → ${(r.languages || []).map((l) => l.code).join(', ') || 'no translation'}${r.passcode ? ' · passcode' : ''}`),
  el('div', { class: 'meta', id: `room-summary-${r.id}`, dataset: { testid: 'room-summary' } }, roomSummary(r)),
  el('div', { class: 'actions' },
    el('button', {
      class: 'small', type: 'button', dataset: { testid: 'room-open' },
      'aria-label': `Manage ${r.name || r.id}`, onclick: () => select(r.id, true),
    }, 'Manage'),
    el('a', { class: 'button small', href: `/rooms/${encodeURIComponent(r.id)}`, target: '_blank', rel: 'noopener noreferrer' }, 'Listen')))));
}

function select(id, focus) {
  st.selected = id;
  history.replaceState(null, '', id ? `#room=${encodeURIComponent(id)}` : location.pathname);
  renderRooms();
  renderDetail();
  if (id) {
    pollNow();
    if (focus) ui.detailName.focus();
  }
}

// ---------- room detail ----------

function selectedRoom() {
  return st.rooms.find((r) => r.id === st.selected) || null;
}

function linksOf(r) {
  const base = `${location.origin}/rooms/${encodeURIComponent(r.id)}`;
  return {
    listen: (r.links && r.links.listen) || base,
    speak: (r.links && r.links.speak) || `${base}/speak#key=${encodeURIComponent(r.speaker_key || '')}`,
    talk: (r.links && r.links.talk) || `${base}/talk#key=${encodeURIComponent(r.speaker_key || '')}`,
  };
}

function setSpeakShown(shown) {
  ui.showSpeak.setAttribute('aria-expanded', String(shown));
  ui.showSpeak.textContent = shown ? 'Hide' : 'Show';
  ui.linkSpeak.classList.toggle('shown', shown);
  ui.linkSpeak.setAttribute('aria-hidden', String(!shown)); // blurred: not read out either
  ui.qrSpeak.hidden = !shown;
}

function setTalkShown(shown) {
  ui.showTalk.setAttribute('aria-expanded', String(shown));
  ui.showTalk.textContent = shown ? 'Hide' : 'Show';
  ui.linkTalk.classList.toggle('shown', shown);
  ui.linkTalk.setAttribute('aria-hidden', String(!shown));
  ui.qrTalk.hidden = !shown;
}

function renderDetail() {
  const r = selectedRoom();
  ui.detail.hidden = !r;
  if (!r) return;
  if (st.detailFor !== r.id) {
    // Another room: its secret starts hidden again, and old messages go.
    st.detailFor = r.id;
    setSpeakShown(false);
    setTalkShown(false);
    ui.shareStatus.textContent = '';
    queue.stop();
    ui.questionsList.replaceChildren();
  }
  record.refresh(r);
  ui.questions.hidden = !r.questions;
  if (r.questions) queue.start();
  else queue.stop();
  ui.detailName.textContent = r.name || r.id;
  ui.detailName.tabIndex = -1;
  const gloss = (r.glossary || []).length;
  ui.detailMeta.textContent = [
    `Code ${r.id}`,
    `speaker in ${langLabel(r.source_language)}`,
    `${(r.languages || []).length} language${(r.languages || []).length === 1 ? '' : 's'}`,
    gloss ? `${gloss} glossary term${gloss === 1 ? '' : 's'}` : '',
    r.passcode ? 'passcode required' : 'open to anyone with the link',
    fmt(text.upToMics, { n: r.max_mics || 8 }),
    r.questions ? text.questionsOn : '',
    r.record ? 'recorded' : '',
  ].filter(Boolean).join(' · ');
  const links = linksOf(r);
  ui.linkListen.textContent = links.listen;
  ui.openListen.href = links.listen;
  ui.linkSpeak.textContent = links.speak;
  ui.linkTalk.textContent = links.talk;
  const booths = JSON.stringify([r.id, r.links && r.links.booths]);
  if (st.boothsShown !== booths) { // another room, or new keys: hidden again
    st.boothsShown = booths;
    renderBoothLinks(ui.boothLinks, r, st.token);
  }
  renderStatus();
  loadQRs(r);
}

function revokeQRs() {
  for (const u of Object.values(st.qrURLs)) URL.revokeObjectURL(u);
  st.qrURLs = {};
  st.qrFor = '';
  ui.qrListen.removeAttribute('src');
  ui.qrSpeak.removeAttribute('src');
  ui.qrTalk.removeAttribute('src');
}

/** Fetches the room's QR codes (with the token) as blobs, once per room and key. */
async function loadQRs(r) {
  const tag = `${r.id}/${r.speaker_key}`;
  if (st.qrFor === tag) return;
  revokeQRs();
  st.qrFor = tag;
  const base = `/api/v1/rooms/${encodeURIComponent(r.id)}/qr.png`;
  try {
    const [listen, speak, talk] = await Promise.all([
      apiBlob(`${base}?for=listen`, { token: st.token }),
      apiBlob(`${base}?for=speak`, { token: st.token }),
      apiBlob(`${base}?for=talk`, { token: st.token }),
    ]);
    if (st.qrFor !== tag) return;
    st.qrURLs.listen = URL.createObjectURL(listen);
    st.qrURLs.speak = URL.createObjectURL(speak);
    st.qrURLs.talk = URL.createObjectURL(talk);
    ui.qrListen.src = st.qrURLs.listen;
    ui.qrSpeak.src = st.qrURLs.speak;
    ui.qrTalk.src = st.qrURLs.talk;
  } catch (err) {
    if (st.qrFor === tag) st.qrFor = '';
    ui.shareStatus.textContent = `QR codes unavailable: ${describeError(err)}`;
  }
}

ui.showSpeak.addEventListener('click', () => {
  setSpeakShown(ui.showSpeak.getAttribute('aria-expanded') !== 'true');
});
ui.showTalk.addEventListener('click', () => {
  setTalkShown(ui.showTalk.getAttribute('aria-expanded') !== 'true');
});

async function copy(text, fallbackEl, what) {
  const ok = await copyText(text, fallbackEl);
  ui.shareStatus.textContent = ok ? `${what} copied.` : `Select and copy the ${what.toLowerCase()} by hand.`;
}
ui.copyListen.addEventListener('click', () => {
  const r = selectedRoom();
  if (r) copy(linksOf(r).listen, ui.linkListen, 'Attendee link');
});
ui.copySpeak.addEventListener('click', () => {
  const r = selectedRoom();
  if (r) copy(linksOf(r).speak, ui.linkSpeak, 'Speaker link');
});
ui.copyTalk.addEventListener('click', () => {
  const r = selectedRoom();
  if (r) copy(linksOf(r).talk, ui.linkTalk, text.talkCopied);
});

ui.printQR.addEventListener('click', async () => {
  const r = selectedRoom();
  if (!r) return;
  ui.printName.textContent = r.name || r.id;
  ui.printUrl.textContent = linksOf(r).listen;
  ui.printCode.textContent = `Room code: ${r.id}`;
  try {
    const blob = await apiBlob(`/api/v1/rooms/${encodeURIComponent(r.id)}/qr.png?for=listen&size=1024`, { token: st.token });
    if (st.qrURLs.print) URL.revokeObjectURL(st.qrURLs.print);
    st.qrURLs.print = URL.createObjectURL(blob);
    ui.printImg.src = st.qrURLs.print;
    ui.printImg.alt = `QR code of ${linksOf(r).listen}`;
    await ui.printImg.decode().catch(() => {});
    window.print();
  } catch (err) {
    ui.shareStatus.textContent = `Could not make the printable QR code: ${describeError(err)}`;
  }
});

ui.rotate.addEventListener('click', async () => {
  const r = selectedRoom();
  if (!r) return;
  const ok = await confirmDialog('New speaker key?',
    `The current speaker link for “${r.name || r.id}” stops working. Send the new link to the speaker.`, 'Make a new key');
  if (!ok) return;
  try {
    const updated = await call(`/api/v1/rooms/${encodeURIComponent(r.id)}`, { method: 'PATCH', body: { rotate_speaker_key: true } });
    replaceRoom(updated);
    ui.shareStatus.textContent = 'New speaker key made. The old speaker link no longer works.';
  } catch (err) {
    showApiError('Could not make a new speaker key', err);
  }
});

ui.del.addEventListener('click', async () => {
  const r = selectedRoom();
  if (!r) return;
  const ok = await confirmDialog(`Delete “${r.name || r.id}”?`,
    'The speaker and every listener are disconnected, and the room code stops working. This cannot be undone.', 'Delete room');
  if (!ok) return;
  // No status poll or read of its questions may cross its deletion (it
  // would be a 404).
  st.deleting.add(r.id);
  await st.polling.catch(() => {}); // a failed poll has said so itself
  await queue.halt();
  try {
    await call(`/api/v1/rooms/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
    st.gen++;
    st.rooms = st.rooms.filter((x) => x.id !== r.id);
    st.statuses.delete(r.id);
    select('');
    notice(ui.apiError, 'info', `Deleted “${r.name || r.id}”.`);
    ui.roomsTitle.focus(); // the room's Delete button is gone
  } catch (err) {
    showApiError('Could not delete the room', err);
    if (r.questions && st.selected === r.id) queue.start();
  } finally {
    st.deleting.delete(r.id);
  }
});

function replaceRoom(updated) {
  if (!updated || !updated.id) return;
  st.gen++;
  const i = st.rooms.findIndex((x) => x.id === updated.id);
  if (i >= 0) st.rooms[i] = updated;
  else st.rooms.push(updated);
  st.rooms.sort((a, b) => a.id.localeCompare(b.id));
  renderRooms();
  renderDetail();
}

/** Asks a yes/no question in a dialog; resolves true for OK. */
function confirmDialog(title, text, okLabel) {
  ui.confirmTitle.textContent = title;
  ui.confirmText.textContent = text;
  ui.confirmOk.textContent = okLabel || 'OK';
  ui.confirm.returnValue = '';
  ui.confirm.showModal();
  return new Promise((resolve) => {
    ui.confirm.addEventListener('close', () => resolve(ui.confirm.returnValue === 'ok'), { once: true });
  });
}

// ---------- live status ----------

const stateWords = {
  [ChannelState.IDLE]: 'idle', [ChannelState.STARTING]: 'starting', [ChannelState.ACTIVE]: 'active', [ChannelState.ERROR]: 'error',
};

function renderStatus() {
  const r = selectedRoom();
  if (!r) return;
  const s = st.statuses.get(r.id);
  if (!s) {
    ui.statusSpeaker.textContent = 'Loading…';
    ui.statusBody.replaceChildren();
    return;
  }
  const sp = s.speaker || {};
  if (sp.connected) {
    const since = sp.since ? new Date(sp.since).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    ui.statusSpeaker.textContent = `● Speaker connected${since ? ` since ${since}` : ''}${sp.sample_rate ? ` (${sp.sample_rate / 1000} kHz)` : ''}.`;
  } else {
    ui.statusSpeaker.textContent = '○ No speaker connected.';
  }
  const rows = (s.languages || []).map((l) => el('tr', { dataset: { lang: l.code, testid: 'status-row' } },
    el('th', { scope: 'row' }, langLabel(l.code)),
    el('td', {},
      el('span', { class: 'state', dataset: { state: l.state || ChannelState.IDLE } }, stateWords[l.state] || l.state || '—'),
      l.kind ? el('span', { class: 'muted small' }, ` · ${l.kind}`) : null,
      l.error ? el('div', { class: 'small', dataset: { testid: 'status-error' } }, l.error) : null,
      boothLine(l.booth)),
    el('td', { class: 'num' }, String(l.listeners || 0)),
    el('td', { class: 'num' }, formatDuration(l.session_seconds))));
  if (s.floor) {
    // The source language is a channel too: the original while the floor
    // speaks it, an interpretation of the other languages spoken.
    const f = s.floor;
    rows.push(el('tr', { dataset: { lang: f.code, testid: 'status-row' } },
      el('th', { scope: 'row' }, fmt(text.sourceRow, { lang: langLabel(f.code) })),
      el('td', {},
        el('span', { class: 'state', dataset: { state: f.state || ChannelState.IDLE } }, stateWords[f.state] || f.state || '—'),
        f.kind ? el('span', { class: 'muted small' }, ` · ${f.kind}`) : null,
        f.error ? el('div', { class: 'small', dataset: { testid: 'status-error' } }, f.error) : null),
      el('td', { class: 'num' }, String(f.listeners || 0)),
      el('td', { class: 'num' }, formatDuration(f.session_seconds))));
    rows.push(el('tr', { dataset: { lang: 'floor', testid: 'status-row' } },
      el('th', { scope: 'row' }, text.floorRow),
      el('td', { class: 'muted' }, '—'),
      el('td', { class: 'num' }, String(f.mix_listeners || 0)),
      el('td', { class: 'num' }, '')));
  }
  ui.statusBody.replaceChildren(...rows);
  renderMics(s.mics || []);
}

/** Every live mic: who, which, in what language, how loud, whether a question. */
function renderMics(mics) {
  if (!mics.length) {
    ui.micsBody.replaceChildren(el('tr', {}, el('td', { colspan: '3', class: 'muted' }, text.noMics)));
    return;
  }
  ui.micsBody.replaceChildren(...mics.map((m) => {
    const fill = el('div', { class: 'meter-fill' });
    const meter = el('div', {
      class: 'meter', role: 'meter', 'aria-valuemin': '-60', 'aria-valuemax': '0',
      'aria-label': fmt(text.micLevel, { mic: m.name || m.mic }), dataset: { testid: 'mic-level' },
    }, fill);
    setMeter(meter, fill, typeof m.level_db === 'number' ? m.level_db : -100, { silent: text.silent, level: text.levelDb });
    return el('tr', { dataset: { testid: 'mic-row', mic: m.mic, language: m.language, speaking: String(!!m.speaking), question: m.question || '' } },
      el('th', { scope: 'row' }, m.name || text.noName, ' ', el('code', {}, m.mic),
        m.question ? el('span', { class: 'tag' }, text.question) : null),
      el('td', { lang: m.language }, langLabel(m.language)),
      el('td', { class: 'level-cell' }, meter,
        el('span', { class: 'small muted' }, m.speaking ? text.speaking : text.silent)));
  }));
}

/** Tells screen reader users when a translator changes to or from error. */
function announceChanges(id, s) {
  for (const l of s.languages || []) {
    const key = `${id}/${l.code}`;
    const before = st.lastStates.get(key);
    st.lastStates.set(key, l.state);
    if (before && before !== l.state && (l.state === ChannelState.ERROR || before === ChannelState.ERROR)) {
      ui.statusAlerts.textContent = l.state === ChannelState.ERROR
        ? `${langLabel(l.code)} translator error in ${id}: ${l.error || 'unknown'}`
        : `${langLabel(l.code)} translator in ${id} recovered.`;
    }
  }
}

async function pollStatuses() {
  // Every room's status while the list is short; only the selected one otherwise.
  const ids = (st.rooms.length <= 20 ? st.rooms.map((r) => r.id) : [st.selected].filter(Boolean))
    .filter((id) => !st.deleting.has(id));
  const results = await Promise.allSettled(ids.map((id) =>
    call(`/api/v1/rooms/${encodeURIComponent(id)}/status`).then((s) => [id, s])));
  let failed = null;
  for (const res of results) {
    if (res.status === 'fulfilled') {
      const [id, s] = res.value;
      st.statuses.set(id, s);
      announceChanges(id, s);
    } else if (!(res.reason instanceof ApiError && res.reason.status === 404)) {
      failed = res.reason;
    }
  }
  if (!st.token) return;
  for (const r of st.rooms) {
    const summary = document.getElementById(`room-summary-${r.id}`);
    if (summary) summary.textContent = roomSummary(r);
  }
  renderStatus();
  ui.statusUpdated.textContent = failed
    ? `Not updating: ${describeError(failed)}`
    : `Updated ${new Date().toLocaleTimeString()}`;
}

function schedulePoll(delay = POLL_MS) {
  clearTimeout(st.pollTimer);
  st.pollTimer = setTimeout(pollLoop, delay);
}

async function pollLoop() {
  if (!st.token) return;
  try {
    if (document.visibilityState === 'visible') {
      st.polls++;
      st.polling = pollOnce();
      await st.polling;
    }
  } finally {
    if (st.token) schedulePoll();
  }
}

async function pollOnce() {
  if (st.polls % LIST_EVERY === 0 && !ui.dialog.open) await loadRooms();
  if (st.polls % (LIST_EVERY * 6) === 0) await loadEngines();
  await pollStatuses();
}

function pollNow() {
  if (st.token) schedulePoll(0);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') pollNow();
});

// ---------- create / edit ----------

function languageRow(l = {}) {
  const n = ui.fLanguages.children.length;
  const id = `lang-${Date.now().toString(36)}-${n}`;
  const used = new Set([...ui.fLanguages.querySelectorAll('select[data-testid="lang-code"]')].map((s) => s.value));
  const code = l.code || (offeredLanguages('target').find((o) => !used.has(o.code) && o.code !== ui.fSource.value) || {}).code || '';
  const row = el('div', { class: 'editor-row lang-row', dataset: { testid: 'lang-row' } },
    el('div', {}, el('label', { for: `${id}-code` }, 'Language'), languageSelect(`${id}-code`, 'target', code, 'lang-code')),
    el('div', {}, el('label', { for: `${id}-voice` }, 'Voice'),
      el('select', { id: `${id}-voice`, dataset: { testid: 'lang-voice' } },
        el('option', { value: '' }, 'Engine chooses'),
        VOICES.map((v) => el('option', { value: v, selected: v === l.voice }, v)))),
    el('div', {}, el('label', { for: `${id}-mode` }, 'Mode'),
      el('select', { id: `${id}-mode`, dataset: { testid: 'lang-mode' }, 'aria-describedby': 'mode-hint' },
        MODES.map((m) => el('option', { value: m, selected: m === (l.mode || 'auto') }, m)))),
    el('div', { class: 'check' },
      el('input', { type: 'checkbox', id: `${id}-on`, checked: !!l.always_on, dataset: { testid: 'lang-always-on' } }),
      el('label', { for: `${id}-on`, class: 'inline' }, 'Always on')),
    el('div', { class: 'check' },
      el('input', { type: 'checkbox', id: `${id}-booth`, checked: !!l.booth, dataset: { testid: 'lang-booth' } }),
      el('label', { for: `${id}-booth`, class: 'inline' }, 'Interpreters’ booth')),
    el('button', {
      type: 'button', class: 'small danger', dataset: { testid: 'lang-remove' }, 'aria-label': 'Remove this language',
      onclick: () => { row.remove(); ui.addLanguage.focus(); },
    }, 'Remove'));
  return row;
}

function glossaryRow(g = {}) {
  const id = `term-${Date.now().toString(36)}-${ui.fGlossary.children.length}`;
  const row = el('div', { class: 'editor-row gloss-row', dataset: { testid: 'gloss-row' } },
    el('div', {}, el('label', { for: `${id}-term` }, 'Term'),
      el('input', { id: `${id}-term`, type: 'text', maxlength: '100', value: g.term || '', dataset: { testid: 'gloss-term' } })),
    el('div', {}, el('label', { for: `${id}-note` }, 'Note'),
      el('input', { id: `${id}-note`, type: 'text', maxlength: '500', value: g.note || '', dataset: { testid: 'gloss-note' } })),
    el('button', {
      type: 'button', class: 'small danger', dataset: { testid: 'gloss-remove' }, 'aria-label': 'Remove this term',
      onclick: () => { row.remove(); ui.addTerm.focus(); },
    }, 'Remove'));
  // Translations are not edited here; keep them for the term they belong to.
  row.translations = g.translations || null;
  row.originalTerm = g.term || '';
  return row;
}

ui.addLanguage.addEventListener('click', () => {
  const row = languageRow();
  ui.fLanguages.append(row);
  row.querySelector('select').focus();
});
ui.addTerm.addEventListener('click', () => {
  const row = glossaryRow();
  ui.fGlossary.append(row);
  row.querySelector('input').focus();
});

function openEditor(r) {
  st.editing = r;
  ui.dialogTitle.textContent = r ? `Edit “${r.name || r.id}”` : 'New room';
  notice(ui.formError, '', '');
  const noEngines = st.engines && (st.engines.engines || []).length === 0;
  notice(ui.enginesWarning, noEngines ? 'warn' : '', noEngines ? 'No translator is running' : '',
    noEngines ? 'Any language code is accepted for now; make sure a translator node that serves them is started.' : '');
  ui.fName.value = r ? r.name : '';
  ui.fId.value = r ? r.id : '';
  ui.fId.disabled = !!r;
  let wanted = r ? r.source_language : (navigator.language || 'en').split('-')[0];
  if (!r) {
    const offered = offeredLanguages('source').map((o) => o.code);
    if (!offered.includes(wanted)) wanted = offered.includes('en') ? 'en' : offered[0] || 'en';
  }
  ui.fSource.replaceChildren(...languageOptions('source', wanted));
  ui.fSource.value = wanted;
  if (ui.fSource.selectedIndex < 0) ui.fSource.selectedIndex = 0;
  ui.fLanguages.replaceChildren(...(r ? r.languages || [] : []).map(languageRow));
  ui.fGlossary.replaceChildren(...(r ? r.glossary || [] : []).map(glossaryRow));
  ui.fNotes.value = r ? r.notes || '' : '';
  ui.fPasscode.value = r ? r.passcode || '' : '';
  ui.fMaxMics.value = r && r.max_mics ? String(r.max_mics) : '';
  ui.fQuestions.checked = !!(r && r.questions);
  ui.fRecord.checked = !!(r && r.record);
  ui.fPublicTranscript.checked = !!(r && r.public_transcript);
  ui.save.disabled = false;
  ui.dialog.showModal();
  ui.fName.focus();
}

ui.newRoom.addEventListener('click', () => openEditor(null));
ui.edit.addEventListener('click', () => {
  const r = selectedRoom();
  if (r) openEditor(r);
});
ui.cancel.addEventListener('click', () => ui.dialog.close());

/** Reads the form into an API body; a message string when something is wrong. */
function readForm() {
  const name = ui.fName.value.trim();
  if (!name) return { error: 'Give the room a name.', focus: ui.fName };
  const id = ui.fId.value.trim().toLowerCase();
  if (!st.editing && id && !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(id)) {
    return { error: 'The room code may hold only lowercase letters, digits and inner dashes.', focus: ui.fId };
  }
  const languages = [...ui.fLanguages.querySelectorAll('[data-testid="lang-row"]')].map((row) => {
    const l = {
      code: row.querySelector('[data-testid="lang-code"]').value,
      mode: row.querySelector('[data-testid="lang-mode"]').value,
    };
    const voice = row.querySelector('[data-testid="lang-voice"]').value;
    if (voice) l.voice = voice;
    if (row.querySelector('[data-testid="lang-always-on"]').checked) l.always_on = true;
    if (row.querySelector('[data-testid="lang-booth"]').checked) l.booth = true;
    return l;
  });
  const codes = languages.map((l) => l.code);
  const dup = codes.find((c, i) => codes.indexOf(c) !== i);
  if (dup) return { error: `${langLabel(dup)} is listed twice.` };
  if (codes.includes(ui.fSource.value)) {
    return { error: `${langLabel(ui.fSource.value)} is the speaker’s language: its listeners hear the original, so it needs no interpreter.` };
  }
  const glossary = [];
  for (const row of ui.fGlossary.querySelectorAll('[data-testid="gloss-row"]')) {
    const term = row.querySelector('[data-testid="gloss-term"]').value.trim();
    const note = row.querySelector('[data-testid="gloss-note"]').value.trim();
    if (!term && !note) continue;
    if (!term) return { error: 'Every glossary row needs a term.', focus: row.querySelector('input') };
    const g = { term };
    if (note) g.note = note;
    if (row.translations && term === row.originalTerm) g.translations = row.translations;
    glossary.push(g);
  }
  const maxMicsText = ui.fMaxMics.value.trim();
  const maxMics = maxMicsText === '' ? 8 : Number(maxMicsText);
  if (!Number.isInteger(maxMics) || maxMics < 1 || maxMics > 32) return { error: text.maxMics, focus: ui.fMaxMics };
  const body = {
    name,
    source_language: ui.fSource.value,
    languages,
    glossary,
    notes: ui.fNotes.value.trim(),
    passcode: ui.fPasscode.value.trim(),
    max_mics: maxMics,
    questions: ui.fQuestions.checked,
    record: ui.fRecord.checked,
    public_transcript: ui.fPublicTranscript.checked,
  };
  if (!st.editing && id) body.id = id;
  return { body };
}

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const { body, error, focus } = readForm();
  if (error) {
    notice(ui.formError, 'error', 'Check the form', error);
    if (focus) focus.focus();
    return;
  }
  ui.save.disabled = true;
  try {
    const saved = st.editing
      ? await call(`/api/v1/rooms/${encodeURIComponent(st.editing.id)}`, { method: 'PATCH', body })
      : await call('/api/v1/rooms', { method: 'POST', body });
    ui.dialog.close();
    replaceRoom(saved);
    select(saved.id, true);
    notice(ui.apiError, 'info', st.editing ? `Saved “${saved.name}”.` : `Created “${saved.name}”.`,
      st.editing ? '' : 'Share the attendee link or QR code below, and send the speaker link to the speaker.');
  } catch (err) {
    notice(ui.formError, 'error', st.editing ? 'Could not save the room' : 'Could not create the room', describeError(err));
    ui.formError.scrollIntoView({ block: 'nearest' });
  } finally {
    ui.save.disabled = false;
  }
});

// ---------- start ----------

window.addEventListener('hashchange', () => {
  const id = decodeURIComponent((location.hash.match(/^#room=([^&]+)/) || [])[1] || '');
  if (id !== st.selected) select(id);
});

if (st.token) {
  enter();
} else {
  ui.signinForm.hidden = false;
  ui.token.focus();
}
