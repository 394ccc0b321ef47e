// ask.js: an attendee's question, on the attendee page, where the room
// takes questions from the audience.
//
// The attendee asks (name optional; the language is the channel they
// listen to) and gets the question's token, kept in this tab only
// (sessionStorage: a reload follows the same question; never in a URL the
// page goes to). The page follows the question with the token: waiting,
// then accepted by the moderator (the speaker or the organizers), when
// this phone becomes a mic of the room (mic.js, the token as its key; the
// server makes it mic q-<id> in the question's language) until the
// attendee or the moderator ends it.

import { localize } from './i18n.js';
import { api, ApiError, describeError } from './api.js';
import { LiveGuard, Microphone, MicLink, mediaSupported, micError, noMediaReason, refusal } from './mic.js';
import { Close } from './protocol.js';
import { $, fmt, notice, setMeter, store } from './ui.js';

const text = localize('ask', {
  hint: 'Ask the speaker a question out loud, in {lang}. Everyone hears it in their own language.',
  willSpeak: 'You will speak in {lang}, into this phone. Use earphones if you are listening here.',
  asking: 'Sending your question…',
  waiting: 'Your question is in the queue. Keep this page open: when the moderator gives you the floor, this phone becomes a microphone.',
  connecting: 'The moderator gave you the floor. Starting your microphone…',
  live: 'You’re live: speak now.',
  tapToSpeak: 'Tap to start speaking',
  end: 'End my question',
  withdraw: 'Withdraw my question',
  endedBySelf: 'Your question has ended. Thank you!',
  endedByModerator: 'The moderator ended your question. You are back to listening.',
  declined: 'The moderator did not take your question this time.',
  replaced: 'Your question goes on in another tab or device.',
  gone: 'Your question is no longer in the queue.',
  askFailed: 'Could not ask your question',
  micFailed: 'The microphone could not start',
  serverRefused: 'The server refused the microphone',
  levelSilent: 'silent',
  levelDb: '{db} decibels',
});

const POLL_MS = 2000;

export class QuestionFlow {
  /**
   * @param {object} o
   * @param {string} o.roomId
   * @param {() => string} o.language  the language to ask in: the attendee's channel
   * @param {() => string} o.languageName
   * @param {() => string} o.passcode
   * @param {(live: boolean) => void} o.onLive  this phone is (no longer) a mic of the room
   */
  constructor(o) {
    this.o = o;
    this.storageKey = `babelcast.question.${o.roomId}`;
    this.ui = {
      section: $('ask'),
      hint: $('ask-hint'),
      open: $('ask-open'),
      form: $('ask-form'),
      name: $('ask-name'),
      lang: $('ask-lang'),
      submit: $('ask-submit'),
      cancel: $('ask-cancel'),
      status: $('ask-status'),
      live: $('ask-live'),
      meter: $('ask-level'),
      meterFill: $('ask-level-fill'),
      tap: $('ask-tap'),
      end: $('ask-end'),
      notice: $('ask-notice'),
    };
    // The question asked from this tab: {id, token, name, language, state}.
    this.q = null;
    this.phase = 'idle'; // idle | form | asking | waiting | starting | live
    this.mic = null;
    this.link = null;
    this.timer = 0;
    this.endedBySelf = false;
    this.gone = false;
    // The question whose mic could not start, or the server refused: not
    // started again by every poll (each try would ask for the microphone
    // again and restart the attendee's streams), until the question ends.
    this.micFailed = '';
    this.guard = new LiveGuard(() => this.phase === 'live');

    const u = this.ui;
    u.section.hidden = false;
    u.open.addEventListener('click', () => this.openForm());
    u.cancel.addEventListener('click', () => { this.phase = 'idle'; this.render(); u.open.focus(); });
    u.form.addEventListener('submit', (ev) => { ev.preventDefault(); this.ask(); });
    u.end.addEventListener('click', () => this.end());
    u.tap.addEventListener('click', () => { this.mic?.ctx?.resume().catch(() => {}); });

    try { this.q = JSON.parse(store.get('sessionStorage', this.storageKey) || 'null'); } catch { this.q = null; }
    if (this.q && this.q.token) {
      this.phase = 'waiting';
      this.poll();
    }
    this.render();
  }

  keep() {
    store.set('sessionStorage', this.storageKey, this.q ? JSON.stringify(this.q) : '');
  }

  openForm() {
    this.phase = 'form';
    notice(this.ui.notice, '', '');
    this.render();
    this.ui.name.focus();
  }

  async ask() {
    if (!mediaSupported()) {
      notice(this.ui.notice, 'error', text.askFailed, noMediaReason());
      return;
    }
    this.phase = 'asking';
    this.render();
    // Ask for the microphone now, in the press: the browser's question
    // comes while the attendee expects it, not when the floor is given.
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      s.getTracks().forEach((t) => t.stop());
    } catch (err) {
      this.phase = 'form';
      this.render();
      notice(this.ui.notice, 'error', text.micFailed, micError(err));
      return;
    }
    try {
      const q = await api(`/api/v1/rooms/${encodeURIComponent(this.o.roomId)}/questions`, {
        method: 'POST',
        body: { name: this.ui.name.value.trim(), language: this.o.language(), passcode: this.o.passcode() },
      });
      this.q = { id: q.id, token: q.token, name: q.name || '', language: q.language, state: q.state };
      this.keep();
      this.endedBySelf = false;
      this.phase = 'waiting';
      this.render();
      this.ui.end.focus();
      this.schedule();
    } catch (err) {
      this.phase = 'form';
      this.render();
      notice(this.ui.notice, 'error', text.askFailed, describeError(err));
    }
  }

  schedule(delay = POLL_MS) {
    clearTimeout(this.timer);
    if (this.q) this.timer = setTimeout(() => this.poll(), delay);
  }

  /** Follows the question with its token. */
  async poll() {
    const q = this.q;
    if (!q) return;
    try {
      const now = await api(`/api/v1/rooms/${encodeURIComponent(this.o.roomId)}/questions/${encodeURIComponent(q.id)}`, { token: q.token });
      if (this.q !== q) return;
      q.state = now.state;
      this.keep();
      if (now.state === 'accepted' && this.micFailed !== q.id) this.startMic();
      else if (now.state === 'ended') return this.finish(this.endedBySelf ? 'self' : this.phase === 'waiting' ? 'declined' : 'moderator');
    } catch (err) {
      if (this.q !== q) return;
      if (err instanceof ApiError && (err.status === 404 || err.status === 403 || err.status === 401)) {
        return this.finish('gone'); // the room, or the question, is no more
      }
      // The network: try again at the next poll.
    }
    this.schedule();
  }

  /** The floor is ours: start the microphone and the mic's connection. */
  async startMic() {
    if (this.mic) return;
    this.phase = 'starting';
    this.o.onLive(true);
    this.render();
    const q = this.q;
    this.mic = new Microphone({
      onFrame: (f) => {
        setMeter(this.ui.meter, this.ui.meterFill, f.rmsDb, { silent: text.levelSilent, level: text.levelDb });
        this.link?.send(f.pcm);
      },
    });
    // Sound starts without a press where the attendee pressed before
    // (Ask); where the browser still wants one, a button asks for it.
    const tapLater = setTimeout(() => { if (this.mic?.ctx?.state === 'suspended') this.ui.tap.hidden = false; }, 1500);
    try {
      await this.mic.start();
    } catch (err) {
      clearTimeout(tapLater);
      if (this.q !== q) return; // ended meanwhile
      this.micFailed = q.id;
      notice(this.ui.notice, 'error', text.micFailed, micError(err));
      this.stopMic();
      return;
    }
    clearTimeout(tapLater);
    this.ui.tap.hidden = true;
    if (!this.mic || this.q !== q) return; // ended meanwhile
    this.link = new MicLink({
      roomId: this.o.roomId,
      key: () => q.token,
      sampleRate: () => this.mic.sampleRate,
      onReady: () => {
        const was = this.phase;
        this.phase = 'live';
        this.render();
        if (was !== 'live') this.ui.section.scrollIntoView({ block: 'nearest' }); // the End button, on a phone
        this.guard.keepAwake();
      },
      onClose: (info) => this.onClose(info),
      onRetry: () => { this.phase = 'starting'; this.render(); },
    });
    this.link.start();
  }

  onClose({ code }) {
    if (code === Close.NORMAL) {
      // The server ends a question's mic with 1000 when the question ends.
      this.finish(this.endedBySelf ? 'self' : 'moderator');
      return false;
    }
    if (code === Close.REPLACED) {
      this.finish('replaced');
      return false;
    }
    if (code === Close.ROOM_GONE) {
      this.finish('gone');
      return false;
    }
    const refused = refusal(code, this.link && this.link.lastError);
    if (refused) {
      this.micFailed = this.q ? this.q.id : '';
      notice(this.ui.notice, 'error', text.serverRefused, refused.text);
      this.stopMic();
      return false;
    }
    return true; // the network: reconnect
  }

  stopMic() {
    if (this.link) this.link.stop('question over');
    if (this.mic) this.mic.stop();
    const was = !!(this.link || this.mic);
    this.link = this.mic = null;
    this.guard.release();
    this.ui.tap.hidden = true;
    if (was) this.o.onLive(false);
  }

  async end() {
    const q = this.q;
    if (!q) return;
    this.endedBySelf = true;
    this.ui.end.disabled = true;
    try {
      await api(`/api/v1/rooms/${encodeURIComponent(this.o.roomId)}/questions/${encodeURIComponent(q.id)}/end`, { method: 'POST', token: q.token });
      this.finish('self');
    } catch (err) {
      if (err instanceof ApiError && (err.status === 409 || err.status === 404)) {
        this.finish('self'); // over already
      } else {
        this.endedBySelf = false;
        notice(this.ui.notice, 'error', text.askFailed, describeError(err));
      }
    } finally {
      this.ui.end.disabled = false;
    }
  }

  /** The question is over; why: self | moderator | declined | replaced | gone. */
  finish(why) {
    if (!this.q) return;
    clearTimeout(this.timer);
    this.stopMic();
    this.q = null;
    this.micFailed = '';
    this.keep();
    this.phase = 'idle';
    const words = { self: text.endedBySelf, moderator: text.endedByModerator, declined: text.declined, replaced: text.replaced, gone: text.gone }[why];
    notice(this.ui.notice, why === 'self' ? 'info' : 'warn', words);
    this.ui.notice.dataset.ended = why;
    this.render();
  }

  /** The room was deleted: nothing more to ask. */
  roomGone() {
    clearTimeout(this.timer);
    this.stopMic();
    this.q = null;
    this.keep();
    this.gone = true;
    this.ui.section.hidden = true;
  }

  render() {
    const u = this.ui;
    if (this.gone) return;
    const lang = this.o.languageName();
    u.hint.textContent = fmt(text.hint, { lang });
    u.lang.textContent = fmt(text.willSpeak, { lang });
    u.open.hidden = this.phase !== 'idle';
    u.hint.hidden = this.phase !== 'idle';
    u.form.hidden = this.phase !== 'form' && this.phase !== 'asking';
    u.submit.disabled = this.phase === 'asking';
    const following = ['waiting', 'starting', 'live'].includes(this.phase);
    u.end.hidden = !following;
    u.end.textContent = this.phase === 'waiting' ? text.withdraw : text.end;
    u.live.hidden = this.phase !== 'starting' && this.phase !== 'live';
    u.section.dataset.phase = this.phase;
    const status = { asking: text.asking, waiting: text.waiting, starting: text.connecting, live: text.live }[this.phase] || '';
    if (u.status.textContent !== status) u.status.textContent = status;
    u.status.hidden = !status;
  }
}
