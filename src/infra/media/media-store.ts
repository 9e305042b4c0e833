/**
 * Where stored media bytes (voice replies, generated images) live. One small port with a file
 * backend (the embedded default, under DATA_DIR/media) and an S3 backend (any S3-compatible store:
 * AWS, MinIO, R2…). Keys are relative paths made by the media module (`audio/<user>/<id>.mp3`);
 * ownership, expiry and content metadata live in the `media` table, not here.
 */
export interface StoredObject {
  bytes: Buffer;
  contentType: string;
}

export interface MediaStore {
  readonly kind: 'file' | 's3';
  put(key: string, bytes: Buffer, contentType: string): Promise<void>;
  /** The object, or undefined when there is none under this key. */
  get(key: string): Promise<StoredObject | undefined>;
  /** Deleting a key that does not exist is not an error. */
  delete(key: string): Promise<void>;
  close?(): void;
}

const SAFE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** Keys are made by code, never by clients; a key that could escape its root is a bug. */
export function assertSafeKey(key: string): void {
  if (!SAFE_KEY.test(key) || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`unsafe media key: ${JSON.stringify(key)}`);
  }
}
