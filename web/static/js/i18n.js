// i18n.js: the attendee's pages in the attendee's own language.
//
// Messages live in translator-editable catalogs, one flat JSON object per
// language: web/static/i18n/<lang>.json, keys "<page>.<name>" (en.json is
// the reference; a Go test checks the others have every key, keep every
// {placeholder} and leave no English sentence behind). Two kinds of
// strings use them:
//   - a module's `text` object, registered with localize('page', text):
//     its values are replaced in place, so code reading text.x at render
//     time gets the current language;
//   - the page's HTML: data-i18n="key" replaces an element's text, and
//     data-i18n-attr="aria-label=key,placeholder=key2" its attributes.
// English is what the HTML and the modules already say: it needs no fetch
// and is the fallback for any key a catalog lacks.
//
// setLanguage(prefs) picks the first preference with a catalog (exact
// code, then its base: pt-BR → pt), loads it, rewrites the page, sets
// <html lang dir>, and tells onLanguage listeners, which re-render what
// they drew.

import { el, languageName } from './ui.js';

/** Languages with a catalog under /static/i18n/ (a Go test keeps this list in step with the files). */
export const CATALOGS = ['ar', 'de', 'en', 'es', 'fr', 'hi', 'id', 'it', 'ja', 'ko', 'pt', 'ru', 'vi', 'zh'];

/** Scripts written right to left, by base language code. */
const RTL = new Set(['ar', 'he', 'iw', 'fa', 'ur', 'yi', 'ps', 'sd', 'ckb', 'dv', 'ug']);

function base(code) {
  return String(code || '').toLowerCase().split(/[-_]/)[0];
}

/** The writing direction of a language code: "rtl" or "ltr". */
export function dirOf(code) {
  return RTL.has(base(code)) ? 'rtl' : 'ltr';
}

/** The catalog for the first of prefs that has one, else "en". */
export function catalogFor(prefs) {
  for (const p of prefs) {
    if (!p) continue;
    const exact = String(p).toLowerCase();
    if (CATALOGS.includes(exact)) return exact;
    if (CATALOGS.includes(base(p))) return base(p);
  }
  return 'en';
}

/** The browser's languages, most preferred first. */
export function browserLanguages() {
  return navigator.languages && navigator.languages.length ? [...navigator.languages] : [navigator.language];
}

const texts = []; // {ns, text, en}
const listeners = [];
let current = 'en';
let catalog = {};
let want = 0; // the latest setLanguage call wins

/**
 * Registers a module's messages under ns ("listen" → keys "listen.<name>")
 * and returns the same object, now following the page's language.
 */
export function localize(ns, text) {
  const entry = { ns, text, en: { ...text } };
  texts.push(entry);
  fill(entry);
  return text;
}

function fill({ ns, text, en }) {
  for (const k of Object.keys(en)) text[k] = catalog[`${ns}.${k}`] ?? en[k];
}

/** A message by its full key, in the current language (English when missing). */
export function t(key, fallback = key) {
  return catalog[key] ?? fallback;
}

/** Calls f(lang) after every change of language. */
export function onLanguage(f) {
  listeners.push(f);
}

/** The interface language now shown. */
export function uiLanguage() {
  return current;
}

/**
 * Shows the page in the first of prefs that has a catalog. Resolves to
 * true once the page changed language, false when it needed no change or
 * a later call overtook this one. A catalog that cannot be loaded leaves
 * the page as it is.
 */
export async function setLanguage(prefs) {
  const lang = catalogFor(prefs);
  const mine = ++want;
  if (lang === current && document.documentElement.dataset.uiLang === lang) return false;
  let next = {};
  if (lang !== 'en') {
    try {
      const res = await fetch(`/static/i18n/${lang}.json`, { credentials: 'same-origin' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      next = await res.json();
    } catch {
      return false; // stays in the language it has
    }
  }
  if (mine !== want) return false;
  current = lang;
  catalog = next;
  apply();
  for (const f of listeners) f(lang);
  return true;
}

/** Rewrites the page's marked text and attributes and the modules' messages. */
function apply() {
  const root = document.documentElement;
  root.lang = current;
  root.dir = dirOf(current);
  root.dataset.uiLang = current; // the catalog in force (not data-i18n: that marks text to replace)
  for (const e of texts) fill(e);
  for (const node of document.querySelectorAll('[data-i18n]')) {
    if (node.dataset.i18nEn === undefined) node.dataset.i18nEn = node.textContent;
    node.textContent = t(node.dataset.i18n, node.dataset.i18nEn);
  }
  for (const node of document.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split('=').map((s) => s.trim());
      const keep = `i18nEn${attr.replace(/(^|-)(\w)/g, (m, d, c) => c.toUpperCase())}`;
      if (node.dataset[keep] === undefined) node.dataset[keep] = node.getAttribute(attr) ?? '';
      node.setAttribute(attr, t(key, node.dataset[keep]));
    }
  }
}

/**
 * One choice of a language list (a radio in a big label): the language's
 * own name, isolated in its own direction, and under it its name in the
 * page's language (filled by nameLanguages); the card itself runs in the
 * page's direction. input holds the radio's attributes.
 */
export function languageOption(code, name, input) {
  return el('label', { class: 'lang-option', dataset: { testid: 'lang-option', lang: code } },
    el('input', { type: 'radio', id: `lang-${code}`, value: code, ...input }),
    el('span', {}, el('bdi', { lang: code, dir: dirOf(code) }, name), el('small', {})));
}

/** Writes each languageOption's name in the page's language (none where it is the same). */
export function nameLanguages(container) {
  for (const opt of container.querySelectorAll('.lang-option')) {
    const small = opt.querySelector('small');
    const name = languageName(opt.dataset.lang, current);
    const same = name.toLocaleLowerCase() === opt.querySelector('bdi').textContent.toLocaleLowerCase();
    small.textContent = same ? '' : name;
    small.lang = current;
    small.dir = dirOf(current);
  }
}
