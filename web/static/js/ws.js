// ws.js: a WebSocket that reconnects by itself with exponential backoff
// and jitter, for the listener and speaker pages.
//
// The owner decides, from each close, whether to try again (onclose
// returns false to stop), so close codes like Close.ROOM_GONE or
// Close.REPLACED (another speaker took over) end the retries while network
// drops do not.

import { Close } from './protocol.js';

export class ReconnectingSocket {
  /**
   * @param {() => string} url  called before each attempt, so the URL may change
   * @param {object} opts
   * @param {number} [opts.minDelay=500]   first retry delay, ms
   * @param {number} [opts.maxDelay=15000] cap on the retry delay, ms
   * @param {number} [opts.stableAfter=5000] a connection open this long resets the backoff
   * @param {(ws: WebSocket) => void} [opts.onopen]
   * @param {(ev: MessageEvent) => void} [opts.onmessage]
   * @param {(info: {code: number, reason: string, opened: boolean, attempt: number}) =>
   *          (boolean|number|Promise<boolean|number>)} [opts.onclose]
   *        return false to stop, true to retry after the backoff delay, or a number of ms to retry after
   * @param {(delayMs: number, attempt: number) => void} [opts.onretry]  a retry is scheduled
   * @param {() => string[]} [opts.protocols]  subprotocols to offer, asked before each attempt
   */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = { minDelay: 500, maxDelay: 15000, stableAfter: 5000, ...opts };
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.timer = 0;
    this.openedAt = 0;
    this.onOnline = () => { if (!this.stopped && !this.ws) this.retryNow(); };
  }

  /** Starts connecting (again). */
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  /** Closes for good: no more retries. */
  stop(code = Close.NORMAL, reason = '') {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(code, reason); } catch { /* already closed */ }
    }
  }

  /** Drops the current connection and connects again at once. */
  retryNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(Close.NORMAL, 'reconnect'); } catch { /* ignore */ }
    }
    this.connect();
  }

  /** True while the socket is open. */
  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes queued in the browser, not yet sent. */
  get bufferedAmount() {
    return this.ws ? this.ws.bufferedAmount : 0;
  }

  /** Sends if open; returns whether it did. */
  send(data) {
    if (!this.isOpen) return false;
    this.ws.send(data);
    return true;
  }

  connect() {
    let ws;
    try {
      ws = this.opts.protocols ? new WebSocket(this.url(), this.opts.protocols()) : new WebSocket(this.url());
    } catch (err) {
      // A malformed URL will not get better by retrying.
      this.stopped = true;
      this.opts.onclose?.({ code: 0, reason: String(err.message || err), opened: false, attempt: this.attempt });
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.openedAt = performance.now();
      this.opts.onopen?.(ws);
    };
    ws.onmessage = (ev) => this.opts.onmessage?.(ev);
    ws.onerror = () => { /* onclose follows with the code */ };
    ws.onclose = async (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (opened && performance.now() - this.openedAt >= this.opts.stableAfter) this.attempt = 0;
      const info = { code: ev.code, reason: ev.reason, opened, attempt: this.attempt };
      let decision = true;
      try {
        if (this.opts.onclose) decision = await this.opts.onclose(info);
      } catch (err) {
        console.warn('babelcast: deciding on a reconnect failed; retrying', err);
      }
      if (this.stopped || decision === false) {
        this.stop();
        return;
      }
      // A newer connection began while the owner decided (retryNow on
      // 'online', or stop() and start()): it is the one that counts.
      if (this.ws) return;
      const delay = typeof decision === 'number' ? decision : this.backoff();
      this.attempt++;
      this.opts.onretry?.(delay, this.attempt);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { if (!this.stopped && !this.ws) this.connect(); }, delay);
    };
  }

  /** Delay before the next attempt: exponential, capped, with jitter. */
  backoff() {
    const { minDelay, maxDelay } = this.opts;
    const base = Math.min(maxDelay, minDelay * 2 ** Math.min(this.attempt, 10));
    return Math.round(base / 2 + Math.random() * base / 2);
  }
}
