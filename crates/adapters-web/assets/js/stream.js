// The session's live event stream: EventSource on a one-use stream ticket
// (tokens never go in URLs), resumed after any drop with a fresh ticket and
// `after=<last seq received>`, so that nothing is lost or shown twice, even
// across a server restart. Events are handed over strictly in seq order; events
// of types this page does not know (from a newer server) arrive as gaps in the
// seqs, and are read from the log as JSON so they are shown too. The types come
// from `catalog.js`, which the server writes from its own event catalog.

import { ApiError, get, post } from "./api.js";
import { EVENT_TYPES } from "./catalog.js";


const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class EventStream {
  /**
   * `onEvent(event)` gets each event once, in order; `onState(state, error)`
   * hears "connecting", "live", "reconnecting", "ended" (the stream is over:
   * the session closed or `isLast` said so) and "gone" (the credential no
   * longer opens it: 401/403/404). `isLast(event)` tells whether an event ends
   * this reader's stream (its own departure).
   */
  constructor({ sessionId, token, onEvent, onState, isLast = () => false }) {
    this.sessionId = sessionId;
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState;
    this.isLast = isLast;
    this.received = 0;
    this.ended = false;
    this.source = null;
    this.queue = Promise.resolve();
  }

  /** Opens the stream after `after` (0: from the start). */
  start(after = 0) {
    this.received = after;
    this.onState("connecting");
    this.connect();
  }

  /** Stops for good. */
  stop() {
    this.ended = true;
    this.source?.close();
    this.source = null;
  }

  async connect() {
    for (let delay = 250; !this.ended; delay = Math.min(delay * 2, 2000)) {
      try {
        const { ticket } = await post(
          `/v1/sessions/${encodeURIComponent(this.sessionId)}/stream-tickets`, this.token);
        if (this.ended) return;
        this.open(ticket);
        return;
      } catch (error) {
        if (error instanceof ApiError && error.final) {
          this.stop();
          // Whatever was received before is still shown, in order.
          await this.queue;
          this.onState("gone", error);
          return;
        }
        this.onState("reconnecting", error);
        await sleep(delay);
      }
    }
  }

  open(ticket) {
    const url = `/v1/sessions/${encodeURIComponent(this.sessionId)}/events`
      + `?ticket=${encodeURIComponent(ticket)}&after=${this.received}`;
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      if (this.source === source) this.onState("live");
    };
    const receive = (message) => this.receive(message);
    for (const type of EVENT_TYPES) source.addEventListener(type, receive);
    source.addEventListener("message", receive);
    source.onerror = () => {
      // The ticket is used up, so EventSource's own retry would be refused:
      // close it and resume with a fresh ticket from the last event received.
      source.close();
      if (this.source !== source) return;
      this.source = null;
      if (this.ended) return;
      this.onState("reconnecting");
      this.connect();
    };
  }

  receive(message) {
    const seq = Number(message.lastEventId);
    if (!Number.isSafeInteger(seq) || seq <= this.received) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const previous = this.received;
    this.received = seq;
    if (event.type === "session.closed" || this.isLast(event)) {
      // Decided now, not when the queue gets there: the server ends the stream
      // right after this event, and that must not look like a drop.
      this.stop();
    }
    const ends = this.ended;
    this.queue = this.queue
      .then(() => this.deliver(previous, event))
      .then(() => {
        if (ends) this.onState("ended");
      })
      .catch((error) => console.error("showing an event failed", error));
  }

  async deliver(previous, event) {
    if (event.seq > previous + 1) {
      for (const missing of await this.between(previous, event.seq)) this.onEvent(missing);
    }
    this.onEvent(event);
  }

  /** The events strictly between two seqs, read from the log (unknown types). */
  async between(after, before) {
    const events = [];
    let cursor = after;
    for (let attempt = 0; cursor < before - 1 && attempt < 20;) {
      try {
        const page = await get(
          `/v1/sessions/${encodeURIComponent(this.sessionId)}/events?after=${cursor}&limit=200`,
          this.token);
        const fresh = page.events.filter((e) => e.seq > cursor && e.seq < before);
        events.push(...fresh);
        if (!fresh.length || !page.next) break;
        cursor = fresh[fresh.length - 1].seq;
      } catch (error) {
        if (error instanceof ApiError && error.final) break;
        attempt += 1;
        await sleep(500);
      }
    }
    return events;
  }
}
