// join.js: the join page. Turns a room code into /rooms/{code}, after
// checking the room exists so a typo gets a helpful answer here rather
// than on a broken listener page.

import { api, ApiError, describeError, normalizeRoomCode, ROOM_ID } from './api.js';
import { browserLanguages, localize, setLanguage } from './i18n.js';
import { $, fmt, notice } from './ui.js';

const text = localize('join', {
  title: 'Join a talk · babelcast',
  join: 'Join',
  checking: 'Checking…',
  enterCode: 'Enter a room code',
  enterCodeText: 'It is on the screen or the sign at the venue, like “keynote”.',
  notACode: 'That is not a room code',
  notACodeText: 'Room codes use letters, digits and dashes only, like “track-2”.',
  noRoom: 'There is no room “{room}”',
  noRoomText: 'Check the code with the organizers; it may be spelled differently or not open yet.',
  cannotCheck: 'Could not check the room',
});

const form = $('join-form');
const input = $('room-code');
const submit = $('join-submit');
const errorBox = $('join-error');

function fail(title, text) {
  notice(errorBox, 'error', title, text);
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

input.addEventListener('input', () => {
  input.removeAttribute('aria-invalid');
  notice(errorBox, '', '');
});

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const code = normalizeRoomCode(input.value);
  if (!code) {
    fail(text.enterCode, text.enterCodeText);
    return;
  }
  if (!ROOM_ID.test(code)) {
    fail(text.notACode, text.notACodeText);
    return;
  }
  submit.disabled = true;
  submit.textContent = text.checking;
  try {
    await api(`/api/v1/rooms/${encodeURIComponent(code)}/public`);
    location.assign(`/rooms/${encodeURIComponent(code)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      fail(fmt(text.noRoom, { room: code }), text.noRoomText);
    } else {
      fail(text.cannotCheck, describeError(err));
    }
  } finally {
    submit.disabled = false;
    submit.textContent = text.join;
  }
});

// A code given as ?room= (from a printed short link) is filled in.
const given = new URLSearchParams(location.search).get('room');
if (given) input.value = normalizeRoomCode(given);
input.focus();

// The page speaks the browser's language, the one the attendee reads.
setLanguage(browserLanguages()).then(() => { document.title = text.title; });
