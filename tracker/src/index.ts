//! The public `window.cdp` API and the glue between the parts. Every entry point forwards to the site's
//! existing pixel first and is wrapped so that nothing here can throw into the page. Calls queued by
//! the loading snippet (`cdp.push([...])`) are replayed before the automatic page view, so that an
//! early `identify` or `consent(false)` applies to it.

import { readConfig } from './config';
import { delivery } from './delivery';
import { buildEvent } from './event';
import { anonymousId, customerId, forgetIdentity, rememberCustomerId } from './identity';
import { forwardToPixel } from './pixel';
import { type Session, touch, utmFromSearch } from './session';
import { load, save } from './storage';
import { eventId, uuid } from './uuid';

const OPT_OUT_KEY = 'cdp_opt_out';
const SESSION_KEY = 'cdp_session';

type Traits = { email?: unknown; customer_id?: unknown };

type Api = {
  track(event: string, properties?: Record<string, unknown>): void;
  page(properties?: Record<string, unknown>): void;
  identify(traits?: Traits): void;
  optOut(): void;
  optIn(): void;
  consent(granted: boolean): void;
  /** Same shape as the snippet's queue: `cdp.push(['track', 'x', {...}])`. */
  push(call: unknown[]): void;
};

type Host = { cdp?: unknown; cdpConfig?: Parameters<typeof readConfig>[0] };

/** Wraps an entry point so that any failure of ours stays ours. */
function guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (_) {
      // Tracking is never worth breaking the page for.
    }
  };
}

function readSession(): Session | null {
  try {
    const session = JSON.parse(load(SESSION_KEY) || 'null');
    return session && typeof session.id == 'string' ? session : null;
  } catch (_) {
    return null;
  }
}

function start(host: Host, script: HTMLScriptElement | null): void {
  const snippetCalls = host.cdp;
  // A second copy of the script on the same page leaves the first one in charge.
  if (snippetCalls && !Array.isArray(snippetCalls)) return;

  const config = readConfig(host.cdpConfig, script);
  const outbox = config.endpoint ? delivery(config.endpoint + '/collect') : null;
  let consent = config.consent;
  const allowed = () => consent && load(OPT_OUT_KEY) != '1';

  function record(name: string, properties: unknown): void {
    if (!outbox || !allowed()) return;
    const now = new Date();
    const session = touch(readSession(), now.getTime(), utmFromSearch(location.search), uuid);
    save(SESSION_KEY, JSON.stringify(session));
    outbox.add(
      buildEvent(
        name,
        properties,
        Object.assign(
          {
            event_id: eventId(now.getTime()),
            anonymous_id: anonymousId(),
            session_id: session.id,
            page_url: location.href,
            page_title: document.title,
            referrer: document.referrer,
          },
          session.utm,
          { customer_id: customerId() },
        ),
        now,
      ),
    );
  }

  // Withdrawing consent or opting out removes what we keep: queued events, the session and our ids.
  function forget(): void {
    if (outbox) outbox.clear();
    save(SESSION_KEY, null);
    forgetIdentity();
  }

  const api: Api = {
    track: guard((event, properties) => {
      forwardToPixel(event, properties);
      if (typeof event == 'string' && event) record(event, properties);
    }),
    page: guard((properties) => {
      forwardToPixel('page_view', properties);
      record('page_view', properties);
    }),
    identify: guard((traits) => {
      forwardToPixel('identify', traits);
      const given = traits || {};
      if (given.customer_id && allowed()) rememberCustomerId(String(given.customer_id));
      record('identify', given.email ? { email: given.email } : undefined);
    }),
    optOut: guard(() => {
      save(OPT_OUT_KEY, '1');
      forget();
    }),
    optIn: guard(() => save(OPT_OUT_KEY, null)),
    consent: guard((granted) => {
      consent = !!granted;
      if (!consent) forget();
    }),
    push: guard((call) => {
      const name = call[0];
      if (typeof name == 'string' && name != 'push' && Object.prototype.hasOwnProperty.call(api, name)) {
        (api[name as keyof Api] as (...args: unknown[]) => void)(...call.slice(1));
      }
    }),
  };
  host.cdp = api;

  if (Array.isArray(snippetCalls)) for (const call of snippetCalls) api.push(call);
  // Events left from an earlier page are not ours to send once consent is gone.
  if (!allowed() && outbox) outbox.clear();
  if (config.autoPage) api.page();

  const exit = guard(() => {
    if (outbox && allowed()) outbox.flushOnExit();
  });
  addEventListener('pagehide', exit);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState == 'hidden') exit();
  });
}

try {
  start(window as unknown as Host, document.currentScript as HTMLScriptElement | null);
} catch (_) {
  // Even a failed start must leave the page, and the existing pixel, untouched.
}
