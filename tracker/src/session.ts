//! Session rules: a session ends after 30 minutes without events, and campaign (UTM) tags live exactly
//! as long as the session they arrived in. Pure: the clock, the URL and the id source are passed in.

export const SESSION_TIMEOUT_MS = 30 * 60 * 1000;

const UTM_KEYS = ['utm_source', 'utm_medium', 'utm_campaign'] as const;

export type Utm = { utm_source?: string; utm_medium?: string; utm_campaign?: string };

/** What is remembered between events: `at` is the last activity, in epoch milliseconds. */
export type Session = { id: string; at: number; utm: Utm };

/** The UTM tags in a query string, or `null` when it carries none. */
export function utmFromSearch(search: string): Utm | null {
  const params = new URLSearchParams(search);
  let utm: Utm | null = null;
  for (const key of UTM_KEYS) {
    const value = params.get(key);
    if (value) (utm = utm || {})[key] = value;
  }
  return utm;
}

/**
 * The session an event at `nowMs` belongs to. A landing with UTM tags replaces the whole set (a new
 * campaign touch says nothing about the old one's medium); a new session without tags has none.
 */
export function touch(prev: Session | null, nowMs: number, utm: Utm | null, newId: () => string): Session {
  if (prev && nowMs - prev.at <= SESSION_TIMEOUT_MS) {
    return { id: prev.id, at: nowMs, utm: utm || prev.utm || {} };
  }
  return { id: newId(), at: nowMs, utm: utm || {} };
}
