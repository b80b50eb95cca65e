//! The server's `/health` answer in a line: whether the store is reachable, and the last event.

import { Badge } from '@tremor/react';
import type { Health, Outcome } from '../api';
import { dateTime } from '../format';

export function HealthStatus({ health }: { health: Outcome<Health> }) {
  if (health.kind !== 'ok') {
    const why = health.kind === 'offline' ? health.reason : health.kind === 'unauthorized' ? 'sign-in required' : 'not found';
    return (
      <span data-testid="health" data-status="unreachable">
        <Badge color="rose" size="xs">
          no answer
        </Badge>{' '}
        <span className="text-gray-600">{why}</span>
      </span>
    );
  }
  const h = health.data;
  return (
    <span data-testid="health" data-status={h.status}>
      <Badge color={h.status === 'ok' ? 'emerald' : 'rose'} size="xs">
        {h.status}
      </Badge>{' '}
      <span className="text-gray-600">
        store {h.store}
        {h.backend ? ` (${h.backend})` : ''} · last event {h.last_event_at ? dateTime(h.last_event_at) : 'none yet'}
      </span>
    </span>
  );
}
