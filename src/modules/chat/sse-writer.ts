import type { FastifyReply } from 'fastify';

/**
 * Server-Sent Events over a hijacked Fastify reply. Opened lazily: errors found before the first
 * byte (a 402, a 429 after retries) still go out as ordinary HTTP errors through the one error
 * handler; once the upstream is slow to start, a keep-alive comment opens the stream so proxies
 * and clients do not give up, and from then on errors travel as events.
 */
export class SseWriter {
  private opened = false;
  private ended = false;
  private keepAliveTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly keepAliveMs: number,
  ) {}

  get isOpen(): boolean {
    return this.opened;
  }

  get isWritable(): boolean {
    return !this.ended && !this.reply.raw.destroyed && !this.reply.raw.writableEnded;
  }

  /** Sends keep-alive comments every keepAliveMs while nothing else is written (the first one opens the stream). */
  startKeepAlive(): void {
    this.keepAliveTimer = setInterval(() => this.comment('keep-alive'), this.keepAliveMs);
    this.keepAliveTimer.unref();
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.reply.hijack();
    const headers: Record<string, string | number | string[]> = {};
    for (const [name, value] of Object.entries(this.reply.getHeaders())) if (value !== undefined) headers[name] = value;
    this.reply.raw.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told otherwise.
      'x-accel-buffering': 'no',
    });
    this.reply.raw.flushHeaders();
  }

  data(payload: unknown): void {
    this.write(`data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}\n\n`);
    this.restartKeepAlive();
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  end(): void {
    this.stopKeepAlive();
    if (this.ended) return;
    this.ended = true;
    if (this.opened && !this.reply.raw.destroyed) this.reply.raw.end();
  }

  stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  /** The next keep-alive a whole interval after this write (the timer re-armed in place, not recreated, at every event). */
  private restartKeepAlive(): void {
    this.keepAliveTimer?.refresh();
  }

  private write(text: string): void {
    if (!this.isWritable) return;
    this.open();
    this.reply.raw.write(text);
  }
}
