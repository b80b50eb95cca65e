//! The four headline figures for the range, each with its change against the window before, and
//! revenue beside them in whatever state the API reports it.

import { Card, Flex, Grid, Metric, Text } from '@tremor/react';
import type { Kpi, Metrics } from '../api';
import { count, rangeName } from '../format';
import { DeltaBadge } from './DeltaBadge';
import { Revenue } from './Revenue';

const KPIS: { key: keyof Metrics['kpis']; title: string }[] = [
  { key: 'events', title: 'Events' },
  { key: 'unique_visitors', title: 'Unique visitors' },
  { key: 'sessions', title: 'Sessions' },
  { key: 'identified_profiles', title: 'Identified profiles' },
];

export function KpiCards({ kpis, range, revenue }: { kpis: Metrics['kpis']; range: string; revenue: Metrics['revenue'] }) {
  return (
    <Grid numItemsSm={2} numItemsLg={5} className="gap-4">
      {KPIS.map(({ key, title }) => (
        <KpiCard key={key} id={key} title={title} kpi={kpis[key]} range={range} />
      ))}
      <Revenue section={revenue} />
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
      <p className="mt-1 text-tremor-default text-tremor-content" data-testid="previous">
        previous {rangeName(range)}: {count(kpi.previous)}
      </p>
    </Card>
  );
}
