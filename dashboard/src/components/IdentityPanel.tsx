//! Identity across the whole log: people recognised across browsers and identifiers, the links
//! the identity guards refused (by reason, every reason named), and the erasure audit (erasures,
//! tombstones, events suppressed because they carried an erased identifier). The figures are
//! `/api/cdp/identity`'s; a deployment that does not answer it says so instead of showing zeros.

import { Callout, Card, Flex, Text, Title } from '@tremor/react';
import type { IdentitySnapshot } from '../snapshot';
import { count, words } from '../format';
import { Bone } from './Skeleton';

export function IdentityPanel({ snapshot }: { snapshot: IdentitySnapshot }) {
  return (
    <Card data-testid="identity" data-state={snapshot.kind}>
      <Title>Identity</Title>
      <Text>People recognised across browsers, links the guards refused, and erasures.</Text>
      <div className="mt-4">
        <IdentityBody snapshot={snapshot} />
      </div>
    </Card>
  );
}

function IdentityBody({ snapshot }: { snapshot: IdentitySnapshot }) {
  switch (snapshot.kind) {
    case 'loading':
      return <Bone className="h-16 w-full" />;
    case 'not_found':
      return (
        <Callout title="Not answered by this deployment" color="gray" data-testid="identity-unavailable">
          Identity is resolved by cdp serve; this server does not answer /api/cdp/identity.
        </Callout>
      );
    case 'unauthorized':
      return <Text>Sign in to see the identity figures.</Text>;
    case 'offline':
      return (
        <Callout title="Identity unavailable" color="rose">
          {snapshot.reason}
        </Callout>
      );
    case 'ok': {
      const f = snapshot.data;
      const refused = Object.entries(f.rejections);
      return (
        <div className="grid gap-6 md:grid-cols-3">
          <dl className="space-y-2" data-testid="identity-people">
            <Figure name="People across browsers" value={count(f.cross_device_people)} testId="cross-device" />
            <Figure name="People linked to an identifier" value={count(f.linked_people)} testId="linked-people" />
            <Figure name="Their browsers" value={count(f.linked_browsers)} testId="linked-browsers" />
          </dl>
          <div>
            <h3 className="text-tremor-default font-medium text-gray-900">Refused links</h3>
            <ul className="mt-2 space-y-1" data-testid="identity-refusals">
              {refused.map(([reason, n]) => (
                <li key={reason} className="flex justify-between gap-4 text-tremor-default" data-testid="refusal" data-reason={reason}>
                  <span className="text-gray-700">{words(reason)}</span>
                  <span className="tabular-nums text-gray-900">{count(n)}</span>
                </li>
              ))}
            </ul>
          </div>
          <div data-testid="identity-erasures">
            <h3 className="text-tremor-default font-medium text-gray-900">Erasures</h3>
            {f.erasures === null ? (
              <Text className="mt-2">Erasing is off on this collector (no tombstone key).</Text>
            ) : (
              <dl className="mt-2 space-y-2">
                <Figure name="People erased" value={count(f.erasures.erasures)} testId="erasures" />
                <Figure name="Identifiers kept as tombstones" value={count(f.erasures.tombstones)} testId="tombstones" />
                <Figure name="Later events suppressed" value={count(f.erasures.suppressed)} testId="suppressed" />
              </dl>
            )}
          </div>
        </div>
      );
    }
  }
}

function Figure({ name, value, testId }: { name: string; value: string; testId: string }) {
  return (
    <Flex>
      <dt className="text-tremor-default text-gray-700">{name}</dt>
      <dd className="tabular-nums text-tremor-default font-medium text-gray-900" data-testid={testId}>
        {value}
      </dd>
    </Flex>
  );
}
