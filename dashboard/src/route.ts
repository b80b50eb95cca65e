//! The page's two views as hash routes, so a visitor can be linked to and the browser's Back
//! button closes the visitor view: `#/` is the dashboard, `#/visitor/<anonymous_id>` opens one
//! visitor over it. Hash routes need nothing from the server that serves `/admin/cdp/`.

import { useEffect, useState } from 'react';

export type Route = { view: 'dashboard' } | { view: 'visitor'; anonymousId: string };

export function visitorHref(anonymousId: string): string {
  return `#/visitor/${encodeURIComponent(anonymousId)}`;
}

export const DASHBOARD_HREF = '#/';

export function parseRoute(hash: string): Route {
  const match = /^#\/visitor\/(.+)$/.exec(hash);
  if (match?.[1]) {
    try {
      return { view: 'visitor', anonymousId: decodeURIComponent(match[1]) };
    } catch {
      return { view: 'dashboard' };
    }
  }
  return { view: 'dashboard' };
}

/** The current route, following `hashchange`. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const follow = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  return route;
}
