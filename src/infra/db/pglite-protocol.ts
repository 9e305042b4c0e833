/** Messages between the main thread and the embedded database's thread (pglite-thread.ts). */

export type ThreadRequest =
  | { id: number; op: 'open' }
  | { id: number; op: 'query'; tx?: number | undefined; sql: string; params?: unknown[] | undefined; rowMode?: 'array' | 'object' | undefined; identityParsers?: number[] | undefined }
  | { id: number; op: 'exec'; tx?: number | undefined; sql: string }
  | { id: number; op: 'begin'; tx: number }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'close' };

export type ThreadReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

/** An error as plain data: its message and PostgreSQL's fields (code, constraint, detail…). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string | undefined;
  fields: Record<string, unknown>;
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (value === undefined || typeof value === 'function') continue;
    fields[key] = typeof value === 'object' && value !== null ? JSON.parse(JSON.stringify(value)) : value;
  }
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

/** The error again, on this side: same message and PostgreSQL fields (so `code === '23503'` checks still work). */
export function deserializeError(serialized: SerializedError): Error {
  const error = new Error(serialized.message) as Error & Record<string, unknown>;
  error.name = serialized.name;
  Object.assign(error, serialized.fields);
  if (serialized.stack) error.stack = `${serialized.stack}\n    at (embedded database thread)`;
  return error;
}
