//! Which colour stands for which persona, so the donut, the chart and the badges agree. Personas
//! are configuration, so an id this table does not know still gets a stable colour, picked from
//! the spare colours by its characters: the same id is the same colour on every part of the page.

import type { Color } from '@tremor/react';

const KNOWN: Record<string, Color> = {
  backyard: 'amber',
  commercial: 'blue',
  lawn: 'emerald',
  general: 'slate',
};

/** Colours for personas outside `KNOWN`; every one is in the Tailwind safelist. */
const SPARE: Color[] = ['violet', 'rose', 'cyan', 'fuchsia'];

/** The Tremor colour name of a persona. */
export function personaColor(personaId: string): Color {
  const known = KNOWN[personaId];
  if (known) return known;
  let sum = 0;
  for (const char of personaId) sum += char.codePointAt(0) ?? 0;
  return SPARE[sum % SPARE.length] ?? 'gray';
}
