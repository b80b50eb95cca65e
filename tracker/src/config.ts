//! Where the tracker's settings come from, read once at load: `window.cdpConfig` wins, then the
//! script tag's `data-endpoint`, then the folder the script was served from (the collector serves
//! `/cdp.js` itself, so a bare `<script src=".../cdp.js">` needs no configuration at all).

export type Config = {
  /** Collector origin (and optional path prefix), without a trailing slash; empty when unknown. */
  endpoint: string;
  /** Send a `page_view` once on load. */
  autoPage: boolean;
  /** Initial consent; `cdp.consent(boolean)` changes it for the rest of the page's life. */
  consent: boolean;
};

type RawConfig = { endpoint?: unknown; autoPage?: unknown; consent?: unknown };

export function readConfig(raw: RawConfig | undefined, script: HTMLScriptElement | null): Config {
  const given = raw || {};
  const endpoint =
    (typeof given.endpoint == 'string' && given.endpoint) ||
    (script && (script.getAttribute('data-endpoint') || script.src.replace(/\/[^/]*$/, ''))) ||
    '';
  return {
    endpoint: endpoint.replace(/\/+$/, ''),
    autoPage: given.autoPage !== false,
    consent: given.consent !== false,
  };
}
