/**
 * Shared base of the loopback provider fakes: a real `node:http` server on 127.0.0.1 with an
 * ephemeral port, a log of every request it received, a small file store (the "CDN" that image
 * and audio URLs point at) and fault injection that every fake honours.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. `/chat/completions`. */
  path: string;
  /** Query parameters; the last value wins when a name repeats. */
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, the raw bytes otherwise, `undefined` when empty. */
  body: unknown;
  rawBody: Buffer;
  receivedAt: number;
  /** Vendor-specific observations (e.g. Gemini's image parts, Stability's form fields). */
  meta: Record<string, unknown>;
}

/** What to do to a request. Several matching rules are merged, later rules win per field. */
export interface Fault {
  /** Milliseconds to wait before the first byte of the answer. */
  delayMs?: number;
  /** Answer with this HTTP status and the vendor's own error body for it. */
  status?: number;
  /** Replaces the vendor's error body for `status` (e.g. MiniMax's 200 + base_resp errors). */
  body?: unknown;
  /** Extra response headers for the injected error (e.g. `Retry-After`). */
  headers?: Record<string, string>;
  /** Accept the request and never answer; the socket is destroyed by `close()`. */
  hang?: boolean;
  /**
   * Destroy the socket after this many chunks of a streamed answer (SSE events, audio chunks).
   * A non-streamed answer sends its headers and half of its body before the cut.
   */
  cutAfterChunks?: number;
  /** Delay between streamed chunks, overriding the fake's own setting. */
  chunkDelayMs?: number;
  /** Hold the answer until this promise settles (a gate the test opens), then answer as usual. */
  until?: Promise<unknown>;
}

export type RouteMatcher = string | RegExp | ((request: RecordedRequest) => boolean);

export interface FaultRule extends Fault {
  /** A string matches when the path contains it; a RegExp is tested on the path. Omit for all. */
  route?: RouteMatcher;
  method?: string;
  /** How many requests the rule applies to; omit for every request until removed. */
  times?: number;
}

export interface FaultController {
  /** Adds a rule and returns a function that removes it. */
  add(rule: FaultRule): () => void;
  /** Applies `fault` to the next matching request only. */
  once(fault: FaultRule): () => void;
  /** The next `count` matching requests fail with `status` (and the vendor body), then requests succeed. */
  failNext(count: number, status: number, options?: Omit<FaultRule, 'times' | 'status'>): () => void;
  /** Every matching request waits `ms` before answering. */
  delay(ms: number, options?: Omit<FaultRule, 'delayMs'>): () => void;
  /** Matching requests are accepted and never answered. */
  hang(options?: Omit<FaultRule, 'hang'>): () => void;
  /** Streamed answers to matching requests are cut after `chunks` chunks. */
  cutStream(chunks: number, options?: Omit<FaultRule, 'cutAfterChunks'>): () => void;
  clear(): void;
  readonly rules: readonly FaultRule[];
}

export interface StoredFile {
  bytes: Buffer;
  contentType: string;
}

export interface FakeContext {
  request: RecordedRequest;
  req: IncomingMessage;
  res: ServerResponse;
  /** The merged fault for this request (latency, hang and status were already handled). */
  fault: Fault;
  /** Root URL of this fake, e.g. `http://127.0.0.1:43123`. */
  baseUrl: string;
  json(status: number, body: unknown, headers?: Record<string, string>): Promise<void>;
  send(status: number, bytes: Buffer | string, headers?: Record<string, string>): Promise<void>;
  /** Starts a Server-Sent Events answer; `cutAfterChunks` counts events and comments. */
  sse(headers?: Record<string, string>, defaultChunkDelayMs?: number): SseWriter;
  /** Starts a chunked (not SSE) byte stream; `cutAfterChunks` counts `write` calls. */
  chunked(status: number, headers: Record<string, string>, defaultChunkDelayMs?: number): ChunkWriter;
  /** Stores bytes under `/files/<name>` on this fake and returns the absolute URL. */
  storeFile(bytes: Buffer, contentType: string, extension: string): string;
}

export interface SseWriter {
  /** Writes `data: <json or text>` plus the blank line. Returns false once the stream was cut. */
  data(payload: unknown): Promise<boolean>;
  /** Writes a `: comment` line (keep-alive) plus the blank line. */
  comment(text: string): Promise<boolean>;
  end(): void;
}

export interface ChunkWriter {
  write(bytes: Buffer): Promise<boolean>;
  end(): void;
}

export type FakeHandler = (context: FakeContext) => Promise<void> | void;

export interface FakeServerOptions {
  /** The vendor's error body for an HTTP status, used by injected faults. */
  errorBody: (status: number) => unknown;
  /** Headers every answer carries (e.g. a trace id). */
  commonHeaders?: () => Record<string, string>;
  /**
   * How long an idle keep-alive connection stays open (default 1 s, so test servers close quickly).
   * Clients built on undici (Node's fetch included) treat an announced timeout of 1 s as none and
   * open a new connection per request; benchmarks set what vendors use (tens of seconds).
   */
  keepAliveMs?: number;
}

export interface FakeServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  faults: FaultController;
  /** Files served under `/files/<name>` (images, audio) keyed by name. */
  files: Map<string, StoredFile>;
  /** Requests whose path contains `pathPart` (all when omitted). */
  requestsTo(pathPart?: string): RecordedRequest[];
  lastRequest(pathPart?: string): RecordedRequest | undefined;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function matches(rule: FaultRule, request: RecordedRequest): boolean {
  if (rule.method !== undefined && rule.method.toUpperCase() !== request.method) return false;
  const route = rule.route;
  if (route === undefined) return true;
  if (typeof route === 'string') return request.path.includes(route);
  if (route instanceof RegExp) return route.test(request.path);
  return route(request);
}

function createFaultController(): FaultController & { take(request: RecordedRequest): Fault } {
  let rules: FaultRule[] = [];
  const add = (rule: FaultRule): (() => void) => {
    const copy = { ...rule };
    rules.push(copy);
    return () => {
      rules = rules.filter((candidate) => candidate !== copy);
    };
  };
  return {
    add,
    once: (fault) => add({ ...fault, times: 1 }),
    failNext: (count, status, options) => add({ ...options, status, times: count }),
    delay: (ms, options) => add({ ...options, delayMs: ms }),
    hang: (options) => add({ ...options, hang: true }),
    cutStream: (chunks, options) => add({ ...options, cutAfterChunks: chunks }),
    clear: () => {
      rules = [];
    },
    get rules() {
      return rules;
    },
    take(request) {
      const merged: Fault = {};
      for (const rule of [...rules]) {
        if (!matches(rule, request)) continue;
        if (rule.times !== undefined) {
          rule.times -= 1;
          if (rule.times <= 0) rules = rules.filter((candidate) => candidate !== rule);
        }
        const { route: _route, method: _method, times: _times, ...fault } = rule;
        for (const [key, value] of Object.entries(fault)) {
          if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
        }
      }
      return merged;
    },
  };
}

function parseBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return undefined;
  const looksJson = contentType === undefined || contentType.includes('json') || contentType.startsWith('text/plain');
  if (looksJson) {
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function writeChunk(res: ServerResponse, chunk: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) {
      resolve();
      return;
    }
    res.write(chunk, () => resolve());
  });
}

const genericErrorBody = (status: number): unknown => ({ error: { code: status, message: `Error ${status}` } });

export async function startFakeServer(handler: FakeHandler, options: FakeServerOptions = { errorBody: genericErrorBody }): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const faults = createFaultController();
  const files = new Map<string, StoredFile>();
  const sockets = new Set<Socket>();
  let baseUrl = '';

  const storeFile = (bytes: Buffer, contentType: string, extension: string): string => {
    const name = `${randomUUID()}.${extension}`;
    files.set(name, { bytes, contentType });
    return `${baseUrl}/files/${name}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawBody = await readBody(req);
    const url = new URL(req.url ?? '/', baseUrl);
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const request: RecordedRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: url.pathname,
      query,
      headers: req.headers,
      body: parseBody(rawBody, req.headers['content-type']),
      rawBody,
      receivedAt: Date.now(),
      meta: {},
    };
    requests.push(request);
    const fault = faults.take(request);
    const common = options.commonHeaders?.() ?? {};

    if (fault.delayMs !== undefined && fault.delayMs > 0) await sleep(fault.delayMs);
    if (fault.until) await fault.until.catch(() => undefined);
    if (fault.hang === true) return; // close() destroys the socket
    if (res.destroyed) return;

    // A cut of a non-streamed answer: headers and half the body, then a dead socket.
    const send = async (status: number, bytes: Buffer | string, headers: Record<string, string> = {}): Promise<void> => {
      if (res.destroyed || res.headersSent) return;
      const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
      res.writeHead(status, { ...common, 'content-length': String(buffer.length), ...headers });
      if (fault.cutAfterChunks !== undefined) {
        await writeChunk(res, buffer.subarray(0, Math.floor(buffer.length / 2)));
        res.destroy();
        return;
      }
      res.end(buffer);
    };
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): Promise<void> =>
      send(status, JSON.stringify(body), { 'content-type': 'application/json', ...headers });

    if (fault.status !== undefined) {
      const body = fault.body !== undefined ? fault.body : options.errorBody(fault.status);
      await json(fault.status, body, fault.headers);
      return;
    }

    // Shared streaming machinery: counts chunks so a cut lands exactly after N of them.
    const streamWriter = (defaultChunkDelayMs: number | undefined) => {
      let written = 0;
      let cut = false;
      const chunkDelay = fault.chunkDelayMs ?? defaultChunkDelayMs ?? 0;
      return async (chunk: Buffer | string): Promise<boolean> => {
        if (cut || res.destroyed) return false;
        if (written > 0 && chunkDelay > 0) await sleep(chunkDelay);
        await writeChunk(res, chunk);
        written += 1;
        if (fault.cutAfterChunks !== undefined && written >= fault.cutAfterChunks) {
          cut = true;
          res.destroy();
          return false;
        }
        return !res.destroyed;
      };
    };

    const context: FakeContext = {
      request,
      req,
      res,
      fault,
      baseUrl,
      json,
      send,
      storeFile,
      sse(headers = {}, defaultChunkDelayMs) {
        res.writeHead(200, {
          ...common,
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          ...headers,
        });
        if (fault.cutAfterChunks === 0) res.destroy();
        else res.flushHeaders();
        const write = streamWriter(defaultChunkDelayMs);
        return {
          data: (payload) => write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`),
          comment: (text) => write(`: ${text}\n\n`),
          end: () => {
            if (!res.destroyed) res.end();
          },
        };
      },
      chunked(status, headers, defaultChunkDelayMs) {
        res.writeHead(status, { ...common, ...headers });
        if (fault.cutAfterChunks === 0) res.destroy();
        else res.flushHeaders();
        const write = streamWriter(defaultChunkDelayMs);
        return {
          write: (bytes) => write(bytes),
          end: () => {
            if (!res.destroyed) res.end();
          },
        };
      },
    };

    // The "CDN": files other endpoints linked to, served without auth like a signed URL.
    if (request.method === 'GET' && request.path.startsWith('/files/')) {
      const file = files.get(request.path.slice('/files/'.length));
      if (file !== undefined) {
        await send(200, file.bytes, { 'content-type': file.contentType });
        return;
      }
    }
    await handler(context);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A bug in a fake must surface in the test as a 500, not as a hung request.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fake server error: ${error instanceof Error ? error.stack : String(error)}`);
      } else if (!res.destroyed) {
        res.destroy();
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Hung requests stay open forever unless something kills them; keep timeouts off so a
  // deliberate hang is the client's timeout to handle, not Node's.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = options.keepAliveMs ?? 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };

  const requestsTo = (pathPart?: string): RecordedRequest[] =>
    pathPart === undefined ? [...requests] : requests.filter((request) => request.path.includes(pathPart));

  return {
    url: baseUrl,
    port,
    requests,
    faults,
    files,
    requestsTo,
    lastRequest: (pathPart) => requestsTo(pathPart).at(-1),
    close,
  };
}

/** The bearer token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const header = headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match?.[1]?.trim();
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Rough token count used by every fake: characters / 4, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Splits text into word-sized deltas that concatenate back to exactly the original. */
export function splitIntoDeltas(text: string): string[] {
  const parts = text.match(/\s*\S+\s*/g);
  if (parts === null || parts.length === 0) return [text];
  // Leading whitespace-only prefix is already attached to the first word by the regex.
  return parts;
}

export function plainObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
    ? (value as Record<string, unknown>)
    : {};
}
