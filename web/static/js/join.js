// join.js: the join page. Turns a room code into /rooms/{code}, after
// checking the room exists so a typo gets a helpful answer here rather
// than on a broken listener page.

import { api, ApiError, describeError, normalizeRoomCode, ROOM_ID } from './api.js';
import { $, notice } from './ui.js';

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
    fail('Enter a room code', 'It is on the screen or the sign at the venue, like “keynote”.');
    return;
  }
  if (!ROOM_ID.test(code)) {
    fail('That is not a room code', 'Room codes use letters, digits and dashes only, like “track-2”.');
    return;
  }
  submit.disabled = true;
  submit.textContent = 'Checking…';
  try {
    await api(`/api/v1/rooms/${encodeURIComponent(code)}/public`);
    location.assign(`/rooms/${encodeURIComponent(code)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      fail(`There is no room “${code}”`, 'Check the code with the organizers; it may be spelled differently or not open yet.');
    } else {
      fail('Could not check the room', describeError(err));
    }
  } finally {
    submit.disabled = false;
    submit.textContent = 'Join';
  }
});

// A code given as ?room= (from a printed short link) is filled in.
const given = new URLSearchParams(location.search).get('room');
if (given) input.value = normalizeRoomCode(given);
input.focus();
