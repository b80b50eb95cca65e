//! What the page shows when the store has no events yet: a setup checklist with the tracker
//! snippet and collector URL for this server, and the live health of the server.

import { useState } from 'react';
import type { ReactNode } from 'react';
import { Card, Text, Title } from '@tremor/react';
import type { Health, Outcome } from '../api';
import { HealthStatus } from './HealthStatus';

export function EmptyState({ origin, health }: { origin: string; health: Outcome<Health> }) {
  const snippet = `<script src="${origin}/cdp.js" data-endpoint="${origin}" async></script>`;
  return (
    <Card data-testid="empty" className="mx-auto max-w-3xl">
      <Title data-testid="title">No events recorded yet</Title>
      <Text className="mt-1">
        The store is reachable but holds no events. Once the tracker runs on your site, figures appear here on the next
        refresh (the page checks every two minutes).
      </Text>
      <ol className="mt-6 space-y-6 text-tremor-default text-gray-700" data-testid="checklist">
        <Step n={1} title="Add the tracker to every page of your site">
          <p>Paste this into the page head, or the layout every page uses:</p>
          <CodeLine text={snippet} testId="snippet" />
        </Step>
        <Step n={2} title="Events go to the collector">
          <p>The tracker sends events to this URL; it must be reachable from your visitors’ browsers:</p>
          <CodeLine text={`${origin}/collect`} testId="collector-url" />
        </Step>
        <Step n={3} title="Check the server’s health">
          <p>
            <a className="text-blue-600 underline" href="/health" data-testid="health-link">
              /health
            </a>{' '}
            answers now:
          </p>
          <p className="mt-2">
            <HealthStatus health={health} />
          </p>
        </Step>
      </ol>
    </Card>
  );
}

function Step({ n, title, children }: { n: number; title: string; children: ReactNode }) {
  return (
    <li className="flex gap-4">
      <span className="flex h-7 w-7 shrink-0 items-center justify-center rounded-full bg-blue-50 font-semibold text-blue-700">{n}</span>
      <div className="min-w-0 flex-1 space-y-2">
        <p className="font-medium text-gray-900">{title}</p>
        {children}
      </div>
    </li>
  );
}

function CodeLine({ text, testId }: { text: string; testId: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    navigator.clipboard?.writeText(text).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <div className="flex items-stretch overflow-hidden rounded-tremor-small border border-gray-200 bg-gray-900">
      <code className="flex-1 whitespace-pre-wrap break-words p-3 font-mono text-tremor-label text-gray-100" data-testid={testId}>
        {text}
      </code>
      {navigator.clipboard && (
        <button type="button" onClick={copy} className="border-l border-gray-700 px-3 text-tremor-label text-gray-300 hover:bg-gray-800">
          {copied ? 'Copied' : 'Copy'}
        </button>
      )}
    </div>
  );
}
