//! One visitor in a drawer over the dashboard: first the person it belongs to (its browsers and
//! identifiers, see `PersonCard`), then this browser's golden profile: predicted and chosen
//! persona, the persona scores, every signal that contributed to them (with its weight, decay
//! and points), the journey stage with the rule that set it, and the stage history. All figures
//! are the API's.

import { useEffect } from 'react';
import type { ReactNode } from 'react';
import {
  Badge,
  Callout,
  Card,
  Flex,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableHeaderCell,
  TableRow,
  Text,
  Title,
} from '@tremor/react';
import type { VisitorProfile } from '../api';
import { ageHours, count, dateTime, decimal, fraction, personaLabel, words } from '../format';
import { personaColor } from '../palette';
import { DASHBOARD_HREF } from '../route';
import type { PersonSnapshot, VisitorSnapshot } from '../snapshot';
import { PersonCard } from './PersonCard';
import { Bone } from './Skeleton';

export function VisitorView({
  anonymousId,
  snapshot,
  person,
  loginPath,
}: {
  anonymousId: string;
  snapshot: VisitorSnapshot;
  person: PersonSnapshot;
  loginPath: string;
}) {
  useEffect(() => {
    const close = (event: KeyboardEvent) => {
      if (event.key === 'Escape') window.location.hash = DASHBOARD_HREF;
    };
    window.addEventListener('keydown', close);
    // The drawer scrolls on its own; the dashboard behind it stays put.
    const overflow = document.body.style.overflow;
    document.body.style.overflow = 'hidden';
    return () => {
      window.removeEventListener('keydown', close);
      document.body.style.overflow = overflow;
    };
  }, []);

  return (
    <div className="fixed inset-0 z-40 flex justify-end" role="dialog" aria-modal="true" aria-label="Visitor">
      <a href={DASHBOARD_HREF} className="absolute inset-0 bg-gray-900/30" aria-label="Close the visitor view" tabIndex={-1} />
      <aside
        className="relative h-full w-full max-w-4xl overflow-y-auto bg-gray-50 p-6 shadow-xl"
        data-testid="visitor"
        data-state={snapshot.kind}
      >
        <Flex alignItems="start">
          <div className="min-w-0">
            <Text>Visitor</Text>
            <h2 className="truncate font-mono text-tremor-title font-semibold text-gray-900" data-testid="visitor-id">
              {anonymousId}
            </h2>
          </div>
          <a
            href={DASHBOARD_HREF}
            className="rounded-tremor-default border border-gray-200 bg-white px-3 py-1.5 text-tremor-default text-gray-700 shadow-tremor-input hover:bg-gray-50"
            data-testid="close-visitor"
          >
            Close
          </a>
        </Flex>
        <div className="mt-6 space-y-4">
          <PersonCard snapshot={person} anonymousId={anonymousId} />
          <VisitorBody snapshot={snapshot} loginPath={loginPath} />
        </div>
      </aside>
    </div>
  );
}

function VisitorBody({ snapshot, loginPath }: { snapshot: VisitorSnapshot; loginPath: string }) {
  switch (snapshot.kind) {
    case 'loading':
      return (
        <div className="space-y-4" aria-busy="true" data-testid="visitor-loading">
          <Card>
            <Bone className="h-4 w-40" />
            <Bone className="mt-4 h-24 w-full" />
          </Card>
          <Card>
            <Bone className="h-4 w-40" />
            <Bone className="mt-4 h-48 w-full" />
          </Card>
        </div>
      );
    case 'not_found':
      return (
        <Callout title="No profile for this visitor" color="gray" data-testid="visitor-not-found">
          The store has no profile with this id. Profiles expire after a period without events.
        </Callout>
      );
    case 'unauthorized':
      return (
        <Callout title="Sign in to see visitor profiles" color="amber">
          <a className="text-blue-600 underline" href={loginPath}>
            Sign in
          </a>
        </Callout>
      );
    case 'offline':
      return (
        <Callout title="CDP offline" color="rose" data-testid="visitor-offline">
          {snapshot.reason}
        </Callout>
      );
    case 'ok':
      return <VisitorProfileView visitor={snapshot.data} />;
  }
}

function VisitorProfileView({ visitor }: { visitor: VisitorProfile }) {
  const { profile, persona_labels: labels, explanation, stage } = visitor;
  const label = (id: string) => personaLabel(labels, id);
  const personas = Object.keys(explanation.scores.probabilities).sort(
    (a, b) => (explanation.scores.probabilities[b] ?? 0) - (explanation.scores.probabilities[a] ?? 0),
  );
  return (
    <>
      <Card data-testid="visitor-persona">
        <Title>Persona</Title>
        <div className="mt-3 grid grid-cols-2 gap-4 sm:grid-cols-4">
          <Fact name="Predicted" testId="predicted">
            <Badge color={personaColor(profile.predicted_persona)}>{label(profile.predicted_persona)}</Badge>
          </Fact>
          <Fact name="Confidence" testId="persona-confidence">
            {fraction(profile.persona_confidence)}
          </Fact>
          <Fact name="Chosen by the visitor" testId="explicit">
            {profile.explicit_persona ? (
              <Badge color={personaColor(profile.explicit_persona)}>{label(profile.explicit_persona)}</Badge>
            ) : (
              <span className="text-gray-500">none</span>
            )}
          </Fact>
          <Fact name="Evidence (points)" testId="evidence">
            {decimal(explanation.scores.evidence)}
          </Fact>
        </div>
        <ul className="mt-4 space-y-2" data-testid="scores">
          {personas.map((id) => {
            const p = explanation.scores.probabilities[id] ?? 0;
            return (
              <li key={id} className="grid grid-cols-[9rem_1fr_4rem_5rem] items-center gap-3 text-tremor-default" data-testid="score-row" data-persona={id}>
                <span className="text-gray-700">{label(id)}</span>
                <span className="h-2 rounded-full bg-gray-200">
                  <span className={`block h-2 rounded-full bg-${personaColor(id)}-500`} style={{ width: `${p * 100}%` }} />
                </span>
                <span className="text-right tabular-nums text-gray-900">{fraction(p)}</span>
                <span className="text-right tabular-nums text-gray-500">{decimal(explanation.points[id] ?? 0)} pts</span>
              </li>
            );
          })}
        </ul>
      </Card>

      <Card data-testid="explanation">
        <Title data-testid="title">Why {label(explanation.scores.predicted)}</Title>
        <Text>
          Each signal counts its weight times the decay for its age; a persona’s points are the sum of its signals, and the
          scores are each persona’s share of all points.
        </Text>
        <Table className="mt-3">
          <TableHead>
            <TableRow>
              <TableHeaderCell className="px-2 py-2">Event</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2">Signal</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2">Persona</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2">Hint</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2 text-right">Weight</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2 text-right">Age</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2 text-right">Decay</TableHeaderCell>
              <TableHeaderCell className="px-2 py-2 text-right">Points</TableHeaderCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {explanation.contributions.map((c) => (
              <TableRow key={c.event_id} data-testid="contribution" data-event-id={c.event_id}>
                <TableCell className="px-2 py-2 text-gray-900" data-testid="event-type">
                  {c.event_type}
                </TableCell>
                <TableCell className="px-2 py-2">{words(c.kind)}</TableCell>
                <TableCell className="px-2 py-2" data-testid="persona">{label(c.persona)}</TableCell>
                <TableCell className="px-2 py-2" data-testid="hint">{c.hint}</TableCell>
                <TableCell className="px-2 py-2 text-right tabular-nums" data-testid="weight">
                  {decimal(c.weight)}
                </TableCell>
                <TableCell className="px-2 py-2 text-right tabular-nums" data-testid="age">
                  {ageHours(c.age_hours)}
                </TableCell>
                <TableCell className="px-2 py-2 text-right tabular-nums" data-testid="decay">
                  ×{decimal(c.decay)}
                </TableCell>
                <TableCell className="px-2 py-2 text-right font-medium tabular-nums text-gray-900" data-testid="points">
                  {decimal(c.points)}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </Card>

      <Card data-testid="visitor-stage">
        <Title>Journey stage</Title>
        <div className="mt-3 grid grid-cols-2 gap-4 sm:grid-cols-3">
          <Fact name="Stage" testId="stage">
            <span className="capitalize">{words(stage.stage)}</span>
          </Fact>
          <Fact name="Confidence" testId="stage-confidence">
            {fraction(stage.confidence)}
          </Fact>
          <Fact name="Matched" testId="clause">
            {stage.clause === null ? 'none (the default stage)' : `clause ${stage.clause + 1}`}
          </Fact>
        </div>
        <p className="mt-3 rounded-tremor-small bg-gray-50 p-3 text-tremor-default text-gray-700" data-testid="stage-rule">
          {stage.rule}
        </p>
        <h3 className="mt-4 text-tremor-default font-medium text-gray-900">History</h3>
        <ol className="mt-2 space-y-1 border-l border-gray-200 pl-4 text-tremor-default" data-testid="stage-history">
          {profile.stage_history.map((h) => (
            <li key={`${h.stage}-${h.entered_at}`} className="flex justify-between gap-4" data-testid="history-row">
              <span className="capitalize text-gray-900">{words(h.stage)}</span>
              <time className="tabular-nums text-gray-500" dateTime={h.entered_at}>
                {dateTime(h.entered_at)}
              </time>
            </li>
          ))}
        </ol>
      </Card>

      <Card data-testid="visitor-identity">
        <Title>Profile</Title>
        <div className="mt-3 grid grid-cols-2 gap-4 sm:grid-cols-3">
          <Fact name="First seen">{dateTime(profile.first_seen)}</Fact>
          <Fact name="Last seen">{dateTime(profile.last_seen)}</Fact>
          <Fact name="Sessions">{count(profile.session_count)}</Fact>
          <Fact name="Signals (lifetime)">{count(profile.total_signals)}</Fact>
          <Fact name="Customer id">{profile.customer_id ?? <span className="text-gray-500">not identified</span>}</Fact>
          <Fact name="Email">{profile.email ?? <span className="text-gray-500">not given</span>}</Fact>
        </div>
      </Card>
    </>
  );
}

function Fact({ name, testId, children }: { name: string; testId?: string; children: ReactNode }) {
  return (
    <div>
      <div className="text-tremor-label uppercase tracking-wide text-gray-400">{name}</div>
      <div className="mt-1 text-tremor-default text-gray-900" data-testid={testId}>
        {children}
      </div>
    </div>
  );
}
