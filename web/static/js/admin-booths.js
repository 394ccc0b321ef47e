// admin-booths.js: the console's part about interpreters' booths: each
// booth's link and QR code (secret: the booth key rides in the link's
// fragment), shown on request, and a booth's staffing in the status table.

import { apiBlob, describeError } from './api.js';
import { el, fmt, nativeName } from './ui.js';

export const text = {
  booth: 'Booth {lang}',
  secret: '(secret: an interpreter’s link)',
  show: 'Show',
  hide: 'Hide',
  qrAlt: 'QR code of the {lang} booth link',
  empty: 'booth empty',
  staffed: 'booth: {names}',
  onAir: '{name} on air',
  muted: '{name} on air, muted',
  nobodyOnAir: 'nobody on air: the AI is heard',
  someone: 'someone',
  qrFailed: 'QR code unavailable: {why}',
};

/**
 * Fills container with a figure per booth of room r: its link and QR code,
 * hidden until shown. QR codes are fetched with the admin token.
 */
export function renderBoothLinks(container, r, token) {
  const booths = (r.links && r.links.booths) || {};
  container.hidden = Object.keys(booths).length === 0;
  container.replaceChildren(...Object.entries(booths).map(([lang, link]) => {
    const img = el('img', { class: 'qr', alt: fmt(text.qrAlt, { lang: nativeName(lang) }), hidden: true, dataset: { testid: 'qr-booth' } });
    const box = el('p', { class: 'link-box secret', dataset: { testid: 'link-booth', lang } }, link);
    const status = el('p', { class: 'muted small', role: 'status' });
    const button = el('button', {
      type: 'button', class: 'small', 'aria-expanded': 'false', dataset: { testid: 'show-booth', lang },
      onclick: async () => {
        const shown = button.getAttribute('aria-expanded') !== 'true';
        button.setAttribute('aria-expanded', String(shown));
        button.textContent = shown ? text.hide : text.show;
        box.classList.toggle('shown', shown);
        img.hidden = !shown;
        if (shown && !img.src) {
          try {
            const blob = await apiBlob(`/api/v1/rooms/${encodeURIComponent(r.id)}/qr.png?for=booth:${encodeURIComponent(lang)}`, { token });
            img.src = URL.createObjectURL(blob);
          } catch (err) {
            status.textContent = fmt(text.qrFailed, { why: describeError(err) });
          }
        }
      },
    }, text.show);
    return el('figure', { dataset: { testid: 'booth-share', lang } },
      el('figcaption', {}, el('strong', {}, fmt(text.booth, { lang: nativeName(lang) })), ' ', el('span', { class: 'muted small' }, text.secret)),
      img, box, el('div', { class: 'row' }, button), status);
  }));
}

/** A booth's staffing as the status API says it (null: the channel has no booth). */
export function boothLine(b) {
  if (!b) return null;
  const names = b.interpreters.map((i) => i.name || text.someone);
  const air = b.interpreters.find((i) => i.on_air);
  const words = !b.staffed ? text.empty : [
    fmt(text.staffed, { names: names.join(', ') }),
    air ? fmt(air.muted ? text.muted : text.onAir, { name: air.name || text.someone }) : text.nobodyOnAir,
  ].join(' · ');
  return el('div', { class: 'small', dataset: { testid: 'status-booth', staffed: String(b.staffed), onAir: String(!!air) } }, words);
}
