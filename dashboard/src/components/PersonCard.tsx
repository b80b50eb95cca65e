//! The person a visitor belongs to, at the top of the visitor drawer: the person's id, its
//! browsers (each opens its own view), every identifier with the link that attached it (the
//! event, its time, and whether an admin made it), the links the identity guards refused with
//! the reason, exclusions, and the person's persona and stage over all its browsers' events.
//! The answer is `/api/cdp/people/{anonymous_id}`'s.

import { Badge, Callout, Card, Table, TableBody, TableCell, TableHead, TableHeaderCell, TableRow, Text, Title } from '@tremor/react';
import type { IdentifierRef, IdentityEdge, Person } from '../api';
import { count, dateTime, fraction, personaLabel, words } from '../format';
import { personaColor } from '../palette';
import { visitorHref } from '../route';
import type { PersonSnapshot } from '../snapshot';
import { Bone } from './Skeleton';

export function PersonCard({ snapshot, anonymousId }: { snapshot: PersonSnapshot; anonymousId: string }) {
  return (
    <Card data-testid="person" data-state={snapshot.kind}>
      <Title>Person</Title>
      <div className="mt-3">
        <PersonBody snapshot={snapshot} anonymousId={anonymousId} />
      </div>
    </Card>
  );
}

function PersonBody({ snapshot, anonymousId }: { snapshot: PersonSnapshot; anonymousId: string }) {
  switch (snapshot.kind) {
    case 'loading':
      return <Bone className="h-16 w-full" />;
    case 'not_found':
      return (
        <p className="text-tremor-default text-gray-500" data-testid="person-unavailable">
          No person for this visitor: it has no stored events, or this server does not answer
          /api/cdp/people.
        </p>
      );
    case 'unauthorized':
      return <Text>Sign in to see the person.</Text>;
    case 'offline':
      return (
        <Callout title="Person unavailable" color="rose">
          {snapshot.reason}
        </Callout>
      );
    case 'ok':
      return <PersonView person={snapshot.data} anonymousId={anonymousId} />;
  }
}

function side(edge: IdentityEdge, of: IdentifierRef): IdentifierRef {
  return edge.a.kind === of.kind && edge.a.value === of.value ? edge.b : edge.a;
}

function Id({ id }: { id: IdentifierRef }) {
  return (
    <span>
      <span className="text-gray-500">{words(id.kind)}</span> <span className="font-mono text-gray-900">{id.value}</span>
    </span>
  );
}

function PersonView({ person, anonymousId }: { person: Person; anonymousId: string }) {
  const { profile, persona_labels: labels } = person.profile;
  const events = Object.values(profile.event_counts).reduce((a, b) => a + b, 0);
  return (
    <div className="space-y-4">
      <div className="grid grid-cols-2 gap-4 sm:grid-cols-4">
        <div>
          <div className="text-tremor-label uppercase tracking-wide text-gray-400">Person id</div>
          <div className="mt-1 truncate font-mono text-tremor-default text-gray-900" data-testid="person-id" title={person.person_id}>
            {person.person_id}
          </div>
        </div>
        <div>
          <div className="text-tremor-label uppercase tracking-wide text-gray-400">Across its browsers</div>
          <div className="mt-1 text-tremor-default" data-testid="person-persona">
            <Badge color={personaColor(profile.predicted_persona)}>{personaLabel(labels, profile.predicted_persona)}</Badge>{' '}
            <span className="tabular-nums text-gray-700">{fraction(profile.persona_confidence)}</span>
          </div>
        </div>
        <div>
          <div className="text-tremor-label uppercase tracking-wide text-gray-400">Stage</div>
          <div className="mt-1 capitalize text-tremor-default text-gray-900" data-testid="person-stage">
            {words(profile.current_stage)}
          </div>
        </div>
        <div>
          <div className="text-tremor-label uppercase tracking-wide text-gray-400">Events</div>
          <div className="mt-1 tabular-nums text-tremor-default text-gray-900" data-testid="person-events">
            {count(events)}
          </div>
        </div>
      </div>

      <div>
        <h3 className="text-tremor-default font-medium text-gray-900">Browsers</h3>
        <ul className="mt-1 flex flex-wrap gap-2" data-testid="person-browsers">
          {person.browsers.map((b) => (
            <li key={b}>
              {b === anonymousId ? (
                <span className="rounded-tremor-small bg-gray-200 px-2 py-0.5 font-mono text-tremor-label text-gray-900" data-testid="person-browser" aria-current="true">
                  {b} (this one)
                </span>
              ) : (
                <a href={visitorHref(b)} className="rounded-tremor-small bg-white px-2 py-0.5 font-mono text-tremor-label text-blue-700 underline" data-testid="person-browser">
                  {b}
                </a>
              )}
            </li>
          ))}
        </ul>
      </div>

      <Table>
        <TableHead>
          <TableRow>
            <TableHeaderCell className="px-2 py-2">Identifier</TableHeaderCell>
            <TableHeaderCell className="px-2 py-2">Attached by</TableHeaderCell>
            <TableHeaderCell className="px-2 py-2">When</TableHeaderCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {person.identifiers.map((m) => (
            <TableRow key={`${m.kind}:${m.value}`} data-testid="person-identifier" data-kind={m.kind}>
              <TableCell className="whitespace-normal break-all px-2 py-2">
                <Id id={m} />
              </TableCell>
              <TableCell className="whitespace-normal break-all px-2 py-2" data-testid="attached-by">
                {m.attached_by === null ? (
                  <span className="text-gray-500">a browser alone</span>
                ) : (
                  <span>
                    {m.attached_by.origin === 'admin' ? 'an admin merge with ' : 'an event linking it to '}
                    <Id id={side(m.attached_by, m)} />
                  </span>
                )}
              </TableCell>
              <TableCell className="px-2 py-2 tabular-nums text-gray-500">{m.attached_by ? dateTime(m.attached_by.at) : '–'}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>

      <div data-testid="person-refused">
        <h3 className="text-tremor-default font-medium text-gray-900">Refused links</h3>
        {person.rejected.length === 0 ? (
          <Text className="mt-1">None: every link naming this person was applied.</Text>
        ) : (
          <ul className="mt-1 space-y-1 text-tremor-default">
            {person.rejected.map((r) => (
              <li key={`${r.edge.event_id}-${r.edge.a.value}-${r.edge.b.value}`} data-testid="refused-link" data-reason={r.reason}>
                <Badge color="amber">{words(r.reason)}</Badge> <Id id={r.edge.a} /> – <Id id={r.edge.b} />{' '}
                <span className="tabular-nums text-gray-500">{dateTime(r.edge.at)}</span>
              </li>
            ))}
          </ul>
        )}
      </div>

      {person.exclusions.length > 0 && (
        <div data-testid="person-exclusions">
          <h3 className="text-tremor-default font-medium text-gray-900">Kept apart by an admin</h3>
          <ul className="mt-1 space-y-1 text-tremor-default">
            {person.exclusions.map((e) => (
              <li key={`${e.event_id}`}>
                <Id id={e.a} /> – <Id id={e.b} /> <span className="tabular-nums text-gray-500">{dateTime(e.at)}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
