//! The one module that talks to the CDP server. It knows the dashboard API contract (the
//! answer types are generated from the server's, in `api.gen.ts`) and turns every answer into an
//! `Outcome`: the data, or one of the three ways a request can fail that the page shows
//! differently (offline, signed out, not found). Nothing here computes a figure: ranges, windows
//! and deltas are the server's.

import type { EventStream, Health, Metrics, Range, Searches } from './api.gen';

// The answers' types are generated from the Rust answer types (cdp-api/src/dashboard_types.rs),
// so they cannot drift from what the server sends.
export type {
  AbSignificance,
  AbTest,
  AbVariant,
  EventStream,
  EventTypeCount,
  FunnelStage,
  Health,
  Kpi,
  Kpis,
  Metrics,
  MetricsWindow,
  PersonaShare,
  Range,
  SearchQuery,
  Searches,
  StreamEvent,
  TunnelRow,
} from './api.gen';

/** The ranges the metrics and searches endpoints accept, in the order the page offers them. */
export const RANGES = ['24h', '7d', '30d', '90d'] as const satisfies readonly Range[];

/** One time bucket: `date` plus one number per persona label present in the window. */
export type ChartRow = Metrics['chartData'][number];

/** A section the server cannot fill yet says so instead of sending zeros. */
export type SectionStatus = Metrics['revenue'];

// The profile answer carries the stored golden profile as JSON and the core's explanation;
// its types stay written here (the OpenAPI document and its validator cover the answer).
export interface Profile {
  anonymous_id: string;
  customer_id: string | null;
  email: string | null;
  predicted_persona: string;
  persona_confidence: number;
  explicit_persona: string | null;
  persona_scores: Record<string, number>;
  current_stage: string;
  stage_confidence: number;
  stage_history: { stage: string; entered_at: string }[];
  first_seen: string;
  last_seen: string;
  session_count: number;
  total_signals: number;
  /** Events applied, by type. */
  event_counts: Record<string, number>;
}

export interface Contribution {
  event_id: string;
  event_type: string;
  /** The signal kind (decision_engine, product_view, ...). */
  kind: string;
  persona: string;
  /** What pointed at the persona: explicit, declared, tunnel, product, collection, keyword, path, fallback. */
  hint: string;
  weight: number;
  age_hours: number;
  decay: number;
  points: number;
}

export interface Explanation {
  scores: {
    probabilities: Record<string, number>;
    predicted: string;
    confidence: number;
    evidence: number;
  };
  points: Record<string, number>;
  contributions: Contribution[];
}

export interface StageDecision {
  stage: string;
  confidence: number;
  /** The rule that set the stage, in words. */
  rule: string;
  /** Which clause of the rule matched; null for the default stage. */
  clause: number | null;
}

export interface VisitorProfile {
  status: 'ok';
  profile: Profile;
  persona_labels: Record<string, string>;
  explanation: Explanation;
  stage: StageDecision;
}

/**
 * What a request came to. `offline` covers the store being down (a 503 with a reason), the
 * server being unreachable and any answer the page cannot use: in all of them the page must show
 * no figures rather than old or made-up ones.
 */
export type Outcome<T> =
  | { kind: 'ok'; data: T }
  | { kind: 'offline'; reason: string }
  | { kind: 'unauthorized' }
  | { kind: 'not_found' };

export function metrics(range: Range, signal?: AbortSignal): Promise<Outcome<Metrics>> {
  return get(`/api/cdp/metrics?range=${range}`, signal, (body) => has(body, ['status', 'kpis', 'funnel', 'chartData']));
}

export function events(limit: number, signal?: AbortSignal): Promise<Outcome<EventStream>> {
  return get(`/api/cdp/events?limit=${limit}`, signal, (body) => has(body, ['status', 'events']));
}

export function searches(range: Range, signal?: AbortSignal): Promise<Outcome<Searches>> {
  return get(`/api/cdp/searches?range=${range}`, signal, (body) => has(body, ['status', 'total', 'top', 'zero_results']));
}

// The person and identity answers (cdp serve's `/api/cdp/people/{key}` and `/api/cdp/identity`),
// written here like the profile's; the OpenAPI document and its validator cover them.
export interface IdentifierRef {
  kind: 'anonymous_id' | 'email' | 'customer_id';
  value: string;
}

export interface IdentityEdge {
  kind: 'link' | 'exclude';
  a: IdentifierRef;
  b: IdentifierRef;
  /** A stored event's edge, or an admin's merge or split. */
  origin: 'event' | 'admin';
  event_id: string;
  at: string;
}

export interface Person {
  status: 'ok';
  person_id: string;
  email: string | null;
  customer_id: string | null;
  browsers: string[];
  /** Each identifier with the applied link that attached it (null for a browser alone). */
  identifiers: (IdentifierRef & { attached_by: IdentityEdge | null })[];
  merges: IdentityEdge[];
  /** Links the identity guards refused, with the reason. */
  rejected: { reason: string; edge: IdentityEdge }[];
  exclusions: IdentityEdge[];
  /** The golden profile of all the person's browsers' events. */
  profile: VisitorProfile;
}

export interface IdentityFigures {
  linked_people: number;
  linked_browsers: number;
  cross_device_people: number;
  /** Refused links by reason, every reason named. */
  rejections: Record<string, number>;
  /** null when this collector cannot erase (no tombstone key, or a REST store). */
  erasures: { erasures: number; tombstones: number; suppressed: number } | null;
}

export function person(key: string, signal?: AbortSignal): Promise<Outcome<Person>> {
  return get(`/api/cdp/people/${encodeURIComponent(key)}`, signal, (body) =>
    has(body, ['person_id', 'browsers', 'identifiers', 'rejected', 'profile']),
  );
}

export function identity(signal?: AbortSignal): Promise<Outcome<IdentityFigures>> {
  return get('/api/cdp/identity', signal, (body) => has(body, ['linked_people', 'cross_device_people', 'rejections']));
}

export function profile(anonymousId: string, signal?: AbortSignal): Promise<Outcome<VisitorProfile>> {
  return get(`/api/cdp/profiles/${encodeURIComponent(anonymousId)}`, signal, (body) =>
    has(body, ['profile', 'explanation', 'stage']),
  );
}

/** `/health` answers 503 with a body when the store is down; that body is still the answer. */
export function health(signal?: AbortSignal): Promise<Outcome<Health>> {
  return get('/health', signal, (body) => has(body, ['status', 'store']), { bodyOn503: true });
}

/** The login page the server serves; the dashboard links to it on a 401. */
export const LOGIN_PATH = '/admin/login';

/** The tracker and collector live at the server's origin, which is also the dashboard's. */
export function serverOrigin(): string {
  return window.location.origin;
}

async function get<T>(
  path: string,
  signal: AbortSignal | undefined,
  usable: (body: unknown) => boolean,
  { bodyOn503 = false } = {},
): Promise<Outcome<T>> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' }, signal });
  } catch (error) {
    if (signal?.aborted) throw error;
    return { kind: 'offline', reason: `the server did not answer (${describe(error)})` };
  }
  if (response.status === 401 || response.status === 403) return { kind: 'unauthorized' };
  if (response.status === 404) return { kind: 'not_found' };
  const body = await readJson(response);
  if (response.status === 503 && !(bodyOn503 && usable(body))) {
    const reason = reasonOf(body);
    return { kind: 'offline', reason: reason ?? `${path} answered 503 without a reason` };
  }
  if (!response.ok && !(bodyOn503 && response.status === 503)) {
    return { kind: 'offline', reason: reasonOf(body) ?? `${path} answered HTTP ${response.status}` };
  }
  if (!usable(body)) return { kind: 'offline', reason: `${path} sent an answer the dashboard cannot read` };
  return { kind: 'ok', data: body as T };
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function has(body: unknown, keys: string[]): boolean {
  return typeof body === 'object' && body !== null && keys.every((key) => key in body);
}

function reasonOf(body: unknown): string | null {
  if (typeof body === 'object' && body !== null && 'reason' in body) {
    const reason = (body as { reason: unknown }).reason;
    if (typeof reason === 'string' && reason !== '') return reason;
  }
  return null;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
