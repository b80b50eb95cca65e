//! The event contract v1, as the collector accepts it. Building an event is pure: ids, the clock and
//! the page are passed in, and optional fields are left out rather than sent empty.

export type TrackedEvent = {
  v: 1;
  event: string;
  event_id: string;
  anonymous_id: string;
  session_id: string;
  timestamp: string;
  page_url: string;
  page_title?: string;
  referrer?: string;
  utm_source?: string;
  utm_medium?: string;
  utm_campaign?: string;
  customer_id?: string;
  properties?: Record<string, unknown>;
};

/** Everything an event carries besides its name, data and time; empty optional values are dropped. */
export type EventContext = Omit<TrackedEvent, 'v' | 'event' | 'timestamp' | 'properties' | 'customer_id'> & {
  customer_id: string | null;
};

export function buildEvent(name: string, properties: unknown, context: EventContext, now: Date): TrackedEvent {
  const event = Object.assign({ v: 1, event: name }, context, {
    timestamp: now.toISOString(),
    properties: snapshot(properties),
  }) as Record<string, unknown>;
  for (const key in event) if (!event[key]) delete event[key];
  return event as TrackedEvent;
}

/**
 * A JSON copy of the caller's properties, so that later mutation by the page cannot change an event
 * already queued, and values JSON cannot carry are dropped here rather than at send time. `null`
 * when there is nothing to send.
 */
function snapshot(properties: unknown): Record<string, unknown> | null {
  if (!properties || typeof properties != 'object' || Array.isArray(properties)) return null;
  const copy = JSON.parse(JSON.stringify(properties));
  return Object.keys(copy).length ? copy : null;
}
