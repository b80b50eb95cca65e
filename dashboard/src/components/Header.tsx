//! The top bar: title, the window the figures cover, the range selector, Refresh and how fresh
//! the figures are.

import { Button, Tab, TabGroup, TabList } from '@tremor/react';
import { RANGES } from '../api';
import type { MetricsWindow, Range } from '../api';
import { useNow } from '../clock';
import { ago, shortDateTime } from '../format';

export interface Freshness {
  /** "updated" after figures arrived; "checked" after a load that brought none. */
  label: 'Last updated' | 'Last checked';
  at: Date;
}

export function Header({
  range,
  onRange,
  refreshing,
  onRefresh,
  freshness,
  window: span,
  lastEventAt,
}: {
  range: Range;
  onRange: (range: Range) => void;
  refreshing: boolean;
  onRefresh: () => void;
  freshness: Freshness | null;
  window: MetricsWindow | null;
  lastEventAt: string | null;
}) {
  return (
    <header className="flex flex-wrap items-end justify-between gap-4">
      <div>
        <h1 className="text-2xl font-semibold text-gray-900">CDP Analytics</h1>
        <p className="mt-1 text-tremor-default text-gray-500" data-testid="window">
          {span ? (
            <>
              {shortDateTime(span.start)} – {shortDateTime(span.end)}
              {lastEventAt && <LastEvent at={lastEventAt} />}
            </>
          ) : (
            'First-party behaviour, personas and journeys'
          )}
        </p>
      </div>
      <div className="flex flex-wrap items-center gap-3">
        <FreshnessLabel freshness={freshness} />
        <TabGroup className="w-auto" index={RANGES.indexOf(range)} onIndexChange={(i) => onRange(RANGES[i] ?? range)}>
          <TabList variant="solid" data-testid="range">
            {RANGES.map((r) => (
              <Tab key={r} data-range={r}>
                {r}
              </Tab>
            ))}
          </TabList>
        </TabGroup>
        <Button variant="secondary" size="xs" onClick={onRefresh} loading={refreshing} data-testid="refresh">
          Refresh
        </Button>
      </div>
    </header>
  );
}

function LastEvent({ at }: { at: string }) {
  const now = useNow(10_000);
  return <span data-testid="last-event"> · last event {ago(new Date(at), now)}</span>;
}

/** Ticks every second so "X ago" stays true between loads. */
function FreshnessLabel({ freshness }: { freshness: Freshness | null }) {
  const now = useNow(1000);
  if (!freshness) {
    return (
      <span className="min-w-[11rem] text-right text-tremor-default text-gray-500" data-testid="last-updated">
        Loading…
      </span>
    );
  }
  return (
    <time className="min-w-[11rem] text-right text-tremor-default tabular-nums text-gray-500" dateTime={freshness.at.toISOString()} data-testid="last-updated">
      {freshness.label} {ago(freshness.at, now)}
    </time>
  );
}
