//! The page: the header over whichever state the snapshot is in (loading, ready, empty, offline,
//! signed out), and the visitor drawer when the route names a visitor. The data comes from the
//! two hooks in `snapshot.ts`; every component below takes its data as props.

import { useState } from 'react';
import { Grid } from '@tremor/react';
import { LOGIN_PATH, serverOrigin } from './api';
import type { Range } from './api';
import { AbTests } from './components/AbTests';
import { EmptyState } from './components/EmptyState';
import { EventStream } from './components/EventStream';
import { Header } from './components/Header';
import type { Freshness } from './components/Header';
import { JourneyFunnel } from './components/JourneyFunnel';
import { KpiCards } from './components/KpiCards';
import { OfflineBanner } from './components/OfflineBanner';
import { PersonaChart } from './components/PersonaChart';
import { PersonaDonut } from './components/PersonaDonut';
import { SearchesPanel } from './components/SearchesPanel';
import { SignIn } from './components/SignIn';
import { DashboardSkeleton } from './components/Skeleton';
import { TopEvents } from './components/TopEvents';
import { TunnelsTable } from './components/TunnelsTable';
import { VisitorView } from './components/VisitorView';
import { useRoute } from './route';
import { IdentityPanel } from './components/IdentityPanel';
import { useDashboard, useIdentity, usePerson, useVisitor } from './snapshot';
import type { Snapshot } from './snapshot';

export function App() {
  const [range, setRange] = useState<Range>('7d');
  const { snapshot, refreshing, refresh } = useDashboard(range);
  const route = useRoute();
  const visitorId = route.view === 'visitor' ? route.anonymousId : null;
  const visitor = useVisitor(visitorId);
  const person = usePerson(visitorId);
  const metrics = snapshot.kind === 'ready' || snapshot.kind === 'empty' ? snapshot.metrics : null;

  return (
    <>
      <main className="mx-auto max-w-7xl space-y-6 p-4 sm:p-6 lg:p-8" data-state={snapshot.kind}>
        <Header
          range={range}
          onRange={setRange}
          refreshing={refreshing}
          onRefresh={refresh}
          freshness={freshnessOf(snapshot)}
          window={metrics?.window ?? null}
          lastEventAt={metrics?.last_event_at ?? null}
        />
        <Body snapshot={snapshot} />
      </main>
      {visitorId !== null && <VisitorView anonymousId={visitorId} snapshot={visitor} person={person} loginPath={LOGIN_PATH} />}
    </>
  );
}

function Body({ snapshot }: { snapshot: Snapshot }) {
  switch (snapshot.kind) {
    case 'loading':
      return <DashboardSkeleton />;
    case 'unauthorized':
      return <SignIn loginPath={LOGIN_PATH} />;
    case 'offline':
      return <OfflineBanner reason={snapshot.reason} health={snapshot.health} />;
    case 'empty':
      return <EmptyState origin={serverOrigin()} health={snapshot.health} />;
    case 'ready':
      return <Figures snapshot={snapshot} />;
  }
}

function Figures({ snapshot }: { snapshot: Extract<Snapshot, { kind: 'ready' }> }) {
  const { metrics } = snapshot;
  const identity = useIdentity(snapshot.at);
  return (
    <div className="space-y-6" data-testid="figures">
      <KpiCards kpis={metrics.kpis} range={metrics.range} revenue={metrics.revenue} />
      <Grid numItemsLg={3} className="gap-4">
        <div className="lg:col-span-2">
          <PersonaChart rows={metrics.chartData} personas={metrics.personas} per={metrics.window.bucket} />
        </div>
        <PersonaDonut personas={metrics.personas} visitors={metrics.kpis.unique_visitors.value} />
      </Grid>
      <Grid numItemsLg={3} className="gap-4">
        <div className="lg:col-span-2">
          <JourneyFunnel stages={metrics.funnel} />
        </div>
        <TopEvents rows={metrics.top_events} />
      </Grid>
      <Grid numItemsLg={2} className="gap-4">
        <TunnelsTable rows={metrics.tunnels} />
        <AbTests tests={metrics.ab_tests} />
      </Grid>
      <SearchesPanel searches={snapshot.searches} />
      <IdentityPanel snapshot={identity} />
      <EventStream events={snapshot.stream.events} labels={personaLabels(snapshot)} />
    </div>
  );
}

/** Persona labels the page has been sent, from the persona list and from the stream itself. */
function personaLabels({ metrics, stream }: Extract<Snapshot, { kind: 'ready' }>): Record<string, string> {
  return Object.fromEntries([
    ...metrics.personas.map((p) => [p.persona, p.label]),
    ...stream.events.map((e) => [e.predicted_persona, e.persona_label]),
  ]);
}

function freshnessOf(snapshot: Snapshot): Freshness | null {
  switch (snapshot.kind) {
    case 'loading':
      return null;
    case 'ready':
    case 'empty':
      return { label: 'Last updated', at: snapshot.at };
    case 'offline':
    case 'unauthorized':
      return { label: 'Last checked', at: snapshot.at };
  }
}
