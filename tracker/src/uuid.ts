//! Randomness from the platform's CSPRNG: UUID v4 for session and visitor ids, UUID v7 for event
//! ids, and the jitter of retry delays. `crypto.randomUUID` only exists in secure contexts and
//! recent browsers, so the same format is built from `getRandomValues` otherwise.

export function uuid(): string {
  const c = crypto;
  if (typeof c.randomUUID == 'function') return c.randomUUID();
  const bytes = c.getRandomValues(new Uint8Array(16));
  // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the high bits of byte 8.
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  let out = '';
  for (let i = 0; i < 16; i++) {
    out += (i == 4 || i == 6 || i == 8 || i == 10 ? '-' : '') + (bytes[i] + 256).toString(16).slice(1);
  }
  return out;
}

/**
 * A UUID v7 for an event tracked at `ms` (RFC 9562): the time in milliseconds, then random bits.
 * Ids tracked close together sort close together, so the store's unique index on event ids
 * takes each commit's new ids at its right edge instead of on a random page per event.
 */
export function eventId(ms: number): string {
  const t = ms.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8)}-7${uuid().slice(15)}`;
}

/** A uniform number in [0, 1), for spreading retries of many visitors apart. */
export function jitter(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] / 4294967296;
}
