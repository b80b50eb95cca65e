//! Site search in the range: the total with its change, the top queries with their change against
//! the previous window, and the queries that found nothing (content the site is missing).

import { Card, Flex, Grid, Metric, Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow, Text, Title } from '@tremor/react';
import type { Searches } from '../api';
import { count } from '../format';
import { DeltaBadge } from './DeltaBadge';

export function SearchesPanel({ searches }: { searches: Searches }) {
  return (
    <Grid numItemsLg={3} className="gap-4" data-testid="searches">
      <Card className="lg:col-span-2" data-testid="top-searches">
        <Flex alignItems="start">
          <div>
            <Title>Searches</Title>
            <Text>Top queries, with the change against the previous window.</Text>
          </div>
          <div className="text-right" data-testid="search-total">
            <Metric data-testid="value">{count(searches.total.value)}</Metric>
            <DeltaBadge delta={searches.total.delta_pct} value={searches.total.value} />
          </div>
        </Flex>
        {searches.top.length === 0 ? (
          <Text className="mt-4">No searches in this range.</Text>
        ) : (
          <Table className="mt-4">
            <TableHead>
              <TableRow>
                <TableHeaderCell className="px-3 py-2.5">Query</TableHeaderCell>
                <TableHeaderCell className="px-3 py-2.5 text-right">Searches</TableHeaderCell>
                <TableHeaderCell className="px-3 py-2.5 text-right">Previous</TableHeaderCell>
                <TableHeaderCell className="px-3 py-2.5 text-right">Change</TableHeaderCell>
                <TableHeaderCell className="px-3 py-2.5 text-right">No results</TableHeaderCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {searches.top.map((q) => (
                <TableRow key={q.query} data-testid="search-row">
                  <TableCell className="px-3 py-2.5 font-medium text-gray-900" data-testid="query">
                    {q.query}
                  </TableCell>
                  <TableCell className="px-3 py-2.5 text-right tabular-nums" data-testid="count">
                    {count(q.count)}
                  </TableCell>
                  <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(q.previous)}</TableCell>
                  <TableCell className="px-3 py-2.5 text-right">
                    <DeltaBadge delta={q.delta_pct} value={q.count} />
                  </TableCell>
                  <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(q.zero_result_count)}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        )}
      </Card>
      <Card data-testid="content-gaps" decoration="left" decorationColor="amber">
        <Title>Content gaps</Title>
        <Text>Searches that returned no results.</Text>
        {searches.zero_results.length === 0 ? (
          <Text className="mt-4">Every search found something.</Text>
        ) : (
          <ul className="mt-4 divide-y divide-gray-100 text-tremor-default">
            {searches.zero_results.map((q) => (
              <li key={q.query} className="flex justify-between py-2" data-testid="gap-row">
                <span className="text-gray-900">{q.query}</span>
                <span className="tabular-nums text-gray-600">{count(q.count)}</span>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </Grid>
  );
}
