//! The one module that talks to the CDP server. It knows the dashboard API contract (the types
//! below mirror it field for field) and turns every answer into an `Outcome`: the data, or one of
//! the three ways a request can fail that the page shows differently (offline, signed out, not
//! found). Nothing here computes a figure: ranges, windows and deltas are the server's.

/** The ranges the metrics and searches endpoints accept. */
export const RANGES = ['24h', '7d', '30d', '90d'] as const;
export type Range = (typeof RANGES)[number];

/** A figure for the current window with the same figure for the window before it. */
export interface Kpi {
  value: number;
  previous: number;
  /** Percent change against `previous` (12.5 means +12.5 %); null when `previous` is 0. */
  delta_pct: number | null;
}

export interface MetricsWindow {
  start: string;
  end: string;
  previous_start: string;
  bucket: 'hour' | 'day';
}

export interface PersonaShare {
  persona: string;
  label: string;
  visitors: number;
  /** Fraction of the window's visitors, 0..1. */
  share: number;
  /** Visitors who chose this persona themselves. */
  explicit: number;
}

export interface FunnelStage {
  stage: string;
  /** Visitors whose current stage is this one. */
  visitors: number;
  /** Visitors at this stage or beyond it. */
  reached: number;
  /** `reached` over the previous stage's `reached`, 0..1; null for the first stage or after 0. */
  conversion_from_previous: number | null;
}

export interface TunnelRow {
  tunnel: string;
  views: number;
  cta_clicks: number;
  click_rate: number | null;
}

export interface AbVariant {
  variant: string;
  exposures: number;
  conversions: number;
  rate: number | null;
}

export interface AbSignificance {
  method: string;
  z: number | null;
  p_value: number | null;
  significant: boolean;
}

export interface AbTest {
  test_id: string;
  variants: AbVariant[];
  significance: AbSignificance;
}

export interface EventTypeCount {
  event_type: string;
  count: number;
}

/** One time bucket: `date` plus one number per persona label present in the window. */
export type ChartRow = { date: string } & Record<string, number | string>;

/** A section the server cannot fill yet says so instead of sending zeros. */
export interface SectionStatus {
  status: string;
  reason?: string;
}

export interface Metrics {
  status: 'ok' | 'empty';
  range: Range;
  generated_at: string;
  last_event_at: string | null;
  window: MetricsWindow;
  kpis: {
    events: Kpi;
    unique_visitors: Kpi;
    sessions: Kpi;
    identified_profiles: Kpi;
  };
  personas: PersonaShare[];
  funnel: FunnelStage[];
  tunnels: TunnelRow[];
  ab_tests: AbTest[];
  top_events: EventTypeCount[];
  chartData: ChartRow[];
  revenue: SectionStatus;
}

export interface StreamEvent {
  event_id: string;
  event_type: string;
  anonymous_id: string;
  timestamp: string;
  page_url: string;
  page_title: string | null;
  predicted_persona: string;
  persona_label: string;
  persona_confidence: number;
  explicit_persona: string | null;
  current_stage: string;
}

export interface EventStream {
  status: 'ok' | 'empty';
  events: StreamEvent[];
}

export interface SearchQuery {
  query: string;
  count: number;
  previous: number;
  delta_pct: number | null;
  zero_result_count: number;
}

export interface Searches {
  status: 'ok' | 'empty';
  total: Kpi;
  top: SearchQuery[];
  zero_results: { query: string; count: number }[];
}

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

export interface Health {
  status: 'ok' | 'degraded';
  store: 'ok' | 'unreachable';
  backend?: string;
  last_event_at: string | null;
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
