//! What the page shows when the API answers 401: a link to the server's login page.

import { Card, Text, Title } from '@tremor/react';

export function SignIn({ loginPath }: { loginPath: string }) {
  return (
    <Card data-testid="sign-in" className="mx-auto max-w-md text-center">
      <Title>Sign in</Title>
      <Text className="mt-1">The dashboard shows customer data, so it needs an admin session.</Text>
      <a
        href={loginPath}
        className="mt-4 inline-block rounded-tremor-default bg-blue-500 px-4 py-2 text-tremor-default font-medium text-white shadow-tremor-input hover:bg-blue-600"
      >
        Sign in
      </a>
    </Card>
  );
}
