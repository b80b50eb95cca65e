//! Delivery of queued events to the collector. Normal flushes use fetch, one request at a time,
//! because only fetch reveals the status: a 2xx or 4xx answer removes the events from the persisted
//! queue (the collector has accepted them, or will never accept them), while a network error or a 5xx
//! keeps them for a retry with jittered exponential backoff. A page that is going away cannot wait for
//! answers, so it hands what is left to `sendBeacon` and keeps it queued: the next page load sends it
//! again, and the collector drops the duplicate by `event_id`.

import { MAX_EVENT_BYTES, eventBytes, split } from './batch';
import type { TrackedEvent } from './event';
import { append, clear, queued, remove } from './queue';
import { jitter } from './uuid';

export const FLUSH_DELAY_MS = 1000;
export const FLUSH_AT_EVENTS = 10;
const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 60 * 1000;

export type Delivery = {
  /** Queues an event and arranges for it to be sent soon. */
  add(event: TrackedEvent): void;
  /** Sends what is left through beacons; for `pagehide` and a page turning hidden. */
  flushOnExit(): void;
  /** Drops every queued event and any pending retry. */
  clear(): void;
};

/** Between half and all of `min(base * 2^(failures - 1), cap)`, so that many pages do not retry in step. */
export function retryDelayMs(failures: number, random: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** (failures - 1), RETRY_CAP_MS) * (0.5 + random / 2);
}

export function delivery(url: string): Delivery {
  // The events this page sends: those already waiting when it loaded, and those it queued itself.
  // Other open tabs of the site send their own, so that they do not race to send the same events.
  const mine: Record<string, 1> = {};
  // Events handed to a beacon while the collector looked healthy. Whether they arrived is unknowable,
  // so they stay queued for the next page load, but this page does not send them a second time.
  const beaconed: Record<string, 1> = {};
  let inflight: string[] = [];
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const sendable = () =>
    queued().filter((e) => mine[e.event_id] && !beaconed[e.event_id] && inflight.indexOf(e.event_id) < 0);

  function wait(ms: number): void {
    clearTimeout(timer);
    timer = setTimeout(flush, ms);
  }

  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (inflight.length) return; // Its completion flushes again.
    const batch = split(sendable())[0];
    if (!batch) return;
    const ids = (inflight = batch.map((e) => e.event_id));
    new Promise<Response>((resolve) => resolve(post(url, JSON.stringify(batch))))
      .then(
        (response) => response.status < 500,
        () => false,
      )
      .then((answered) => {
        inflight = [];
        if (answered) {
          remove(ids);
          failures = 0;
          flush();
        } else {
          wait(retryDelayMs(++failures, jitter()));
        }
      })
      .catch(() => {
        // Storage trouble while recording the answer: the events stay queued and are sent again later.
      });
  }

  for (const event of queued()) mine[event.event_id] = 1;
  if (queued().length) wait(FLUSH_DELAY_MS);

  return {
    add(event) {
      if (eventBytes(event) > MAX_EVENT_BYTES) return;
      append(event);
      mine[event.event_id] = 1;
      // While the collector is failing, a pending retry timer decides when to try again.
      if (!failures && sendable().length >= FLUSH_AT_EVENTS) flush();
      else if (!timer) wait(FLUSH_DELAY_MS);
    },

    flushOnExit() {
      for (const batch of split(sendable())) {
        const body = JSON.stringify(batch);
        let accepted = false;
        try {
          accepted = navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
        } catch (_) {
          // No sendBeacon in this browser.
        }
        if (!accepted) new Promise((resolve) => resolve(post(url, body))).catch(() => {});
        // After failures a beacon most likely failed too, so a page that comes back retries these.
        if (!failures) for (const event of batch) beaconed[event.event_id] = 1;
      }
    },

    clear() {
      clear();
      clearTimeout(timer);
      timer = undefined;
      failures = 0;
    },
  };
}

/** `text/plain` keeps the request "simple" in CORS terms, so no preflight precedes it. */
function post(url: string, body: string): Promise<Response> {
  return fetch(url, { method: 'POST', body, keepalive: true, headers: { 'content-type': 'text/plain' } });
}
