// questions.js: the queue of the audience's questions, as a moderator
// sees it: the speaker page (with the speaker key) and the console (with
// the admin token). It polls GET /api/v1/rooms/{id}/questions, shows the
// questions waiting and the one live, and accepts or ends them.

import { api, describeError } from './api.js';
import { el, fmt, notice } from './ui.js';

export const text = {
  accept: 'Accept',
  decline: 'Decline',
  end: 'End',
  anonymous: 'Someone in the audience',
  waiting: 'waiting since {time}',
  live: 'live now',
  inLanguage: 'in {lang}',
  acceptFailed: 'Could not accept the question',
  endFailed: 'Could not end the question',
  loadFailed: 'The questions could not be loaded',
  acceptLabel: 'Accept the question of {who}',
  declineLabel: 'Decline the question of {who}',
  endLabel: 'End the question of {who}',
};

/** How often the queue is read. */
export const QUEUE_POLL_MS = 2000;

/** The questions of a room that are not over, the live one first, then by when asked. */
export function openQuestions(list) {
  const rank = { accepted: 0, waiting: 1 };
  return (list || []).filter((q) => q.state in rank)
    .sort((a, b) => rank[a.state] - rank[b.state] || String(a.asked).localeCompare(String(b.asked)));
}

/**
 * QuestionQueue follows one room's questions.
 */
export class QuestionQueue {
  /**
   * @param {object} o
   * @param {() => string} o.roomId
   * @param {() => string} o.token  the speaker key or the admin token
   * @param {HTMLElement} o.list  a <ul> the open questions are shown in
   * @param {HTMLElement} o.empty  shown when none is open
   * @param {HTMLElement} o.error  a notice for failures
   * @param {(code: string) => string} o.langName
   * @param {(questions: object[]) => void} [o.onChange]  after every read, with the open questions
   * @param {() => boolean} [o.active]  polls only while this holds (default: always)
   * @param {(q: object, action: string) => void} [o.onAction]  called in the press, before the request
   */
  constructor(o) {
    this.o = o;
    this.questions = [];
    this.timer = 0;
    this.running = false;
    this.busy = new Set(); // question ids with a request in flight
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.poll();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.questions = [];
  }

  /** Stops, and resolves once no read of the queue is on its way. */
  async halt() {
    this.stop();
    await this.reading;
  }

  /** Reads the queue now (after an action, or the first time). */
  async poll() {
    clearTimeout(this.timer);
    if (!this.running) return;
    const roomId = this.o.roomId();
    try {
      if (roomId && (!this.o.active || this.o.active())) {
        const read = api(`/api/v1/rooms/${encodeURIComponent(roomId)}/questions`, { token: this.o.token() });
        this.reading = read.catch(() => {});
        const body = await read;
        if (!this.running || roomId !== this.o.roomId()) return;
        this.questions = openQuestions(body.questions);
        if (this.o.error.dataset.kind === 'load') notice(this.o.error, '', '');
        this.render();
        this.o.onChange?.(this.questions);
      }
    } catch (err) {
      notice(this.o.error, 'error', text.loadFailed, describeError(err));
      this.o.error.dataset.kind = 'load';
    } finally {
      if (this.running) this.timer = setTimeout(() => this.poll(), QUEUE_POLL_MS);
    }
  }

  /** Moves a question to accepted or ended. */
  async act(q, action) {
    this.o.onAction?.(q, action);
    this.busy.add(q.id);
    this.render();
    try {
      await api(`/api/v1/rooms/${encodeURIComponent(this.o.roomId())}/questions/${encodeURIComponent(q.id)}/${action}`,
        { method: 'POST', token: this.o.token() });
      notice(this.o.error, '', '');
    } catch (err) {
      notice(this.o.error, 'error', action === 'accept' ? text.acceptFailed : text.endFailed, describeError(err));
      this.o.error.dataset.kind = 'act';
    } finally {
      this.busy.delete(q.id);
      await this.poll();
    }
  }

  render() {
    const items = this.questions.map((q) => {
      const who = q.name || text.anonymous;
      const live = q.state === 'accepted';
      const busy = this.busy.has(q.id);
      const asked = q.asked ? new Date(q.asked).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
      return el('li', { class: `question${live ? ' live' : ''}`, dataset: { testid: 'question', question: q.id, state: q.state } },
        el('div', { class: 'grow' },
          el('strong', {}, who),
          el('div', { class: 'small muted' },
            fmt(text.inLanguage, { lang: this.o.langName(q.language) }), ' · ',
            live ? el('span', { class: 'state', dataset: { state: 'active' } }, text.live) : fmt(text.waiting, { time: asked }))),
        el('div', { class: 'row' },
          live ? null : el('button', {
            type: 'button', class: 'small primary', disabled: busy, dataset: { testid: 'question-accept' },
            'aria-label': fmt(text.acceptLabel, { who }), onclick: () => this.act(q, 'accept'),
          }, text.accept),
          el('button', {
            type: 'button', class: 'small danger', disabled: busy, dataset: { testid: 'question-end' },
            'aria-label': fmt(live ? text.endLabel : text.declineLabel, { who }), onclick: () => this.act(q, 'end'),
          }, live ? text.end : text.decline)));
    });
    this.o.list.replaceChildren(...items);
    this.o.empty.hidden = items.length > 0;
  }
}
