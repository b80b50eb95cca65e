//! A/B tests: exposures, conversions and rate per variant, and the significance figure with the
//! name of the test the server ran to get it.

import { Badge, Card, Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow, Text, Title } from '@tremor/react';
import type { AbTest } from '../api';
import { count, decimal, fraction, pValue } from '../format';

export function AbTests({ tests }: { tests: AbTest[] }) {
  return (
    <Card data-testid="ab-tests">
      <Title>A/B tests</Title>
      {tests.length === 0 ? (
        <Text className="mt-4">No test exposures in this range.</Text>
      ) : (
        tests.map((test) => <AbTestBlock key={test.test_id} test={test} />)
      )}
    </Card>
  );
}

function AbTestBlock({ test }: { test: AbTest }) {
  const { significance } = test;
  return (
    <section className="mt-4 border-t border-gray-100 pt-4 first-of-type:border-0 first-of-type:pt-0" data-testid="ab-test" data-test-id={test.test_id}>
      <div className="flex flex-wrap items-center justify-between gap-2">
        <span className="font-medium text-gray-900">{test.test_id}</span>
        <Badge color={significance.significant ? 'emerald' : 'gray'} size="xs" data-testid="significant">
          {significance.significant ? 'significant' : 'not significant'}
        </Badge>
      </div>
      <p className="mt-1 text-tremor-default text-tremor-content" data-testid="significance">
        {significance.method} · z = {decimal(significance.z)} · p = {pValue(significance.p_value)}
      </p>
      <Table className="mt-2">
        <TableHead>
          <TableRow>
            <TableHeaderCell className="px-3 py-2.5">Variant</TableHeaderCell>
            <TableHeaderCell className="px-3 py-2.5 text-right">Exposures</TableHeaderCell>
            <TableHeaderCell className="px-3 py-2.5 text-right">Conversions</TableHeaderCell>
            <TableHeaderCell className="px-3 py-2.5 text-right">Rate</TableHeaderCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {test.variants.map((v) => (
            <TableRow key={v.variant} data-testid="variant-row">
              <TableCell className="px-3 py-2.5 font-medium text-gray-900">{v.variant}</TableCell>
              <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(v.exposures)}</TableCell>
              <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(v.conversions)}</TableCell>
              <TableCell className="px-3 py-2.5 text-right tabular-nums">{fraction(v.rate)}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </section>
  );
}
