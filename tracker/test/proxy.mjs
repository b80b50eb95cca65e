//! A small pass-through proxy in front of the real `cdp serve`, for the tests that need to see the
//! wire or to stage an answer the real server does not give on demand. It forwards every request
//! (method, path, headers including `Origin`, body) to the server and every answer (status, headers
//! including the server's own CORS headers, body) back, unchanged, and records each `POST /collect`
//! with the server's answer. A test can make it answer 503 (the collector failing) or 400 (the
//! collector refusing a batch of valid events, which the real server never does) instead of
//! forwarding. Tests that need neither talk to `cdp serve` directly.

import http from 'node:http';

/**
 * @typedef {object} Delivery
 * @property {number} status     What the browser was answered: the server's status, or the staged one.
 * @property {any[]} events      The parsed JSON array body.
 * @property {number} bytes      Body size in bytes.
 * @property {string} fetchMode  `sec-fetch-mode`: `no-cors` for a beacon, `cors` for fetch.
 * @property {any} reply         The parsed JSON answer (the server's per-event verdicts).
 */

// Connection-level headers are the proxy's own business on each side.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export async function startProxy() {
  const proxy = {
    /** What a page configures as its collector when a test goes through the proxy. */
    endpoint: '',
    /** The `cdp serve` base URL requests are forwarded to. */
    upstream: '',
    /** `'pass'` (forward), `'fail'` (answer 503) or `'reject'` (answer 400). */
    mode: 'pass',
    /** @type {Delivery[]} */
    requests: [],
    /** Forwards to `upstream` from now on, in pass mode, with an empty record. */
    reset(upstream) {
      this.upstream = upstream;
      this.mode = 'pass';
      this.requests = [];
    },
    /** Events of the requests the browser saw answered 2xx, in arrival order, repeats included. */
    delivered() {
      return this.requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.events);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const path = new URL(req.url, 'http://x').pathname;
    /** @type {Delivery | null} */
    let record = null;
    if (req.method == 'POST' && path == '/collect') {
      record = {
        status: 0,
        events: parseJson(body, []),
        bytes: body.length,
        fetchMode: String(req.headers['sec-fetch-mode'] || ''),
        reply: null,
      };
      if (!Array.isArray(record.events)) record.events = [];
      proxy.requests.push(record);
      if (proxy.mode != 'pass') {
        const status = proxy.mode == 'fail' ? 503 : 400;
        const answer =
          status == 503
            ? { error: 'store_unavailable', problems: [{ field: 'store', rule: 'staged by the test proxy' }] }
            : { error: 'malformed_body', problems: [{ field: 'body', rule: 'staged by the test proxy' }] };
        record.status = status;
        record.reply = answer;
        // With the CORS header a real collector would send, so the tracker can read the status.
        const cors = req.headers.origin ? { 'access-control-allow-origin': req.headers.origin, vary: 'origin' } : {};
        res.writeHead(status, { 'content-type': 'application/json', ...cors });
        return res.end(JSON.stringify(answer));
      }
    }
    try {
      const answer = await forward(proxy.upstream, req, body);
      if (record) {
        record.status = answer.status;
        record.reply = parseJson(answer.body, null);
      }
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    } catch (error) {
      // The collector is down: what a load balancer in front of it would answer.
      if (record) record.status = 502;
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `upstream unreachable: ${error.message}` }));
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  proxy.endpoint = `http://127.0.0.1:${server.address().port}`;
  return proxy;
}

function forward(upstream, req, body) {
  const target = new URL(req.url, upstream);
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  }
  headers.host = target.host;
  headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: target.pathname + target.search, headers, agent: false },
      (response) => {
        readBody(response).then((answer) => {
          const out = {};
          for (const [name, value] of Object.entries(response.headers)) {
            if (!HOP_BY_HOP.has(name)) out[name] = value;
          }
          out['content-length'] = String(answer.length);
          resolve({ status: response.statusCode, headers: out, body: answer });
        }, reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

function readBody(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function parseJson(buffer, fallback) {
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    return fallback;
  }
}
