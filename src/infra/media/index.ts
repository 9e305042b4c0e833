import type { Config } from '../../config.js';
import { FileMediaStore } from './file-media-store.js';
import type { MediaStore } from './media-store.js';
import { S3MediaStore } from './s3-media-store.js';

export type { MediaStore, StoredObject } from './media-store.js';
export { FileMediaStore } from './file-media-store.js';
export { S3MediaStore } from './s3-media-store.js';

/** The configured store: files under DATA_DIR/media, or S3 with `MEDIA_STORE=s3://bucket/prefix`. */
export function openMediaStore(settings: Config['media']['store']): MediaStore {
  return settings.kind === 'file' ? new FileMediaStore(settings.directory) : new S3MediaStore(settings);
}
