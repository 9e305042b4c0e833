/**
 * Which statements are worth preparing once per connection and running by name afterwards. A
 * chat turn repeats the same few statements (memory recall, the credit reservation, the turn's
 * write); parsing and planning them again each time was most of their cost (the recall: 0.3 ms to
 * execute after ≈ 3 ms to plan on PGlite). Both drivers ask this book for a name: the first sight of
 * a text only counts it, the second names it; DDL and other one-off statements are never named, and
 * the book stops naming once `capacity` names exist (a server-side prepared statement lives as long
 * as its connection).
 */
export class StatementBook {
  private readonly names = new Map<string, string>();
  private readonly seen = new Set<string>();
  private next = 1;

  constructor(
    private readonly prefix: string,
    private readonly capacity = 400,
  ) {}

  /** The name to run `text` under, or undefined to run it unnamed this time. */
  nameFor(text: string): string | undefined {
    const named = this.names.get(text);
    if (named !== undefined) return named;
    if (this.names.size >= this.capacity || !REPEATABLE.test(text)) return undefined;
    if (!this.seen.has(text)) {
      // Bounded: a flood of distinct texts only delays naming, it never grows memory.
      if (this.seen.size >= this.capacity * 4) this.seen.clear();
      this.seen.add(text);
      return undefined;
    }
    this.seen.delete(text);
    const name = `${this.prefix}${this.next++}`;
    this.names.set(text, name);
    return name;
  }

  /** Forgets a name whose statement the server no longer holds as it was (e.g. its result type changed). */
  forget(text: string): void {
    this.names.delete(text);
  }
}

/** Data statements (not DDL, not transaction control): the ones a request repeats. */
const REPEATABLE = /^\s*(select|insert|update|delete|with)\b/i;

/** PostgreSQL's answer when a prepared statement's result columns changed under it (a migration altered its table). */
export function isStalePreparedStatement(error: unknown): boolean {
  const fields = error as { code?: unknown; message?: unknown } | null;
  return fields?.code === '0A000' && typeof fields.message === 'string' && fields.message.includes('cached plan must not change result type');
}
