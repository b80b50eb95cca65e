//! The banner for a server that cannot answer: its reason, and the health check. No figures are
//! shown with it; the page keeps trying on its two-minute poll.

import { Callout } from '@tremor/react';
import type { Health, Outcome } from '../api';
import { HealthStatus } from './HealthStatus';

export function OfflineBanner({ reason, health }: { reason: string; health: Outcome<Health> }) {
  return (
    <Callout title="CDP offline" color="rose" data-testid="offline" role="alert">
      <p data-testid="offline-reason">{reason}</p>
      <p className="mt-2">
        Health: <HealthStatus health={health} />
      </p>
      <p className="mt-2">Figures are hidden until the server answers again. The page retries every two minutes, or press Refresh.</p>
    </Callout>
  );
}
