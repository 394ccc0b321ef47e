// record.js: a room's record in the organizer console: its recordings
// (Ogg/Opus, one a channel, with their length and size) and its
// transcripts (VTT, SRT, TXT of each channel), downloaded with the admin
// token, and whether audio was removed to keep the store under its bound.

import { api, apiBlob, describeError } from './api.js';
import { el, fmt, formatDuration } from './ui.js';

export const text = {
  floor: 'Floor (every mic)',
  none: 'No recording yet.',
  notRecorded: 'This room is not recorded: only its transcripts are kept. Edit it to record its audio.',
  pruned: 'Audio removed on {at} to keep recordings under the server’s bound ({size}); transcripts stay.',
  download: 'Download',
  failed: 'Download failed: {why}',
};

/** Human size of n bytes. */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export class RecordPanel {
  /**
   * @param {object} o
   * @param {HTMLElement} o.body  table body: a row a channel
   * @param {HTMLElement} o.note  what the panel says above the table
   * @param {HTMLElement} o.error  download failures
   * @param {() => string} o.token
   * @param {(code: string) => string} o.langName
   */
  constructor(o) {
    this.o = o;
    this.room = null;
  }

  /** Shows room r's record when it is another room or changed, or every 30 s. */
  refresh(r) {
    const shown = this.room;
    if (!shown || shown.id !== r.id || shown.updated_at !== r.updated_at || Date.now() - this.at > 30000) this.show(r);
  }

  /** Shows room r's record (fetching its recordings). */
  async show(r) {
    this.room = r;
    this.at = Date.now();
    let list = { recordings: [] };
    try {
      list = await api(`/api/v1/rooms/${encodeURIComponent(r.id)}/recordings`, { token: this.o.token() });
    } catch (err) {
      this.o.note.textContent = describeError(err);
      return;
    }
    if (this.room !== r) return; // another room meanwhile
    const notes = [];
    if (!r.record) notes.push(text.notRecorded);
    else if (!list.recordings.length) notes.push(text.none);
    if (list.pruned) notes.push(fmt(text.pruned, { at: new Date(list.pruned.at).toLocaleString(), size: formatBytes(list.pruned.bytes) }));
    this.o.note.textContent = notes.join(' ');
    const recs = Object.fromEntries(list.recordings.map((x) => [x.lang, x]));
    const langs = ['floor', r.source_language, ...(r.languages || []).map((l) => l.code)];
    this.o.body.replaceChildren(...langs.map((lang) => this.row(r, lang, recs[lang])));
  }

  row(r, lang, rec) {
    const base = `/api/v1/rooms/${encodeURIComponent(r.id)}`;
    const file = (ext) => `${r.id}-${lang}.${ext}`;
    const transcript = (fmtName) => this.button(fmtName.toUpperCase(), `${base}/transcript?lang=${encodeURIComponent(lang)}&format=${fmtName}`, file(fmtName));
    const secs = rec ? (new Date(rec.end) - new Date(rec.start)) / 1000 : 0;
    return el('tr', { dataset: { lang, testid: 'record-row' } },
      el('th', { scope: 'row' }, lang === 'floor' ? text.floor : this.o.langName(lang)),
      el('td', {}, rec ? formatDuration(secs) : '—'),
      el('td', { dataset: { testid: 'record-bytes' } }, rec ? formatBytes(rec.bytes) : '—'),
      el('td', {}, rec ? this.button(text.download, `${base}/recordings/${encodeURIComponent(lang)}.ogg`, file('ogg')) : ''),
      el('td', {}, transcript('vtt'), ' ', transcript('srt'), ' ', transcript('txt')));
  }

  button(label, path, filename) {
    const b = el('button', { class: 'small', type: 'button' }, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const blob = await apiBlob(path, { token: this.o.token() });
        const url = URL.createObjectURL(blob);
        const a = el('a', { href: url, download: filename });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        this.o.error.hidden = true;
      } catch (err) {
        this.o.error.hidden = false;
        this.o.error.textContent = fmt(text.failed, { why: describeError(err) });
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }
}
