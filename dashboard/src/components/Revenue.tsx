//! Revenue, which the server cannot report until order data is connected. It sits with the
//! headline figures but greyed out, with the status and reason the API gives and no figure (not a
//! zero).

import { Badge, Card, Flex, Text } from '@tremor/react';
import type { SectionStatus } from '../api';

export function Revenue({ section }: { section: SectionStatus }) {
  return (
    <Card
      data-testid="revenue"
      data-status={section.status}
      className="bg-gray-100 opacity-75"
      decoration="top"
      decorationColor="gray"
      aria-disabled="true"
    >
      <Flex alignItems="start">
        <Text className="text-gray-500">Revenue</Text>
        <Badge color="gray" size="xs" data-testid="status">
          {section.status}
        </Badge>
      </Flex>
      <p className="mt-1 text-tremor-metric font-semibold text-gray-300" aria-label="no figure">
        —
      </p>
      <p className="mt-1 text-tremor-label text-tremor-content" data-testid="reason">
        {section.reason ?? 'No reason given.'}
      </p>
    </Card>
  );
}
