//! How queued events are cut into request bodies. A keepalive request (fetch or beacon) may carry at
//! most 64 KiB, and that budget is shared by every such request in flight from the page; a body is
//! therefore kept to half of it, so that an unload beacon still fits beside a normal flush.

import type { TrackedEvent } from './event';

export const MAX_EVENTS_PER_BATCH = 50;
export const MAX_BATCH_BYTES = 32 * 1024;
/** An event that cannot be sent even alone under the keepalive budget is never queued. */
export const MAX_EVENT_BYTES = 64 * 1024 - 2;

const encoder = new TextEncoder();

/** UTF-8 size of an event as it appears in a JSON array body. */
export function eventBytes(event: TrackedEvent): number {
  return encoder.encode(JSON.stringify(event)).length;
}

/**
 * Splits events, in order, into batches of at most `MAX_EVENTS_PER_BATCH` whose JSON array body
 * stays within `MAX_BATCH_BYTES`. A single event larger than that gets a batch of its own.
 */
export function split(events: TrackedEvent[]): TrackedEvent[][] {
  const batches: TrackedEvent[][] = [];
  let current: TrackedEvent[] = [];
  let bytes = 2; // The enclosing brackets.
  for (const event of events) {
    const size = eventBytes(event) + 1; // The separating comma.
    if (current.length && (current.length == MAX_EVENTS_PER_BATCH || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 2;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length) batches.push(current);
  return batches;
}
