//! Grey placeholders shaped like the sections they stand for, shown while the first load (or a
//! load for a new range) is in flight. They carry no figures.

import { Card, Grid } from '@tremor/react';

export function Bone({ className = '' }: { className?: string }) {
  return <div className={`animate-pulse rounded bg-gray-200 ${className}`} />;
}

function CardSkeleton({ height }: { height: string }) {
  return (
    <Card>
      <Bone className="h-4 w-32" />
      <Bone className={`mt-4 w-full ${height}`} />
    </Card>
  );
}

export function DashboardSkeleton() {
  return (
    <div className="space-y-6" data-testid="loading" aria-busy="true" aria-label="Loading the dashboard">
      <Grid numItemsSm={2} numItemsLg={5} className="gap-4">
        {[0, 1, 2, 3, 4].map((i) => (
          <Card key={i}>
            <Bone className="h-4 w-24" />
            <Bone className="mt-3 h-8 w-20" />
            <Bone className="mt-3 h-3 w-36" />
          </Card>
        ))}
      </Grid>
      <Grid numItemsLg={3} className="gap-4">
        <div className="lg:col-span-2">
          <CardSkeleton height="h-72" />
        </div>
        <CardSkeleton height="h-72" />
      </Grid>
      <Grid numItemsLg={2} className="gap-4">
        <CardSkeleton height="h-64" />
        <CardSkeleton height="h-64" />
      </Grid>
      <CardSkeleton height="h-48" />
    </div>
  );
}
