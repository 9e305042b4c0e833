import type { ReactNode } from 'react';
import { ApiError } from './api';

/** What a page shows when a call failed: "not available" for 404/503, the API's message otherwise. */
export function Problem({ error }: { error: unknown }): ReactNode {
  if (error instanceof ApiError && error.unavailable) return <p className="notice">Not available on this server.</p>;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="notice error" role="alert">
      {message}
    </p>
  );
}

export function formatCredits(value: number): string {
  return value.toLocaleString(undefined, { maximumFractionDigits: 4 });
}
