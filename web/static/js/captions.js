// captions.js: a channel's caption lines on a page, shared by the attendee
// page, the conversation page and the speaker page.
//
// A line grows (final:false, text the whole line so far) until it is
// final; the channel numbers its lines (segment), the original's and the
// interpretation's in one sequence. A line says who spoke (speaker) when
// known, and source:true marks what was said in the channel's language
// (the original) as opposed to an interpretation. Final lines go to a
// screen reader's live region too, a few at a time.

import { dirOf, localize } from './i18n.js';
import { el } from './ui.js';

export const text = localize('captions', {
  original: 'original',
});

/** The parts of a caption message a view keeps. */
function lineOf(msg) {
  return {
    seg: msg.segment ?? null,
    lang: msg.lang || '',
    text: '',
    final: false,
    speaker: msg.speaker || '',
    source: !!msg.source,
    sourceLanguage: msg.source_language || '',
  };
}

export class CaptionView {
  /**
   * @param {HTMLElement} container  where the lines are shown
   * @param {HTMLElement} live  an aria-live log the final lines are announced in
   * @param {object} [o]
   * @param {number} [o.shown=4]  lines shown (0: all kept)
   * @param {number} [o.keep=20]  lines kept
   * @param {number} [o.announced=3]  final lines kept in the live region
   * @param {(line: object) => string} [o.who]  the label of a line's speaker ('' for none)
   * @param {(line: object) => string} [o.kind]  a class naming the line's side (e.g. mine/theirs)
   * @param {boolean} [o.markOriginal=true]  tag original lines once the channel also had interpretations
   * @param {() => void} [o.onRender]
   */
  constructor(container, live, o = {}) {
    this.container = container;
    this.live = live;
    this.o = { shown: 4, keep: 20, announced: 3, who: (l) => l.speaker, kind: () => '', markOriginal: true, ...o };
    this.lines = [];
    this.sawSource = false;
    this.sawInterp = false;
    this.announcing = true;
  }

  /** Whether final lines are read out (off while the person hid the captions). */
  setAnnouncing(on) {
    this.announcing = !!on;
    if (!on) this.live.replaceChildren();
  }

  add(msg) {
    if (typeof msg.text !== 'string') return;
    const lines = this.lines;
    const seg = msg.segment ?? null;
    let line = null;
    // A line may be finalized twice (the second time with its full
    // stop): the same segment is the same line, final or not.
    for (let i = lines.length - 1; i >= Math.max(0, lines.length - 8); i--) {
      if (seg !== null && lines[i].seg === seg && lines[i].lang === (msg.lang || '')) {
        line = lines[i];
        break;
      }
    }
    if (!line) {
      if (!msg.text.trim()) return;
      line = lineOf(msg);
      lines.push(line);
      if (lines.length > this.o.keep) lines.splice(0, lines.length - this.o.keep);
    }
    line.text = msg.text;
    line.final = !!msg.final;
    if (msg.speaker) line.speaker = msg.speaker; // a line's speaker is fixed at its first words
    if (line.source) this.sawSource = true;
    else this.sawInterp = true;
    this.render();
    if (line.final && line.text.trim() && !line.announced) {
      line.announced = true;
      this.announce(line);
    }
  }

  clear() {
    this.lines = [];
    this.sawSource = this.sawInterp = false;
    this.render();
  }

  /** Original lines are tagged only where the channel mixes both kinds. */
  tagged(line) {
    return this.o.markOriginal && line.source && this.sawInterp;
  }

  label(line) {
    const who = this.o.who(line);
    if (!this.tagged(line)) return who;
    return who ? `${who} · ${text.original}` : text.original;
  }

  render() {
    const shown = this.o.shown ? this.lines.slice(-this.o.shown) : this.lines;
    this.container.replaceChildren(...shown.map((l, i) => {
      const label = this.label(l);
      const cls = [l.final ? (i < shown.length - 1 ? 'older' : '') : 'partial', this.o.kind(l), l.source ? 'original' : '']
        .filter(Boolean).join(' ');
      // A line runs in its own language's direction; the label, in the
      // page's language, is isolated from it so neither reorders the other.
      const page = document.documentElement.lang;
      return el('p', { class: cls || null, lang: l.lang || null, dir: l.lang ? dirOf(l.lang) : 'auto', dataset: { testid: 'caption-line', speaker: l.speaker, source: String(l.source) } },
        label ? el('bdi', { class: 'who', lang: page || null, dir: page ? dirOf(page) : null }, label) : null,
        el('span', { class: 'said' }, l.text));
    }));
    this.o.onRender?.();
  }

  announce(line) {
    if (!this.announcing) return;
    const label = this.label(line);
    this.live.append(el('p', { lang: line.lang || null, dir: line.lang ? dirOf(line.lang) : 'auto' }, label ? `${label}: ${line.text}` : line.text));
    while (this.live.childElementCount > this.o.announced) this.live.firstElementChild.remove();
  }
}
