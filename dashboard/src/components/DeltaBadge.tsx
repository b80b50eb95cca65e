//! The change badge next to a figure: the API's `delta_pct`, written out, with an arrow in its
//! direction. When the API sends null (nothing in the previous window) the badge says "new", or
//! "—" when both windows are empty; it never works out a change itself.

import { Badge, BadgeDelta } from '@tremor/react';
import { deltaPct, noDelta } from '../format';

export function DeltaBadge({ delta, value }: { delta: number | null; value: number }) {
  if (delta === null) {
    return (
      <Badge color="gray" size="xs" data-testid="delta">
        {noDelta(value)}
      </Badge>
    );
  }
  const text = deltaPct(delta);
  const type = text === '0.0%' ? 'unchanged' : delta > 0 ? 'moderateIncrease' : 'moderateDecrease';
  return (
    <BadgeDelta deltaType={type} size="xs" data-testid="delta">
      {text}
    </BadgeDelta>
  );
}
