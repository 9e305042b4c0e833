/**
 * A Map that keeps at most `limit` entries: setting a key makes it the newest, and the oldest go
 * first. The per-process memos of the hot path (token counts, neighbour words, what a process
 * already queued or recorded) use it, so none of them grows without bound.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.has(key)) this.delete(key);
    super.set(key, value);
    while (this.size > this.limit) this.delete(this.keys().next().value as K);
    return this;
  }
}
