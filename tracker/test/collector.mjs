//! The collector the browser tests talk to, and the site that embeds the tracker. It records every
//! body it receives and can be told to fail (503), to reject (400) or to stop listening, so that
//! outages can be staged. With `CDP_COLLECTOR_URL` set it forwards accepted batches to that collector
//! (the real `cdp serve`) instead of answering them itself, and still records and stages faults.
//!
//! The site is served from a second port, so the page and the collector are different origins as in
//! production, and the tracker's requests cross origins exactly as they will there.

import { readFileSync } from 'node:fs';
import http from 'node:http';

const DIST = new URL('../dist/cdp.js', import.meta.url);
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type',
};

/**
 * @typedef {object} Delivery
 * @property {number} status        The status the collector answered with.
 * @property {any[]} events         The parsed JSON array body.
 * @property {number} bytes         Body size in bytes.
 * @property {string} fetchMode     `sec-fetch-mode`: `no-cors` for a beacon, `cors` for fetch.
 */

/** Starts the collector and the site; `upstream` defaults to `CDP_COLLECTOR_URL`. */
export async function startCollector({ upstream = process.env.CDP_COLLECTOR_URL } = {}) {
  const pages = new Map([['/blank', '<!doctype html><title>Elsewhere</title><p>No tracker here.</p>']]);

  const collector = {
    /** What the tracker is configured with; it posts to `${endpoint}/collect`. */
    endpoint: '',
    /** `'ok'`, `'fail'` (answer 503) or `'reject'` (answer 400). */
    mode: 'ok',
    /** @type {Delivery[]} */
    requests: [],
    upstream: upstream ? upstream.replace(/\/+$/, '') : null,

    /** Absolute URL of a page on the test site. */
    url: (path) => `${siteOrigin}${path}`,
    /** Serves `html` at `path` (the query string is ignored when matching). */
    page(path, html) {
      pages.set(path, html);
    },
    /** Events in requests that were answered 2xx, in arrival order, duplicates included. */
    delivered() {
      return this.requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.events);
    },
    /** `delivered()` without repeats, as the real collector stores them: it deduplicates by event id. */
    unique() {
      const seen = new Set();
      return this.delivered().filter((e) => !seen.has(e.event_id) && seen.add(e.event_id));
    },
    reset() {
      this.mode = 'ok';
      this.requests = [];
    },
    /** Stops listening: connections are refused until `start()`. */
    async stop() {
      if (!collectorServer.listening) return;
      const closed = new Promise((resolve) => collectorServer.close(resolve));
      collectorServer.closeAllConnections();
      await closed;
    },
    async start() {
      if (collectorServer.listening) return;
      await listen(collectorServer, collectorPort);
    },
    async close() {
      await this.stop();
      siteServer.closeAllConnections();
      await new Promise((resolve) => siteServer.close(resolve));
    },
  };

  const collectorServer = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method == 'OPTIONS') return send(res, 204, '', {});
    if (req.method == 'GET' && path == '/cdp.js') {
      return send(res, 200, readFileSync(DIST), { 'content-type': 'application/javascript' });
    }
    if (req.method != 'POST' || path != '/collect') return send(res, 404, 'not found', {});

    const body = await readBody(req);
    const delivery = {
      status: 0,
      events: parseEvents(body),
      bytes: body.length,
      fetchMode: String(req.headers['sec-fetch-mode'] || ''),
    };
    collector.requests.push(delivery);
    let status = 200;
    let answer = '';
    if (collector.mode == 'fail') {
      status = 503;
      answer = JSON.stringify({ error: 'unavailable' });
    } else if (collector.mode == 'reject') {
      status = 400;
      answer = JSON.stringify({ error: 'invalid batch', problems: ['staged rejection'] });
    } else if (collector.upstream) {
      try {
        const forwarded = await fetch(`${collector.upstream}/collect`, {
          method: 'POST',
          body,
          headers: { 'content-type': String(req.headers['content-type'] || 'text/plain') },
        });
        status = forwarded.status;
        answer = await forwarded.text();
      } catch (error) {
        status = 502;
        answer = JSON.stringify({ error: `upstream unreachable: ${error.message}` });
      }
    } else {
      answer = JSON.stringify({ results: delivery.events.map((e) => ({ event_id: e.event_id, status: 'accepted' })) });
    }
    delivery.status = status;
    send(res, status, answer, { 'content-type': 'application/json' });
  });

  const siteServer = http.createServer((req, res) => {
    const html = pages.get(new URL(req.url, 'http://x').pathname);
    if (html == null) return send(res, 404, 'not found', {});
    send(res, 200, html, { 'content-type': 'text/html; charset=utf-8' });
  });

  await listen(collectorServer, 0);
  const collectorPort = collectorServer.address().port;
  collector.endpoint = `http://127.0.0.1:${collectorPort}`;
  await listen(siteServer, 0);
  const siteOrigin = `http://127.0.0.1:${siteServer.address().port}`;
  return collector;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseEvents(body) {
  try {
    const parsed = JSON.parse(body.toString('utf8'));
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

function send(res, status, body, headers) {
  res.writeHead(status, { ...CORS, ...headers });
  res.end(body);
}
