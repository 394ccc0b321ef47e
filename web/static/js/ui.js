// ui.js: small DOM helpers shared by the pages. Text from the server or
// from people always goes in through textContent, never as HTML.

/** document.getElementById that fails loudly when a page lost an element. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page has no #${id}`);
  return el;
}

/**
 * Builds an element: el('button', {class: 'small', onclick: f}, 'Text', child…).
 * Attributes starting with "on" become listeners; `dataset` and `aria` take objects.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'text') node.textContent = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Shows a notice (kind: error|warn|info) in a container, or hides it when text is empty. */
export function notice(container, kind, title, text = '') {
  container.replaceChildren();
  if (!title && !text) {
    container.hidden = true;
    return;
  }
  container.className = `notice ${kind}`;
  if (title) container.append(el('strong', {}, title));
  if (text) container.append(typeof text === 'string' ? el('span', {}, text) : text);
  container.hidden = false;
}

/** Storage that never throws (private modes, disabled storage). */
export const store = {
  get(kind, key) {
    try { return window[kind].getItem(key); } catch { return null; }
  },
  set(kind, key, value) {
    try {
      if (value === null || value === undefined || value === '') window[kind].removeItem(key);
      else window[kind].setItem(key, value);
    } catch { /* not kept: fine */ }
  },
};

const englishNames = typeof Intl.DisplayNames === 'function'
  ? new Intl.DisplayNames(['en'], { type: 'language' }) : null;

/** English name of a language code, from the browser ("es" → "Spanish"). */
export function englishName(code) {
  try { return englishNames?.of(code) || code; } catch { return code; }
}

/** A language's name in another language ("es", "fr" → "espagnol"), from the browser. */
export function languageName(code, inLang) {
  try {
    return new Intl.DisplayNames([inLang], { type: 'language' }).of(code) || code;
  } catch {
    return code;
  }
}

/** A language's name in itself ("es" → "Español"), from the browser. */
export function nativeName(code) {
  try {
    const n = new Intl.DisplayNames([code], { type: 'language' }).of(code) || code;
    return n.charAt(0).toLocaleUpperCase(code) + n.slice(1);
  } catch {
    return code;
  }
}

/** Formats seconds as "1 h 02 min", "12 min", "45 s". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Copies text, falling back to selecting it for the person to copy. */
export async function copyText(text, fallbackEl) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackEl) {
      const range = document.createRange();
      range.selectNodeContents(fallbackEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    return false;
  }
}

/**
 * Fills a message's {placeholders}: fmt('Hello {name}', {name: 'Ana'}).
 * Pages keep their sentences whole, with placeholders, in one `text`
 * object each, so a catalog of translations can replace them as they are.
 */
export function fmt(template, vars = {}) {
  return String(template).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

/**
 * A secret handed over in the link's fragment (#key=…: browsers never send
 * a fragment to the server), kept in sessionStorage under storageKey and
 * taken off the address bar (and out of history) at once, so it is not
 * shown or shared by accident. Returns it, or what this tab kept before.
 */
export function secretFromFragment(storageKey, name = 'key') {
  const frag = new URLSearchParams(location.hash.slice(1));
  const v = frag.get(name);
  if (v) {
    store.set('sessionStorage', storageKey, v);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return v || store.get('sessionStorage', storageKey) || '';
}

/** A short random id of lowercase letters and digits. */
export function randomId(n = 6) {
  const abc = 'abcdefghijkmnpqrstuvwxyz23456789'; // no look-alikes
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => abc[b % abc.length]).join('');
}

/**
 * Shows a page's state in its pill (role=status): data-state for styles
 * and tests, and the label, written only when it changes, so a screen
 * reader announces a change and not every render.
 */
export function setPill(pill, state, label) {
  pill.dataset.state = state;
  if (pill.textContent !== label) pill.textContent = label;
}

/** Sets a level meter (role=meter with a fill child) to db, -60…0. */
export function setMeter(meter, fill, db, words = { silent: 'silent', level: '{db} decibels' }) {
  const v = Math.max(-60, Math.min(0, db));
  fill.style.width = `${((v + 60) / 60) * 100}%`;
  meter.setAttribute('aria-valuenow', String(Math.round(v)));
  meter.setAttribute('aria-valuetext', db <= -60 ? words.silent : fmt(words.level, { db: Math.round(db) }));
}
