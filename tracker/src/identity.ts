//! Who the visitor is. The anonymous id lives in the `pd_anonymous_id` cookie that the site's existing
//! pixel also uses, so both systems count the same visitor; an existing value is reused and never
//! rewritten, because the pixel may have set it with its own domain and expiry. The customer id comes
//! from `identify` and is remembered so that every later event carries it.

import { load, readCookie, save, writeCookie } from './storage';
import { uuid } from './uuid';

const COOKIE = 'pd_anonymous_id';
const FALLBACK_KEY = 'cdp_anonymous_id';
const CUSTOMER_KEY = 'cdp_customer_id';
const COOKIE_MAX_AGE_S = 365 * 24 * 60 * 60;

export function anonymousId(): string {
  const existing = readCookie(COOKIE);
  if (existing) return existing;
  const id = load(FALLBACK_KEY) || uuid();
  writeCookie(COOKIE, id, COOKIE_MAX_AGE_S);
  // Cookies are blocked: localStorage keeps the visitor stable instead.
  if (readCookie(COOKIE) != id) save(FALLBACK_KEY, id);
  return id;
}

export function customerId(): string | null {
  return load(CUSTOMER_KEY);
}

export function rememberCustomerId(id: string): void {
  save(CUSTOMER_KEY, id);
}

/** Drops the ids only we keep. The shared cookie stays: it belongs to the existing pixel as well. */
export function forgetIdentity(): void {
  save(FALLBACK_KEY, null);
  save(CUSTOMER_KEY, null);
}
