//! The answer types of the dashboard API, generated from the Rust answer types by `cargo test -p cdp-api dashboard_types`
//! (cdp-api/src/dashboard_types.rs). Do not edit: change the Rust type, then run that with CDP_UPDATE_TS=1.

export type Range = "24h" | "7d" | "30d" | "90d";

export type Bucket = "hour" | "day";

export type Kpi = { 
/**
 * This window.
 */
value: number, 
/**
 * The window before.
 */
previous: number, 
/**
 * Percent change (12.5 is +12.5 %), `None` when `previous` is 0.
 */
delta_pct: number | null, };

export type Kpis = { 
/**
 * Events in the window.
 */
events: Kpi, 
/**
 * Distinct visitors with an event in the window.
 */
unique_visitors: Kpi, 
/**
 * Sessions that started in the window.
 */
sessions: Kpi, 
/**
 * Visitors first identified in the window.
 */
identified_profiles: Kpi, };

export type MetricsWindow = { 
/**
 * Start of the current window.
 */
start: string, 
/**
 * End of the current window (now).
 */
end: string, 
/**
 * Start of the previous window (which ends at `start`).
 */
previous_start: string, 
/**
 * Chart bucket size.
 */
bucket: Bucket, };

export type PersonaShare = { 
/**
 * Persona id.
 */
persona: string, 
/**
 * Its label.
 */
label: string, 
/**
 * Visitors whose latest event in the window predicted this persona.
 */
visitors: number, 
/**
 * `visitors` over all visitors in the window (0 when there are none).
 */
share: number, 
/**
 * Visitors whose explicit choice (as of their latest event) is this persona.
 */
explicit: number, };

export type FunnelStage = { 
/**
 * Stage name.
 */
stage: string, 
/**
 * Visitors at this stage as of their latest event in the window.
 */
visitors: number, 
/**
 * Visitors at this stage or beyond.
 */
reached: number, 
/**
 * `reached` over the previous stage's `reached`; `None` for the first stage or after 0.
 */
conversion_from_previous: number | null, };

export type TunnelRow = { 
/**
 * The `tunnel` property.
 */
tunnel: string, 
/**
 * `tunnel_viewed` events.
 */
views: number, 
/**
 * `hero_cta_clicked` events.
 */
cta_clicks: number, 
/**
 * `cta_clicks / views`, `None` without views.
 */
click_rate: number | null, };

export type AbVariant = { 
/**
 * Variant name.
 */
variant: string, 
/**
 * Visitors first exposed in the window.
 */
exposures: number, 
/**
 * Of those, visitors who converted.
 */
conversions: number, 
/**
 * `conversions / exposures`.
 */
rate: number | null, };

export type AbSignificance = { 
/**
 * Always [`AB_METHOD`].
 */
method: string, 
/**
 * The two variants compared, in name order; `z` is the second's rate minus the first's
 * over the pooled standard error.
 */
compared: Array<string>, 
/**
 * The z statistic; `None` when either variant has no exposures or the pooled rate is 0 or 1.
 */
z: number | null, 
/**
 * Two-sided p-value.
 */
p_value: number | null, 
/**
 * `p_value < 0.05`.
 */
significant: boolean, 
/**
 * Said when there are more than two variants (the two with the best rates are compared)
 * or fewer than two.
 */
note: string | null, };

export type AbTest = { 
/**
 * Test id.
 */
test_id: string, 
/**
 * Variants in name order.
 */
variants: Array<AbVariant>, 
/**
 * The test between the two variants compared.
 */
significance: AbSignificance, };

export type EventTypeCount = { 
/**
 * Event type name.
 */
event_type: string, 
/**
 * How many in the window.
 */
count: number, };

export type Metrics = { 
/**
 * `ok`, or `empty` when the window holds no events.
 */
status: 'ok' | 'empty', 
/**
 * The range asked for.
 */
range: Range, 
/**
 * When this answer was computed.
 */
generated_at: string, 
/**
 * The newest stored event's timestamp, `null` when nothing was ever stored.
 */
last_event_at: string | null, 
/**
 * The windows compared.
 */
window: MetricsWindow, 
/**
 * Headline figures with deltas.
 */
kpis: Kpis, 
/**
 * Visitors by predicted persona.
 */
personas: Array<PersonaShare>, 
/**
 * The journey funnel.
 */
funnel: Array<FunnelStage>, 
/**
 * Tunnel views and CTA clicks.
 */
tunnels: Array<TunnelRow>, 
/**
 * A/B test cohorts.
 */
ab_tests: Array<AbTest>, 
/**
 * Event types by count.
 */
top_events: Array<EventTypeCount>, 
/**
 * Events per bucket and persona label.
 */
chartData: Array<{ date: string } & Record<string, number | string>>, 
/**
 * Revenue, not connected yet.
 */
revenue: { status: string; reason?: string }, };

export type StreamEvent = { 
/**
 * Event id.
 */
event_id: string, 
/**
 * Type.
 */
event_type: string, 
/**
 * Visitor (link to `/api/cdp/profiles/{anonymous_id}`).
 */
anonymous_id: string, 
/**
 * When it happened.
 */
timestamp: string, 
/**
 * Page.
 */
page_url: string, 
/**
 * Page title.
 */
page_title: string | null, 
/**
 * Predicted persona after this event.
 */
predicted_persona: string, 
/**
 * Its label.
 */
persona_label: string, 
/**
 * Its confidence.
 */
persona_confidence: number, 
/**
 * Explicit persona, if chosen.
 */
explicit_persona: string | null, 
/**
 * Stage after this event.
 */
current_stage: string, };

export type EventStream = { 
/**
 * `ok`, or `empty` when no event matches.
 */
status: 'ok' | 'empty', 
/**
 * Newest first.
 */
events: Array<StreamEvent>, };

export type SearchQuery = { 
/**
 * The query, trimmed and lower-cased (queries are grouped that way).
 */
query: string, 
/**
 * Searches in the window.
 */
count: number, 
/**
 * Searches in the window before.
 */
previous: number, 
/**
 * Percent change, `None` when `previous` is 0.
 */
delta_pct: number | null, 
/**
 * Searches in the window that showed no results.
 */
zero_result_count: number, };

export type ZeroResultQuery = { 
/**
 * The query, trimmed and lower-cased.
 */
query: string, 
/**
 * Searches in the window that showed no results.
 */
count: number, };

export type SearchFigures = { 
/**
 * Every search in the two windows.
 */
total: Kpi, 
/**
 * Most searched queries in the window (at most [`SEARCH_LIST_LIMIT`]).
 */
top: Array<SearchQuery>, 
/**
 * Queries with the most zero-result searches in the window.
 */
zero_results: Array<ZeroResultQuery>, };

export type Searches = { 
/**
 * `ok`, or `empty` when the window holds no searches.
 */
status: 'ok' | 'empty', 
/**
 * The range asked for.
 */
range: Range, 
/**
 * Every search in the two windows.
 */
total: Kpi, 
/**
 * Most searched queries in the window (at most [`SEARCH_LIST_LIMIT`]).
 */
top: Array<SearchQuery>, 
/**
 * Queries with the most zero-result searches in the window.
 */
zero_results: Array<ZeroResultQuery>, };

export type CacheReport = { 
/**
 * Profiles held.
 */
entries: number, 
/**
 * Estimated bytes they hold.
 */
bytes: number, 
/**
 * The bound on `bytes`.
 */
max_bytes: number, 
/**
 * Visitors found in the cache when their events arrived, since start.
 */
hits: number, 
/**
 * Visitors that had to be loaded from the store.
 */
misses: number, 
/**
 * `hits / (hits + misses)`, `null` before the first event.
 */
hit_rate: number | null, 
/**
 * Profiles pushed out to stay within the bound.
 */
evictions: number, 
/**
 * Estimated bytes of changed profiles queued for saving (bounded by `max_bytes` too).
 */
awaiting_save_bytes: number, 
/**
 * Changed profiles dropped before their save because saving fell behind; each is
 * rebuilt from the stored events on its visitor's next event, so nothing is lost.
 */
dropped_unsaved: number, };

export type Health = { 
/**
 * `ok`, or `degraded` when the store is unreachable.
 */
status: 'ok' | 'degraded', 
/**
 * `ok` or `unreachable`.
 */
store: 'ok' | 'unreachable', 
/**
 * Backend name: `sqlite`, `postgres` or `supabase`.
 */
backend: string, 
/**
 * When an event was last stored (RFC 3339), `null` before the first. Read from the
 * store, so it survives restarts; while the store is unreachable, the last commit of
 * this process.
 */
last_event_at: string | null, 
/**
 * The writers' profile cache: entries, estimated bytes against the bound, hit rate.
 */
profile_cache: CacheReport, 
/**
 * Events dropped since start-up because they carry an erased person's identifier
 * (`null` when erasing is off: no `--tombstone-key`).
 */
suppressed_events: number | null, };
