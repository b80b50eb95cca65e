//! Tailwind 3 set up the way Tremor v3 expects: its theme tokens (`tremor-*`), its content glob
//! under node_modules, and a safelist for the colour classes its charts build at run time (which
//! the content scan cannot see). The safelist covers only the palette `src/palette.ts` uses.

import colors from 'tailwindcss/colors';
import headlessui from '@headlessui/tailwindcss';
import forms from '@tailwindcss/forms';

const PALETTE = 'amber|blue|emerald|slate|violet|rose|cyan|fuchsia|gray';
const SHADES = '50|100|200|300|400|500|600|700|800|900|950';

/** @type {import('tailwindcss').Config} */
export default {
  // Tremor ships dark variants; the page is light only, so they apply under a class it never sets
  // rather than following the system setting into a half-dark page.
  darkMode: 'class',
  content: ['./index.html', './src/**/*.{ts,tsx}', './node_modules/@tremor/**/*.{js,ts,jsx,tsx}'],
  theme: {
    transparent: 'transparent',
    current: 'currentColor',
    extend: {
      colors: {
        tremor: {
          brand: {
            faint: colors.blue[50],
            muted: colors.blue[200],
            subtle: colors.blue[400],
            DEFAULT: colors.blue[500],
            emphasis: colors.blue[700],
            inverted: colors.white,
          },
          background: {
            muted: colors.gray[50],
            subtle: colors.gray[100],
            DEFAULT: colors.white,
            emphasis: colors.gray[700],
          },
          border: { DEFAULT: colors.gray[200] },
          ring: { DEFAULT: colors.gray[200] },
          content: {
            subtle: colors.gray[400],
            DEFAULT: colors.gray[500],
            emphasis: colors.gray[700],
            strong: colors.gray[900],
            inverted: colors.white,
          },
        },
      },
      boxShadow: {
        'tremor-input': '0 1px 2px 0 rgb(0 0 0 / 0.05)',
        'tremor-card': '0 1px 3px 0 rgb(0 0 0 / 0.1), 0 1px 2px -1px rgb(0 0 0 / 0.1)',
        'tremor-dropdown': '0 4px 6px -1px rgb(0 0 0 / 0.1), 0 2px 4px -2px rgb(0 0 0 / 0.1)',
      },
      borderRadius: {
        'tremor-small': '0.375rem',
        'tremor-default': '0.5rem',
        'tremor-full': '9999px',
      },
      fontSize: {
        'tremor-label': ['0.75rem', { lineHeight: '1rem' }],
        'tremor-default': ['0.875rem', { lineHeight: '1.25rem' }],
        'tremor-title': ['1.125rem', { lineHeight: '1.75rem' }],
        'tremor-metric': ['1.875rem', { lineHeight: '2.25rem' }],
      },
    },
  },
  safelist: [
    {
      pattern: new RegExp(`^(bg|text|border|ring)-(?:${PALETTE})-(?:${SHADES})$`),
      variants: ['hover', 'ui-selected'],
    },
    { pattern: new RegExp(`^(stroke|fill)-(?:${PALETTE})-(?:${SHADES})$`) },
  ],
  plugins: [headlessui, forms],
};
