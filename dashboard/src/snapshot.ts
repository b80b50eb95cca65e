//! What the page shows at a time, as one value: loading, ready (the figures and when they came),
//! empty, offline or signed out. Each load replaces the whole snapshot, so a failed load can
//! never leave figures from an earlier one on screen. Loads happen on open, on a range change,
//! on Refresh and every two minutes; a newer load cancels an older one still in flight.

import { useCallback, useEffect, useRef, useState } from 'react';
import * as api from './api';
import type { EventStream, Health, IdentityFigures, Metrics, Outcome, Person, Range, Searches, VisitorProfile } from './api';

/** How often the page reloads on its own. */
export const POLL_MS = 2 * 60 * 1000;

/** Rows in the live event stream. */
export const STREAM_LIMIT = 50;

export type Snapshot =
  | { kind: 'loading' }
  | { kind: 'ready'; metrics: Metrics; stream: EventStream; searches: Searches; at: Date }
  | { kind: 'empty'; metrics: Metrics; health: Outcome<Health>; at: Date }
  | { kind: 'offline'; reason: string; health: Outcome<Health>; at: Date }
  | { kind: 'unauthorized'; at: Date };

export interface Dashboard {
  snapshot: Snapshot;
  /** A load is in flight (the first one, a refresh or a poll). */
  refreshing: boolean;
  refresh: () => void;
}

/** The dashboard's data for `range`, reloaded every `POLL_MS`. */
export function useDashboard(range: Range): Dashboard {
  const [snapshot, setSnapshot] = useState<Snapshot>({ kind: 'loading' });
  const [refreshing, setRefreshing] = useState(false);
  const inFlight = useRef<AbortController | null>(null);

  const load = useCallback(async () => {
    inFlight.current?.abort();
    const controller = new AbortController();
    inFlight.current = controller;
    setRefreshing(true);
    try {
      const next = await loadSnapshot(range, controller.signal);
      if (!controller.signal.aborted) setSnapshot(next);
    } catch (error) {
      if (!controller.signal.aborted) {
        const reason = `the dashboard failed to load (${error instanceof Error ? error.message : String(error)})`;
        setSnapshot({ kind: 'offline', reason, health: { kind: 'offline', reason }, at: new Date() });
      }
    } finally {
      if (inFlight.current === controller) {
        inFlight.current = null;
        setRefreshing(false);
      }
    }
  }, [range]);

  useEffect(() => {
    // Figures for another range must not stay on screen while this one loads.
    setSnapshot({ kind: 'loading' });
    void load();
    const timer = setInterval(() => void load(), POLL_MS);
    return () => {
      clearInterval(timer);
      inFlight.current?.abort();
    };
  }, [load]);

  const refresh = useCallback(() => void load(), [load]);
  return { snapshot, refreshing, refresh };
}

async function loadSnapshot(range: Range, signal: AbortSignal): Promise<Snapshot> {
  const [metrics, stream, searches, health] = await Promise.all([
    api.metrics(range, signal),
    api.events(STREAM_LIMIT, signal),
    api.searches(range, signal),
    api.health(signal),
  ]);
  const at = new Date();
  const answers = [metrics, stream, searches];
  if (answers.some((answer) => answer.kind === 'unauthorized')) return { kind: 'unauthorized', at };
  // One endpoint down means the store is down for all of them: show none of their figures.
  for (const answer of answers) {
    if (answer.kind === 'offline') return { kind: 'offline', reason: answer.reason, health, at };
    if (answer.kind === 'not_found') {
      return { kind: 'offline', reason: 'this server has no dashboard API (/api/cdp answered 404)', health, at };
    }
  }
  if (metrics.kind !== 'ok' || stream.kind !== 'ok' || searches.kind !== 'ok') throw new Error('unreachable');
  // "empty" from the API means no events in this window; the setup checklist is only for a
  // store that has never seen an event. Older data shows as a window of zeros instead.
  if (metrics.data.status === 'empty' && metrics.data.last_event_at == null) {
    return { kind: 'empty', metrics: metrics.data, health, at };
  }
  return { kind: 'ready', metrics: metrics.data, stream: stream.data, searches: searches.data, at };
}

export type VisitorSnapshot = { kind: 'loading' } | Outcome<VisitorProfile>;

/** The person a visitor belongs to, across browsers and identifiers. */
export type PersonSnapshot = { kind: 'loading' } | Outcome<Person>;

/** The identity figures of the whole log. */
export type IdentitySnapshot = { kind: 'loading' } | Outcome<IdentityFigures>;

/** One visitor's profile and explanation, loaded when `anonymousId` changes. */
export function useVisitor(anonymousId: string | null): VisitorSnapshot {
  return useKeyed(anonymousId, api.profile);
}

/** The person of one visitor, loaded when `anonymousId` changes. */
export function usePerson(anonymousId: string | null): PersonSnapshot {
  return useKeyed(anonymousId, api.person);
}

/** The identity figures, loaded when the page opens and on every dashboard reload (`at`). */
export function useIdentity(at: Date | null): IdentitySnapshot {
  return useKeyed(at === null ? null : at.toISOString(), (_key, signal) => api.identity(signal));
}

/** One answer per key: loaded when `key` changes, kept with the key it is for, so another key
 * never shows, even for a frame, the answer before. */
function useKeyed<T>(key: string | null, load: (key: string, signal: AbortSignal) => Promise<Outcome<T>>): { kind: 'loading' } | Outcome<T> {
  const [loaded, setLoaded] = useState<{ id: string; snapshot: { kind: 'loading' } | Outcome<T> } | null>(null);
  useEffect(() => {
    if (key === null) return;
    const id = key;
    const controller = new AbortController();
    load(id, controller.signal).then(
      (outcome) => {
        if (!controller.signal.aborted) setLoaded({ id, snapshot: outcome });
      },
      (error) => {
        if (!controller.signal.aborted) setLoaded({ id, snapshot: { kind: 'offline', reason: String(error) } });
      },
    );
    return () => controller.abort();
    // `load` is a module function; only the key decides when to load.
  }, [key]);
  return loaded !== null && loaded.id === key ? loaded.snapshot : { kind: 'loading' };
}
