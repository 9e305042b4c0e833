import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';

/**
 * The embedded database as Anima opens it, on the main thread or its own (pglite-thread.ts): PGlite
 * on a data directory, with pgvector, and byte arrays sent as binary parameters.
 */
export async function openPglite(dataDir: string): Promise<PGlite> {
  const pglite = await PGlite.create({ dataDir, extensions: { vector } });
  sendByteArraysAsBinary(pglite);
  return pglite;
}

/** A parameter of a type PGlite has no serializer for: a byte array as it is (a binary parameter), anything else as text. */
const binaryOrText = (value: unknown): unknown => (ArrayBuffer.isView(value) ? value : String(value));

/**
 * Byte arrays as binary parameters on PGlite, as node-postgres sends them. PGlite writes each
 * parameter as text with its serializer for the parameter's type, and with `toString()` for a type
 * it has none for — an extension's, such as pgvector's `vector` — so a byte array became "1,2,3…";
 * its Bind message sends a byte array it is handed as a binary parameter. For those types the byte
 * array is now handed over as it is, on every path that serializes (PGlite's own `query`, inside
 * transactions too, and the named statements of pglite-prepared.ts). Types PGlite knows (bytea among
 * them) keep their serializers. The recall's query vector is sent this way (`vectorParam`).
 */
function sendByteArraysAsBinary(pglite: PGlite): void {
  const internals = pglite as unknown as { serializers: Record<number | string, unknown> };
  internals.serializers = new Proxy(internals.serializers, {
    get(target, key, receiver) {
      const serializer: unknown = Reflect.get(target, key, receiver);
      if (serializer !== undefined || typeof key !== 'string' || !/^\d+$/.test(key)) return serializer;
      return binaryOrText;
    },
  });
}
