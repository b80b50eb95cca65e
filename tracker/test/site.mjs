//! The test site: the pages that embed the tracker, served from their own port. The collector
//! (`cdp serve`, or the proxy in front of it) listens on other ports, so the page and the collector
//! are different origins as in production, and the tracker's requests cross origins exactly as they
//! will there. `cdp serve` is started with this site's origin as its only allowed origin.

import http from 'node:http';

export async function startSite() {
  const pages = new Map([['/blank', '<!doctype html><title>Elsewhere</title><p>No tracker here.</p>']]);
  const server = http.createServer((req, res) => {
    const html = pages.get(new URL(req.url, 'http://x').pathname);
    res.writeHead(html == null ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html == null ? 'not found' : html);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    /** `http://127.0.0.1:<port>`: the Origin of every request the tracker makes. */
    origin,
    /** Absolute URL of a page on the site. */
    url: (path) => `${origin}${path}`,
    /** Serves `html` at `path` (the query string is ignored when matching). */
    page(path, html) {
      pages.set(path, html);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
