//! The four headline figures for the range, each with its change against the window before.

import { Card, Flex, Grid, Metric, Text } from '@tremor/react';
import type { Kpi, Metrics } from '../api';
import { count, rangeName } from '../format';
import { DeltaBadge } from './DeltaBadge';

const KPIS: { key: keyof Metrics['kpis']; title: string }[] = [
  { key: 'events', title: 'Events' },
  { key: 'unique_visitors', title: 'Unique visitors' },
  { key: 'sessions', title: 'Sessions' },
  { key: 'identified_profiles', title: 'Identified profiles' },
];

export function KpiCards({ kpis, range }: { kpis: Metrics['kpis']; range: string }) {
  return (
    <Grid numItemsSm={2} numItemsLg={4} className="gap-4">
      {KPIS.map(({ key, title }) => (
        <KpiCard key={key} id={key} title={title} kpi={kpis[key]} range={range} />
      ))}
    </Grid>
  );
}

function KpiCard({ id, title, kpi, range }: { id: string; title: string; kpi: Kpi; range: string }) {
  return (
    <Card data-testid={`kpi-${id}`} decoration="top" decorationColor="blue">
      <Flex alignItems="start">
        <Text>{title}</Text>
        <DeltaBadge delta={kpi.delta_pct} value={kpi.value} />
      </Flex>
      <Metric className="mt-1" data-testid="value">
        {count(kpi.value)}
      </Metric>
      <Text className="mt-1" data-testid="previous">
        {count(kpi.previous)} in the previous {rangeName(range)}
      </Text>
    </Card>
  );
}
