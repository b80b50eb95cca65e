//! The event contract v1, as the collector accepts it. Building an event is pure: ids, the clock
//! and the page are passed in, and optional fields are left out rather than sent empty.

import type { Utm } from './session';

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

/** Everything about the visitor and the page that an event carries besides its own name and data. */
export type EventContext = {
  eventId: string;
  anonymousId: string;
  sessionId: string;
  customerId: string | null;
  utm: Utm;
  pageUrl: string;
  pageTitle: string;
  referrer: string;
};

type Optional = Omit<TrackedEvent, 'v' | 'event' | 'event_id' | 'anonymous_id' | 'session_id' | 'timestamp' | 'page_url'>;

export function buildEvent(name: string, properties: unknown, ctx: EventContext, now: Date): TrackedEvent {
  const event: TrackedEvent = {
    v: 1,
    event: name,
    event_id: ctx.eventId,
    anonymous_id: ctx.anonymousId,
    session_id: ctx.sessionId,
    timestamp: now.toISOString(),
    page_url: ctx.pageUrl,
  };
  const put = <K extends keyof Optional>(key: K, value: Optional[K] | null | undefined) => {
    if (value) event[key] = value;
  };
  put('page_title', ctx.pageTitle);
  put('referrer', ctx.referrer);
  put('utm_source', ctx.utm.utm_source);
  put('utm_medium', ctx.utm.utm_medium);
  put('utm_campaign', ctx.utm.utm_campaign);
  put('customer_id', ctx.customerId);
  put('properties', snapshot(properties));
  return event;
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
