//! Revenue, which the server cannot report until order data is connected: the section is shown
//! greyed out with the status and reason the API gives, and with no figure (not a zero).

import { Badge, Card, Flex, Text, Title } from '@tremor/react';
import type { SectionStatus } from '../api';

export function Revenue({ section }: { section: SectionStatus }) {
  return (
    <Card data-testid="revenue" data-status={section.status} className="bg-gray-100 opacity-70" aria-disabled="true">
      <Flex>
        <Title className="text-gray-500">Revenue</Title>
        <Badge color="gray" size="xs" data-testid="status">
          {section.status}
        </Badge>
      </Flex>
      <p className="mt-2 text-tremor-metric font-semibold text-gray-300" aria-label="no figure">
        —
      </p>
      <Text className="mt-2" data-testid="reason">
        {section.reason ?? 'No reason given.'}
      </Text>
    </Card>
  );
}
