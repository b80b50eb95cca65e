//! The journey ladder, lowest stage first: for each stage the visitors who reached it (at it or
//! beyond), those whose current stage it is, and the conversion from the stage above, all as the
//! API sends them. The bar length only scales `reached` against the widest bar.

import { Card, Text, Title } from '@tremor/react';
import type { FunnelStage } from '../api';
import { count, fraction, words } from '../format';

export function JourneyFunnel({ stages }: { stages: FunnelStage[] }) {
  const widest = Math.max(0, ...stages.map((s) => s.reached));
  return (
    <Card data-testid="funnel" className="h-full">
      <Title>Journey funnel</Title>
      <Text>Visitors who reached each stage, those at it now, and the step from the stage above.</Text>
      <div className="mt-4 grid grid-cols-[7rem_1fr_4.5rem_4.5rem_4.5rem] items-center gap-x-3 gap-y-3 text-tremor-default">
        <span className="text-tremor-label uppercase tracking-wide text-gray-400">Stage</span>
        <span />
        <span className="text-right text-tremor-label uppercase tracking-wide text-gray-400">Reached</span>
        <span className="text-right text-tremor-label uppercase tracking-wide text-gray-400">At stage</span>
        <span className="text-right text-tremor-label uppercase tracking-wide text-gray-400">Step</span>
        {stages.map((s) => (
          <FunnelRow key={s.stage} stage={s} widest={widest} />
        ))}
      </div>
    </Card>
  );
}

function FunnelRow({ stage, widest }: { stage: FunnelStage; widest: number }) {
  const width = widest > 0 ? (stage.reached / widest) * 100 : 0;
  return (
    <div className="contents" data-testid="funnel-row" data-stage={stage.stage}>
      <span className="capitalize text-gray-700" data-testid="stage">
        {words(stage.stage)}
      </span>
      <span className="h-6 rounded-sm bg-blue-50">
        <span className="block h-6 rounded-sm bg-blue-500" style={{ width: `${width}%` }} />
      </span>
      <span className="text-right font-medium tabular-nums text-gray-900" data-testid="reached">
        {count(stage.reached)}
      </span>
      <span className="text-right tabular-nums text-gray-600" data-testid="at-stage">
        {count(stage.visitors)}
      </span>
      <span className="text-right tabular-nums text-gray-600" data-testid="conversion">
        {fraction(stage.conversion_from_previous)}
      </span>
    </div>
  );
}
