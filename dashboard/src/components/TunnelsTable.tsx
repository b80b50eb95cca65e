//! Reality Tunnels: views and hero call-to-action clicks per tunnel in the range.

import { Card, Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow, Text, Title } from '@tremor/react';
import type { TunnelRow } from '../api';
import { count, fraction } from '../format';

export function TunnelsTable({ rows }: { rows: TunnelRow[] }) {
  return (
    <Card data-testid="tunnels">
      <Title>Reality Tunnels</Title>
      <Text>Tunnel views and hero call-to-action clicks.</Text>
      {rows.length === 0 ? (
        <Text className="mt-4">No tunnel views in this range.</Text>
      ) : (
        <Table className="mt-4">
          <TableHead>
            <TableRow>
              <TableHeaderCell className="px-3 py-2.5">Tunnel</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5 text-right">Views</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5 text-right">CTA clicks</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5 text-right">Click rate</TableHeaderCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {rows.map((r) => (
              <TableRow key={r.tunnel} data-testid="tunnel-row">
                <TableCell className="px-3 py-2.5 font-medium text-gray-900">{r.tunnel}</TableCell>
                <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(r.views)}</TableCell>
                <TableCell className="px-3 py-2.5 text-right tabular-nums">{count(r.cta_clicks)}</TableCell>
                <TableCell className="px-3 py-2.5 text-right tabular-nums">{fraction(r.click_rate)}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </Card>
  );
}
