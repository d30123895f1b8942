// The websocket to /ws/v1/live: subscribe, merge snapshots and deltas into one state per channel,
// reconnect with backoff, and say honestly whether the data is live.
import { toLogin } from "./api.js";

const EVENTS_CAP = 50;

/** The key that identifies an object of a keyed list, by the list's name. */
function keyOf(listName, item) {
  if (listName === "events") return `${item.time}|${item.device_id}|${item.type}`;
  if (listName === "alerts") return item.id;
  if (listName === "zones") return item.zone_id;
  if ("device_id" in item) return item.device_id;
  if ("id" in item) return item.id;
  return item.zone_id;
}

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

function mergeList(name, list, items) {
  const index = new Map();
  list.forEach((item, i) => index.set(keyOf(name, item), i));
  const removed = new Set();
  for (const item of items) {
    const key = keyOf(name, item);
    const at = index.get(key);
    if (item._removed) {
      if (at !== undefined) removed.add(at);
    } else if (at !== undefined) {
      merge(list[at], item);
    } else {
      index.set(key, list.length);
      list.push(item);
    }
  }
  if (removed.size) {
    const kept = list.filter((_, i) => !removed.has(i));
    list.length = 0;
    list.push(...kept);
  }
}

/** Merge a delta into ``target`` in place (the contract of docs/api.md). */
export function merge(target, delta) {
  for (const [k, v] of Object.entries(delta)) {
    const cur = target[k];
    if (Array.isArray(v) && Array.isArray(cur) && (v.length ? isObject(v[0]) : cur.length && isObject(cur[0]))) {
      mergeList(k, cur, v);
    } else if (isObject(v) && isObject(cur)) {
      merge(cur, v);
    } else {
      target[k] = v;
    }
  }
  return target;
}

function tidy(channel, data) {
  if (Array.isArray(data.events)) {
    data.events.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    if (data.events.length > EVENTS_CAP) data.events.length = EVENTS_CAP;
  }
  if (channel === "alerts" && Array.isArray(data.alerts)) {
    const active = data.alerts.filter((a) => a.state !== "resolved");
    if (active.length !== data.alerts.length) { data.alerts.length = 0; data.alerts.push(...active); }
  }
}

/**
 * One live connection. ``onData(channel, state, msg)`` is called after every snapshot or delta with the
 * merged state; ``onStatus(status, info)`` with "connecting" | "live" | "reconnecting" | "stale".
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
      tidy(msg.channel, state);
      try { this.onData(msg.channel, state, msg); } catch (err) { console.warn("render failed", msg.channel, err); }
    } else if (msg.type === "error") {
      console.warn("live error", msg.channel, msg.data);
    }
    if (this.status !== "live") this.setStatus("live");
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
    this.onStatus(status, { silentMs, stale: this.lastMessageAt > 0 && silentMs > 2 * this.heartbeatMs });
  }
}
