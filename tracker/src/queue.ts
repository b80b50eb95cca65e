//! The persisted queue (`cdp_queue` in localStorage): every event waits here until the collector has
//! answered it, so an outage or a closed tab loses nothing. It is capped, dropping the oldest first,
//! because a visitor's storage is not ours to fill. Each change re-reads storage, since other tabs of
//! the same site share it.

import type { TrackedEvent } from './event';
import { load, save } from './storage';

export const QUEUE_KEY = 'cdp_queue';
export const QUEUE_CAP = 200;

/** Every persisted event, oldest first. Unreadable contents count as empty rather than as an error. */
export function queued(): TrackedEvent[] {
  try {
    const events = JSON.parse(load(QUEUE_KEY) || '[]');
    return Array.isArray(events) ? events : [];
  } catch (_) {
    return [];
  }
}

export function append(event: TrackedEvent): void {
  write(queued().concat(event));
}

/** Forgets events the collector has answered, whether it accepted or rejected them. */
export function remove(eventIds: string[]): void {
  write(queued().filter((event) => eventIds.indexOf(event.event_id) < 0));
}

export function clear(): void {
  save(QUEUE_KEY, null);
}

function write(events: TrackedEvent[]): void {
  save(QUEUE_KEY, events.length ? JSON.stringify(events.slice(-QUEUE_CAP)) : null);
}
