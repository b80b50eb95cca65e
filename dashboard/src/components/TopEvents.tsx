//! Event types by count in the range.

import { BarList, Card, Text, Title } from '@tremor/react';
import type { EventTypeCount } from '../api';
import { count } from '../format';

export function TopEvents({ rows }: { rows: EventTypeCount[] }) {
  return (
    <Card data-testid="top-events">
      <Title>Top event types</Title>
      {rows.length === 0 ? (
        <Text className="mt-4">No events in this range.</Text>
      ) : (
        <BarList
          className="mt-4"
          data={rows.map((r) => ({ key: r.event_type, name: r.event_type, value: r.count }))}
          valueFormatter={count}
          sortOrder="none"
          showAnimation={false}
        />
      )}
    </Card>
  );
}
