// The websocket to /ws/v1/live: subscribe, merge snapshots and deltas into one state per channel,
// reconnect with backoff, and say honestly whether the data is live (and whether the server's database is).
import { toLogin } from "./api.js";

const EVENTS_CAP = 50;

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

/** The field keying list ``name`` per the server's ``meta.keys``, if every item carries it. */
function listKey(keys, name, ...lists) {
  const key = keys[name];
  if (!key) return null;
  return lists.every((list) => list.every((item) => isObject(item) && key in item)) ? key : null;
}

function mergeList(keys, key, list, items) {
  const index = new Map();
  list.forEach((item, i) => index.set(item[key], i));
  const removed = new Set();
  for (const item of items) {
    const at = index.get(item[key]);
    if (item._removed) {
      if (at !== undefined) removed.add(at);
    } else if (at !== undefined) {
      merge(list[at], item, keys);
    } else {
      index.set(item[key], list.length);
      list.push(item);
    }
  }
  if (removed.size) {
    const kept = list.filter((_, i) => !removed.has(i));
    list.length = 0;
    list.push(...kept);
  }
}

/**
 * Merge a delta into ``target`` in place (the contract of docs/api.md): lists named in ``keys`` (the
 * snapshot's ``meta.keys``, the server's one definition) are merged item by item, anything else replaced.
 */
export function merge(target, delta, keys = target.meta?.keys || {}) {
  for (const [k, v] of Object.entries(delta)) {
    const cur = target[k];
    const key = Array.isArray(v) && Array.isArray(cur) ? listKey(keys, k, cur, v) : null;
    if (key) {
      mergeList(keys, key, cur, v);
    } else if (isObject(v) && isObject(cur)) {
      merge(cur, v, keys);
    } else {
      target[k] = v;
    }
  }
  return target;
}

// Events newest first (bounded); an alert the server sent once as resolved leaves the list (any channel's).
function tidy(data) {
  if (Array.isArray(data.events)) {
    data.events.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    if (data.events.length > EVENTS_CAP) data.events.length = EVENTS_CAP;
  }
  if (Array.isArray(data.alerts)) {
    const active = data.alerts.filter((a) => a.state !== "resolved");
    if (active.length !== data.alerts.length) { data.alerts.length = 0; data.alerts.push(...active); }
  }
}

/**
 * One live connection. ``onData(channel, state, msg)`` is called after every snapshot or delta with the
 * merged state; ``onStatus(status, info)`` with "connecting" | "live" | "reconnecting" | "stale" |
 * "database" (connected, but the server's database is away since ``info.since``: the data shown is the
 * last known state).
 */
export class LiveClient {
  constructor({ channels, heartbeatS = 10, onData, onStatus }) {
    this.channels = channels;
    this.heartbeatMs = Math.max(1, heartbeatS) * 1000;
    this.onData = onData;
    this.onStatus = onStatus || (() => {});
    this.state = new Map();
    this.ws = null;
    this.attempt = 0;
    this.lastMessageAt = 0;
    this.databaseDownSince = null; // from the server's "status" messages
    this.status = "connecting";
    this.timer = null;
    this.watchdog = setInterval(() => this.check(), 1000);
    this.open = this.open.bind(this);
  }

  start() { this.open(); return this; }

  open() {
    clearTimeout(this.timer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/v1/live`);
    this.ws = ws;
    ws.onopen = () => {
      this.databaseDownSince = null; // a server whose database is away says so first thing
      ws.send(JSON.stringify({ op: "subscribe", channels: this.channels }));
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (ev.code === 1008) { toLogin(); return; } // policy violation: no (longer a) session
      this.ws = null;
      this.setStatus("reconnecting");
      this.schedule();
    };
    ws.onerror = () => { /* onclose follows and reconnects */ };
  }

  schedule() {
    // 0.5, 1, 2, 4 s then every 5 s, each +-20 % so a whole room of walls does not reconnect in step.
    const base = Math.min(5000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(this.open, base * (0.8 + Math.random() * 0.4));
  }

  receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    this.lastMessageAt = Date.now();
    this.attempt = 0;
    if (msg.type === "snapshot" || msg.type === "delta") {
      const data = msg.data || {};
      let state = this.state.get(msg.channel);
      if (msg.type === "snapshot" || !state) {
        state = data;
        this.state.set(msg.channel, state);
      } else {
        merge(state, data);
      }
      tidy(state);
      try { this.onData(msg.channel, state, msg); } catch (err) { console.warn("render failed", msg.channel, err); }
    } else if (msg.type === "status") {
      const data = msg.data || {};
      this.databaseDownSince = data.database === "unavailable" ? data.since || msg.ts : null;
    } else if (msg.type === "error") {
      console.warn("live error", msg.channel, msg.data);
    }
    const status = this.databaseDownSince ? "database" : "live";
    if (this.status !== status) this.setStatus(status);
  }

  check() {
    const silentMs = Date.now() - this.lastMessageAt;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (this.lastMessageAt && silentMs > 2 * this.heartbeatMs) {
        this.setStatus("stale");
        // A connection silent for 3 heartbeats is dead even if TCP has not noticed: start again.
        if (silentMs > 3 * this.heartbeatMs) this.ws.close();
      }
    } else if (this.status === "reconnecting") {
      this.onStatus("reconnecting", { silentMs, stale: this.lastMessageAt && silentMs > 2 * this.heartbeatMs });
    }
  }

  setStatus(status) {
    this.status = status;
    const silentMs = Date.now() - this.lastMessageAt;
    this.onStatus(status, {
      silentMs, stale: this.lastMessageAt > 0 && silentMs > 2 * this.heartbeatMs, since: this.databaseDownSince,
    });
  }
}
