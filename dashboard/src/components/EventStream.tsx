//! The latest events, newest first as the API sends them. Each visitor id links to that visitor's
//! profile and explanation. `labels` names the personas a visitor chose (the stream sends only the
//! predicted persona's label).

import { Badge, Card, Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow, Text, Title } from '@tremor/react';
import type { StreamEvent } from '../api';
import { useNow } from '../clock';
import { ago, dateTime, fraction, personaLabel, shortId, timeOfDay, words } from '../format';
import { personaColor } from '../palette';
import { visitorHref } from '../route';

export function EventStream({ events, labels }: { events: StreamEvent[]; labels: Record<string, string> }) {
  const now = useNow(10_000);
  return (
    <Card data-testid="stream">
      <Title>Live event stream</Title>
      <Text>The latest events, newest first. Open a visitor to see why they got their persona and stage.</Text>
      {events.length === 0 ? (
        <Text className="mt-4">No events yet.</Text>
      ) : (
        <Table className="mt-4">
          <TableHead>
            <TableRow>
              <TableHeaderCell className="px-3 py-2.5">Time</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5">Event</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5">Visitor</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5">Persona</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5">Stage</TableHeaderCell>
              <TableHeaderCell className="px-3 py-2.5">Page</TableHeaderCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {events.map((e) => (
              <TableRow key={e.event_id} data-testid="stream-row" data-event-id={e.event_id}>
                <TableCell className="px-3 py-2.5 whitespace-nowrap">
                  <time dateTime={e.timestamp} title={dateTime(e.timestamp)} className="tabular-nums text-gray-900">
                    {timeOfDay(e.timestamp)}
                  </time>
                  <span className="ml-2 text-tremor-label text-gray-400">{ago(new Date(e.timestamp), now)}</span>
                </TableCell>
                <TableCell className="px-3 py-2.5 text-gray-900" data-testid="event-type">
                  {e.event_type}
                </TableCell>
                <TableCell className="px-3 py-2.5">
                  <a
                    href={visitorHref(e.anonymous_id)}
                    className="font-mono text-tremor-label text-blue-600 hover:underline"
                    title={e.anonymous_id}
                    data-testid="visitor-link"
                  >
                    {shortId(e.anonymous_id, 14)}
                  </a>
                </TableCell>
                <TableCell className="px-3 py-2.5 whitespace-nowrap">
                  <Badge color={personaColor(e.predicted_persona)} size="xs" data-testid="persona">
                    {e.persona_label}
                  </Badge>
                  <span className="ml-2 text-tremor-label tabular-nums text-gray-500">{fraction(e.persona_confidence)}</span>
                  {e.explicit_persona && (
                    <span className="ml-1 text-tremor-label text-gray-500" data-testid="explicit">
                      {e.explicit_persona === e.predicted_persona ? '· chosen' : `· chose ${personaLabel(labels, e.explicit_persona)}`}
                    </span>
                  )}
                </TableCell>
                <TableCell className="px-3 py-2.5 capitalize" data-testid="stage">
                  {words(e.current_stage)}
                </TableCell>
                <TableCell className="px-3 py-2.5 max-w-[15rem] truncate" title={e.page_url}>
                  {e.page_title ?? pathOf(e.page_url)}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </Card>
  );
}

/** The path of a page URL, which says more in a narrow cell than its scheme and host. */
function pathOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return url;
  }
}
