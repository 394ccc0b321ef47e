// api.js: fetch helper for babelcast's JSON API. Every error becomes an
// ApiError with a message a person can read, whatever went wrong (the
// server's {"error":{"code","message"}} body, an HTTP status with no body,
// or no network at all).

import { localize, uiLanguage } from './i18n.js';
import { fmt, notice, setPill } from './ui.js';

/** An API failure: status 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const text = localize('api', {
  status400: 'The request was not accepted.',
  status401: 'You need to sign in.',
  status403: 'Not allowed.',
  status404: 'Not found.',
  status409: 'Someone else changed this at the same time. Reload and try again.',
  status413: 'That is too large.',
  status429: 'Too many attempts. Wait a moment and try again.',
  status500: 'The server had a problem. Its log says more.',
  status502: 'The server is not reachable right now.',
  status503: 'The server is busy or starting. Try again shortly.',
  status504: 'The server took too long to answer.',
  statusOther: 'The server answered {status}.',
  network: 'Cannot reach the server. Check your connection.',
  unknown: 'Something went wrong.',
  permission: 'Permission was refused.',
});

/** Turns a response that is not ok into an ApiError. */
export async function errorFromResponse(res) {
  let code = `http_${res.status}`;
  let message = text[`status${res.status}`] || fmt(text.statusOther, { status: res.status });
  try {
    const type = res.headers.get('Content-Type') || '';
    if (type.includes('json')) {
      const body = await res.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    }
  } catch {
    // keep the generic message
  }
  return new ApiError(res.status, code, message);
}

/**
 * Calls the API and returns the decoded JSON (null for 204).
 * @param {string} path  e.g. "/api/v1/rooms"
 * @param {{method?: string, body?: any, token?: string, signal?: AbortSignal}} opts
 */
export async function api(path, { method = 'GET', body, token, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', text.network);
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  if (!type.includes('json')) return null;
  return res.json();
}

/** Fetches a binary resource (a QR code) with the token, as a Blob. */
export async function apiBlob(path, { token, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', text.network);
  }
  if (!res.ok) throw await errorFromResponse(res);
  return res.blob();
}

/** A room's public description (room.Public), with languages always a list. Throws as api() does. */
export async function roomPublic(roomId) {
  const info = await api(`/api/v1/rooms/${encodeURIComponent(roomId)}/public`);
  info.languages = info.languages || [];
  return info;
}

/**
 * A room's public description for a page that cannot start without it:
 * asked again, after a pause growing to 15 s, for as long as the server
 * cannot be reached or fails. Resolves to null when there is no such room.
 * waiting(err) is told before each pause, so the page can say why it waits.
 */
export async function loadRoom(roomId, waiting) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await roomPublic(roomId);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      waiting(err);
      await new Promise((r) => setTimeout(r, Math.min(15000, 1000 * 2 ** attempt)));
    }
  }
}

/**
 * The room a speaking page is for (the speaker and conversation pages),
 * from loadRoom, with the page told what happens meanwhile in the
 * elements every room page has: the state pill and the page
 * notice while the server cannot be reached; the room's name says
 * text.roomNotFound when the link names no room (the notice says
 * text.noRoomInLink, text.askForLink) or there is no such room (gone()).
 * Resolves null when the page cannot go on.
 * @param {string} roomId
 * @param {{text: object, roomName: HTMLElement, pageNotice: HTMLElement, pill: HTMLElement, gone: () => void}} page
 */
export async function openRoom(roomId, { text: words, roomName, pageNotice, pill, gone }) {
  if (!roomId) {
    roomName.textContent = words.roomNotFound;
    notice(pageNotice, 'error', words.noRoomInLink, words.askForLink);
    return null;
  }
  const info = await loadRoom(roomId, (err) => {
    setPill(pill, 'reconnecting', words.cannotReach);
    notice(pageNotice, 'error', words.cannotLoad, fmt(words.retrying, { why: localMessage(err) }));
  });
  if (!info) {
    roomName.textContent = words.roomNotFound;
    gone();
    return null;
  }
  notice(pageNotice, '', '');
  return info;
}

/**
 * Asks an endpoint that is normally a WebSocket why its handshake failed:
 * a plain GET gets the same 401/403/404/400 JSON error the handshake got,
 * which browsers hide from WebSocket code. Returns an ApiError, or null
 * when the answer says nothing useful (network down, or the server would
 * have upgraded).
 */
export async function probeHandshake(path, { token } = {}) {
  let res;
  try {
    res = await fetch(path, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      cache: 'no-store',
    });
  } catch {
    return null;
  }
  const type = res.headers.get('Content-Type') || '';
  if (res.ok || !type.includes('json')) {
    try { await res.body?.cancel(); } catch { /* ignore */ }
    return null;
  }
  return errorFromResponse(res);
}

/** A readable message for any error thrown by this module or by code. */
export function describeError(err) {
  if (!err) return text.unknown;
  if (err instanceof ApiError) return err.message;
  if (err.name === 'NotAllowedError') return text.permission;
  return err.message || String(err);
}

/**
 * err for a page that may be translated: the server's own message says
 * more but is English, so where the page speaks another language it says
 * the HTTP status's sentence from its catalog instead.
 */
export function localMessage(err) {
  if (!(err instanceof ApiError) || uiLanguage() === 'en') return describeError(err);
  return text[`status${err.status}`] || describeError(err);
}

/**
 * The WebSocket subprotocols that present a secret to the server:
 * "babelcast" (which the server selects) and "babelcast.<kind>.<base64url
 * of the secret>". A secret there is in a request header, which load
 * balancers do not log, where a query string (?key=, ?passcode=) is in
 * every access log. kind is "key" (speaker) or "passcode" (listener).
 */
export function credentialProtocols(kind, secret) {
  if (!secret) return ['babelcast'];
  let bin = '';
  for (const b of new TextEncoder().encode(secret)) bin += String.fromCharCode(b);
  const enc = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  return ['babelcast', `babelcast.${kind}.${enc}`];
}

/** The WebSocket URL for an API path on this server. */
export function wsURL(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/** The room id from a page path like /rooms/{id} or /rooms/{id}/speak. */
export function roomIdFromPath(pathname = location.pathname) {
  const m = /^\/rooms\/([^/]+)/.exec(pathname);
  return m ? decodeURIComponent(m[1]) : '';
}

/** Room ids are lowercase slugs; this turns what people type into one. */
export function normalizeRoomCode(text) {
  return String(text || '')
    .trim()
    .toLowerCase()
    .replace(/^.*\/rooms\//, '') // a pasted link
    .replace(/[/?#].*$/, '')
    .replace(/\s+/g, '-');
}

export const ROOM_ID = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
