//! Visitors in the range by predicted persona, as a donut with a legend that lists each persona's
//! visitors, share and how many chose that persona themselves (explicit choices are kept apart
//! from predictions on the profile, so they are shown apart here too).

import { Card, DonutChart, Text, Title } from '@tremor/react';
import type { PersonaShare } from '../api';
import { count, fraction } from '../format';
import { personaColor } from '../palette';

export function PersonaDonut({ personas, visitors }: { personas: PersonaShare[]; visitors: number }) {
  return (
    <Card data-testid="personas" className="flex flex-col">
      <Title>Visitors by persona</Title>
      <Text>Predicted from behaviour; “chose” counts visitors who picked the persona themselves.</Text>
      {personas.length === 0 ? (
        <Text className="mt-6">No visitors in this range.</Text>
      ) : (
        <>
          <DonutChart
            className="mx-auto mt-6 h-40 w-40"
            data={personas}
            category="visitors"
            index="label"
            colors={personas.map((p) => personaColor(p.persona))}
            valueFormatter={count}
            label={count(visitors)}
            showAnimation={false}
          />
          <ul className="mt-6 divide-y divide-gray-100 text-tremor-default" data-testid="persona-legend">
            <li className="flex justify-between pb-2 text-tremor-label uppercase tracking-wide text-gray-400">
              <span>Persona</span>
              <span>Visitors · share · chose</span>
            </li>
            {personas.map((p) => (
              <li key={p.persona} className="flex items-center justify-between py-2" data-testid="persona-row" data-persona={p.persona}>
                <span className="flex items-center gap-2 text-gray-700">
                  <span className={`inline-block h-2.5 w-2.5 rounded-full bg-${personaColor(p.persona)}-500`} />
                  <span data-testid="label">{p.label}</span>
                </span>
                <span className="tabular-nums text-gray-600">
                  <span className="font-medium text-gray-900" data-testid="visitors">
                    {count(p.visitors)}
                  </span>
                  {' · '}
                  <span data-testid="share">{fraction(p.share)}</span>
                  {' · '}
                  <span data-testid="explicit">{count(p.explicit)}</span>
                </span>
              </li>
            ))}
          </ul>
        </>
      )}
    </Card>
  );
}
