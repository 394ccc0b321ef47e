// earlier.js: what was said on a channel before the attendee joined.
//
// The listener WebSocket sends {"type":"earlier","captions":[…],"more":…}
// after its hello: the channel's last final lines, from the room's
// transcript. Scrolling to the top of the list (or "Show earlier") asks
// GET /api/v1/rooms/{id}/earlier for older ones, with the same passcode
// as listening (in a header, never in the URL).

import { dirOf, localize } from './i18n.js';
import { FLOOR, HEADER_PASSCODE } from './protocol.js';
import { el } from './ui.js';

export const text = localize('earlier', {
  more: 'Show earlier',
  loading: 'Loading…',
  failed: 'Could not load earlier lines.',
  original: 'original',
});

export class EarlierView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.box  the section, hidden until there is something
   * @param {HTMLElement} o.list  the scrolling list of lines
   * @param {HTMLButtonElement} o.more  the "Show earlier" button
   * @param {string} o.roomId
   * @param {() => string} o.passcode
   */
  constructor(o) {
    this.o = o;
    this.lang = '';
    this.lines = [];
    this.more = false;
    this.loading = false;
    o.more.textContent = text.more;
    o.more.addEventListener('click', () => this.loadMore());
    o.list.addEventListener('scroll', () => { if (o.list.scrollTop === 0) this.loadMore(); });
  }

  /** Takes an "earlier" message of channel lang (a new channel replaces the lines). */
  take(msg, lang) {
    if (!Array.isArray(msg.captions)) return;
    if (lang !== this.lang) this.clear();
    this.lang = lang;
    if (this.lines.length === 0) {
      this.lines = msg.captions.filter((c) => typeof c.text === 'string');
      this.more = !!msg.more;
      this.render(true);
    }
  }

  clear() {
    this.lines = [];
    this.more = false;
    this.render(true);
  }

  async loadMore() {
    if (!this.more || this.loading || this.lines.length === 0) return;
    this.loading = true;
    this.o.more.textContent = text.loading;
    const first = this.lines[0];
    const q = new URLSearchParams({ lang: this.lang, before: first.start });
    try {
      const res = await fetch(`/api/v1/rooms/${encodeURIComponent(this.o.roomId)}/earlier?${q}`,
        { headers: { [HEADER_PASSCODE]: this.o.passcode() || '' }, cache: 'no-store' });
      if (!res.ok) throw new Error(String(res.status));
      const older = await res.json();
      if (this.lines[0] !== first) {
        // Another channel (or none) meanwhile: these lines are not its.
        this.o.more.textContent = text.more;
        return;
      }
      const list = this.o.list;
      const fromBottom = list.scrollHeight - list.scrollTop;
      this.lines = [...(older.captions || []), ...this.lines];
      this.more = !!older.more;
      this.render(false);
      list.scrollTop = list.scrollHeight - fromBottom; // keep the reader's place
      this.o.more.textContent = text.more;
    } catch {
      this.o.more.textContent = this.lines[0] === first ? text.failed : text.more;
    } finally {
      this.loading = false;
    }
  }

  render(toBottom) {
    const { box, list, more } = this.o;
    box.hidden = this.lines.length === 0;
    more.hidden = !this.more;
    list.replaceChildren(...this.lines.map((c) => {
      const who = [c.speaker, c.source ? text.original : ''].filter(Boolean).join(' · ');
      // A line in its language's direction, the label isolated (as captions.js).
      const lang = c.lang || (this.lang !== FLOOR ? this.lang : '');
      return el('p', { class: c.source ? 'original' : null, lang: lang || null, dir: lang ? dirOf(lang) : 'auto', dataset: { testid: 'earlier-line' } },
        who ? el('bdi', { class: 'who' }, who) : null, el('span', { class: 'said' }, c.text));
    }));
    if (toBottom) list.scrollTop = list.scrollHeight;
  }
}
