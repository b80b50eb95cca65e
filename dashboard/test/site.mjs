//! The fixture server: a small Node HTTP server that serves the built `dist/` at `/admin/cdp/` and
//! answers the dashboard API from the fixture JSON under `test/fixtures/seeded/`. Only
//! `formats.test.mjs` uses it, for figures that real traffic does not produce on demand (a fall, a
//! flat 0.0 %, a significant A/B test); every other browser test runs against a real `cdp serve`
//! (cdp-serve.mjs).

import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DIST = resolve(HERE, '../dist');
export const FIXTURES = resolve(HERE, 'fixtures');


const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Opens the fixture server on an ephemeral loopback port. */
export async function openFixtureSite() {
  if (!existsSync(join(DIST, 'index.html'))) {
    throw new Error(`no build at ${DIST}: run 'npm run build' first (npm test does)`);
  }
  const scenario = 'seeded';
  const server = createServer((request, response) => {
    try {
      answer(scenario, request, response);
    } catch (error) {
      send(response, 500, 'text/plain; charset=utf-8', `fixture server: ${error.stack || error}`);
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    fixtures: true,
    origin,
    token: null,
    api: (path) => getJson(origin, path, null),
    close: () => new Promise((done) => server.close(done)),
  };
}

function answer(scenario, request, response) {
  const url = new URL(request.url, 'http://fixture');
  const path = url.pathname;
  if (path === '/admin/cdp') return redirect(response, '/admin/cdp/');
  if (path.startsWith('/admin/cdp/')) return serveDist(response, path.slice('/admin/cdp/'.length));
  if (path === '/admin/login') return send(response, 200, TYPES['.html'], '<!doctype html><title>Sign in</title><h1>Sign in</h1>');
  if (path === '/health') {
    const body = fixture(scenario, 'health.json');
    return sendJson(response, body.status === 'ok' ? 200 : 503, body);
  }
  if (path.startsWith('/api/cdp/')) return answerApi(scenario, url, response);
  send(response, 404, 'text/plain; charset=utf-8', 'not found');
}

/** The API from fixtures. */
function answerApi(scenario, url, response) {
  const endpoint = url.pathname.slice('/api/cdp/'.length);
  const range = url.searchParams.get('range');
  if (endpoint === 'metrics' || endpoint === 'searches') {
    if (!['24h', '7d', '30d', '90d'].includes(range)) {
      return sendJson(response, 400, { error: 'bad_request', message: `range: '${range}' is not 24h, 7d, 30d or 90d` });
    }
    return sendJson(response, 200, fixture(scenario, `${endpoint}.${range}.json`, `${endpoint}.json`));
  }
  if (endpoint === 'events') {
    const limit = Number(url.searchParams.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      return sendJson(response, 400, { error: 'bad_request', message: 'limit: must be 1 to 100' });
    }
    const body = fixture(scenario, 'events.json');
    return sendJson(response, 200, { ...body, events: body.events.slice(0, limit) });
  }
  const profile = /^profiles\/([^/]+)$/.exec(endpoint);
  if (profile) {
    const file = join(FIXTURES, scenario, 'profiles', `${decodeURIComponent(profile[1])}.json`);
    if (!existsSync(file)) return sendJson(response, 404, { status: 'not_found' });
    return sendJson(response, 200, JSON.parse(readFileSync(file, 'utf8')));
  }
  sendJson(response, 404, { error: 'not_found' });
}

/** The first of `names` present in the scenario's folder; a missing fixture fails loudly. */
function fixture(scenario, ...names) {
  for (const name of names) {
    const file = join(FIXTURES, scenario, name);
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  }
  throw new Error(`no fixture ${names.join(' or ')} in test/fixtures/${scenario}`);
}

function serveDist(response, rest) {
  const file = normalize(join(DIST, rest === '' ? 'index.html' : rest));
  if (!file.startsWith(DIST) || !existsSync(file) || !statSync(file).isFile()) {
    return send(response, 404, 'text/plain; charset=utf-8', 'not found');
  }
  send(response, 200, TYPES[extname(file)] || 'application/octet-stream', readFileSync(file));
}

function redirect(response, location) {
  response.writeHead(301, { Location: location });
  response.end();
}

function sendJson(response, status, body) {
  send(response, status, 'application/json', JSON.stringify(body));
}

function send(response, status, type, body) {
  response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  response.end(body);
}

async function getJson(origin, path, token) {
  const response = await fetch(origin + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`${path} answered ${response.status} with non-JSON: ${text.slice(0, 200)}`);
  }
}
