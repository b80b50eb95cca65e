//! The persona time series: `chartData` from the metrics answer, one line per persona label that
//! appears in it, in the order of the persona list (labels the list does not name come last).

import { AreaChart, Card, Text, Title } from '@tremor/react';
import type { ChartRow, PersonaShare } from '../api';
import { bucket, count } from '../format';
import { personaColor } from '../palette';

export function PersonaChart({ rows, personas, per }: { rows: ChartRow[]; personas: PersonaShare[]; per: 'hour' | 'day' }) {
  const present = new Set(rows.flatMap((row) => Object.keys(row).filter((key) => key !== 'date')));
  const listed = personas.filter((p) => present.has(p.label));
  const unlisted = [...present].filter((label) => !personas.some((p) => p.label === label)).sort();
  const categories = [...listed.map((p) => p.label), ...unlisted];
  const colors = [...listed.map((p) => personaColor(p.persona)), ...unlisted.map((label) => personaColor(label))];
  const data = rows.map((row) => ({ ...row, bucket: bucket(row.date) }));
  return (
    <Card data-testid="persona-chart" className="h-full">
      <Title>Personas over time</Title>
      <Text>Events per {per}, by the persona predicted at each event (times in UTC).</Text>
      {rows.length === 0 ? (
        <Text className="mt-6">No activity in this range.</Text>
      ) : (
        <AreaChart
          className="mt-4 h-72"
          data={data}
          index="bucket"
          categories={categories}
          colors={colors}
          valueFormatter={count}
          yAxisWidth={48}
          allowDecimals={false}
          showAnimation={false}
        />
      )}
    </Card>
  );
}
