import { pino, type Logger, type LoggerOptions } from 'pino';

/**
 * Secret redaction lives in the logger's configuration, so no call site has to remember it.
 * Paths cover request headers, bodies that carry keys, and the vendor auth headers.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["xi-api-key"]',
  'req.headers["x-goog-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["xi-api-key"]',
  'headers["x-goog-api-key"]',
  'body.key',
  'body.api_key',
  'key',
  'apiKey',
  'api_key',
  'token',
  'secret',
  'password',
  'plaintext',
  'encryptionKey',
  '*.apiKey',
  '*.api_key',
  '*.key',
  '*.token',
  '*.secret',
  '*.password',
  '*.plaintext',
  '*.authorization',
  '*.Authorization',
];

/** Members of database errors that carry a statement's bound values (message text, key hashes…). */
const QUERY_VALUE_MEMBERS = ['params', 'parameters', 'values', 'bindings'];

/**
 * The error serializer: pino's own (message, type, stack, cause chain), minus the bound values of
 * SQL statements that drizzle, node-postgres and PGlite attach to their errors. The statement's
 * text stays (it shows what failed); the values never reach a log.
 */
export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return stripQueryValues(pino.stdSerializers.err(error), 0);
}

function stripQueryValues(value: unknown, depth: number): unknown {
  if (!value || typeof value !== 'object' || depth > 8) return value;
  const record = value as Record<string, unknown>;
  for (const member of QUERY_VALUE_MEMBERS) if (member in record) record[member] = '[omitted]';
  if (typeof record.query === 'string' && record.query.length > 2_000) record.query = `${record.query.slice(0, 2_000)}…`;
  for (const child of Object.values(record)) if (child && typeof child === 'object') stripQueryValues(child, depth + 1);
  return record;
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    serializers: { err: serializeError, error: serializeError },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'anima' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

/**
 * Standard output, written as each line is logged (pino's default hands every line to libuv's
 * thread pool instead). Measured on the 2-core VM (issue 14): the hand-off — waking a pool thread,
 * then the event loop again when the write is done — cost more than the write itself: 59–77 µs of
 * CPU a line against 17–31 µs written in place, at 400 lines a second, and a chat turn logs one line.
 * The usual caveat of blocking writes holds: a reader that stops reading stalls the process once
 * the pipe is full — as it would stall an asynchronous logger's memory.
 */
export function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

export function createLogger(level: string, destination: pino.DestinationStream | NodeJS.WritableStream = stdoutDestination()): Logger {
  return pino(loggerOptions(level), destination);
}
