//! Guarded access to localStorage and cookies. Storage can be disabled, full or blocked by privacy
//! settings, and the page must never see an exception from us, so every access is caught here and
//! localStorage falls back to memory for the life of the page.

const memory: Record<string, string> = {};

/** Reads a localStorage value, or the in-memory copy kept when localStorage refused it. */
export function load(key: string): string | null {
  try {
    const value = localStorage.getItem(key);
    if (value != null) return value;
  } catch (_) {
    // Storage is blocked: memory is all there is.
  }
  return key in memory ? memory[key] : null;
}

/** Writes (or, with `null`, removes) a value; when localStorage refuses, it lives in memory instead. */
export function save(key: string, value: string | null): void {
  delete memory[key];
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
    return;
  } catch (_) {
    // A full quota leaves the old value behind; remove it so that reads do not see stale data.
    try {
      localStorage.removeItem(key);
    } catch (_) {
      // Blocked entirely.
    }
  }
  if (value != null) memory[key] = value;
}

/** Reads a first-party cookie by name. */
export function readCookie(name: string): string | null {
  try {
    const match = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
    return match ? decodeURIComponent(match[1]) : null;
  } catch (_) {
    return null;
  }
}

/** Sets a first-party cookie for the whole site; `Secure` whenever the page itself is on https. */
export function writeCookie(name: string, value: string, maxAgeS: number): void {
  try {
    document.cookie =
      name + '=' + encodeURIComponent(value) + '; max-age=' + maxAgeS + '; path=/; SameSite=Lax' +
      (location.protocol == 'https:' ? '; Secure' : '');
  } catch (_) {
    // Cookies are unavailable; the caller notices by reading back.
  }
}
