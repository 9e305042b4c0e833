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

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'anima' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return destination ? pino(loggerOptions(level), destination as pino.DestinationStream) : pino(loggerOptions(level));
}
