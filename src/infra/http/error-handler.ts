import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { AppError } from './errors.js';
import { contractErrorForProviderFailure, isProviderFailure } from './provider-failure.js';

const PROBLEM_BASE = 'https://anima.dev/problems/';

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  431: 'Request Header Fields Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const OPENAI_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'insufficient_quota',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

/** Routes whose clients are OpenAI libraries answer errors in OpenAI's envelope (contract §4). */
export function usesOpenAiErrorFormat(url: string): boolean {
  const pathOnly = url.split('?')[0] ?? url;
  return pathOnly === '/v1/chat/completions' || pathOnly === '/v1/audio/transcriptions' || pathOnly === '/v1/models' || pathOnly.startsWith('/v1/models/');
}

interface NormalizedError {
  status: number;
  code: string;
  message: string;
  extra: Record<string, unknown>;
  headers: Record<string, string>;
  param: string | null;
}

export function normalizeError(error: unknown): NormalizedError {
  if (isProviderFailure(error)) error = contractErrorForProviderFailure(error);
  if (error instanceof AppError) {
    const field = typeof error.extra.field === 'string' ? error.extra.field : null;
    return { status: error.status, code: error.code, message: error.message, extra: error.extra, headers: error.headers, param: field };
  }
  const fastifyError = error as FastifyError & { validation?: unknown };
  if (hasZodFastifySchemaValidationErrors(fastifyError)) {
    const first = fastifyError.validation[0];
    const location = fastifyError.validationContext ?? 'body';
    const field = first?.instancePath ? first.instancePath.replace(/^\//, '').replaceAll('/', '.') : '';
    const named = field ? `${location}.${field}` : location;
    const problems = fastifyError.validation.map((issue) => {
      const issuePath = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
      return { field: issuePath ? `${location}.${issuePath}` : location, message: issue.message };
    });
    return {
      status: 422,
      code: 'validation_failed',
      message: `Invalid ${named}: ${first?.message ?? 'invalid value'}`,
      extra: { field: named, errors: problems },
      headers: {},
      param: field || null,
    };
  }
  if (fastifyError.validation) {
    return { status: 422, code: 'validation_failed', message: fastifyError.message, extra: {}, headers: {}, param: null };
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return simple(413, 'payload_too_large', 'The request body is larger than this endpoint accepts.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return simple(400, 'malformed_json', `The body is not valid JSON: ${fastifyError.message}`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return simple(400, 'malformed_json', 'The body is empty but the content type says JSON.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return simple(415, 'unsupported_media_type', 'This content type is not accepted here.');
    case 'FST_ERR_BAD_URL':
      return simple(400, 'bad_url', 'The URL has a malformed percent-encoding (for example %ff alone).');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return simple(414, 'uri_too_long', 'A path parameter of this URL is too long.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return simple(400, 'bad_request', 'The Content-Length does not match the body.');
    default:
      break;
  }
  if (error instanceof SyntaxError && 'body' in (error as object)) {
    return simple(400, 'malformed_json', 'The body is not valid JSON.');
  }
  const status = typeof fastifyError.statusCode === 'number' ? fastifyError.statusCode : 500;
  if (status >= 400 && status < 500) {
    return simple(status, 'bad_request', fastifyError.message);
  }
  // Never show internals of a server fault.
  return simple(status >= 500 && status < 600 ? status : 500, 'internal_error', 'Something went wrong on our side. The request id identifies it in the logs.');
}

function simple(status: number, code: string, message: string): NormalizedError {
  return { status, code, message, extra: {}, headers: {}, param: null };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const normalized = normalizeError(error);
  if (normalized.status === 503 && error instanceof AppError) {
    // A deliberate "not ready / not configured" answer (shutting down, the market without Stripe):
    // the operator's to know about, not a fault with a stack trace.
    request.log.warn({ code: normalized.code, status: normalized.status }, normalized.message);
  } else if (normalized.status >= 500) {
    request.log.error({ err: error }, 'request failed');
  } else {
    request.log.info({ code: normalized.code, status: normalized.status }, normalized.message);
  }
  reply.headers(normalized.headers);
  reply.status(normalized.status);
  if (usesOpenAiErrorFormat(request.url)) {
    return reply.type('application/json').send({
      error: {
        message: normalized.message,
        type: OPENAI_ERROR_TYPES[normalized.status] ?? (normalized.status >= 500 ? 'api_error' : 'invalid_request_error'),
        code: normalized.code,
        param: normalized.param,
        ...withoutField(normalized.extra),
      },
    });
  }
  return reply.type('application/problem+json').send({
    type: `${PROBLEM_BASE}${normalized.code}`,
    title: STATUS_TITLES[normalized.status] ?? 'Error',
    status: normalized.status,
    detail: normalized.message,
    code: normalized.code,
    instance: request.url.split('?')[0],
    request_id: request.id,
    ...normalized.extra,
  });
}

function withoutField(extra: Record<string, unknown>): Record<string, unknown> {
  const { field: _field, errors: _errors, ...rest } = extra;
  return rest;
}

/** Fastify's router errors (malformed URL encoding, over-long path parameters), answered like every other error. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendError(request, reply, error);
}

const CLIENT_ERRORS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'The request headers are larger than this server accepts.' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'The request was not received in time.' },
};

/**
 * Errors Node's HTTP parser raises before there is a request (oversized headers, malformed
 * requests, timeouts): written straight to the socket as problem+json.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const known = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, code: 'bad_request', message: 'The request could not be parsed as HTTP.' };
  const body = JSON.stringify({
    type: `${PROBLEM_BASE}${known.code}`,
    title: STATUS_TITLES[known.status] ?? 'Error',
    status: known.status,
    detail: known.message,
    code: known.code,
  });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${known.status} ${STATUS_TITLES[known.status] ?? 'Error'}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error }, 'response did not match its schema');
      return sendError(request, reply, new Error('response serialization'));
    }
    return sendError(request, reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new AppError(404, 'not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`)),
  );
}
