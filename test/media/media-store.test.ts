import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileMediaStore, S3MediaStore, type MediaStore } from '../../src/infra/media/index.js';
import { silentMp3, solidPng, startS3Fake, type S3Fake } from '../fakes/index.js';

/** Both MediaStore backends keep bytes and content types, miss cleanly and delete idempotently. */
describe('media stores', () => {
  let s3: S3Fake;
  let directory: string;
  const stores: Array<[string, () => MediaStore]> = [];

  beforeAll(async () => {
    s3 = await startS3Fake();
    directory = mkdtempSync(path.join(tmpdir(), 'anima-media-'));
  });
  afterAll(async () => {
    await s3.close();
    rmSync(directory, { recursive: true, force: true });
  });

  const file = (): MediaStore => new FileMediaStore(directory);
  const bucket = (): MediaStore =>
    new S3MediaStore({ bucket: 'anima-media', prefix: 'prod/v1', endpoint: s3.url, region: 'us-east-1', accessKeyId: 'test-access-key', secretAccessKey: 'secret' });
  stores.push(['file', file], ['s3', bucket]);

  it.each(stores)('%s: put, get, overwrite, delete', async (_name, make) => {
    const store = make();
    const audio = silentMp3(500);
    await store.put('audio/u1/a.mp3', audio, 'audio/mpeg');
    const read = await store.get('audio/u1/a.mp3');
    expect(read?.contentType).toBe('audio/mpeg');
    expect(read?.bytes.equals(audio)).toBe(true);
    const image = solidPng(4, 4);
    await store.put('audio/u1/a.mp3', image, 'image/png');
    expect((await store.get('audio/u1/a.mp3'))?.bytes.equals(image)).toBe(true);
    expect(await store.get('audio/u1/missing.mp3')).toBeUndefined();
    await store.delete('audio/u1/a.mp3');
    expect(await store.get('audio/u1/a.mp3')).toBeUndefined();
    await store.delete('audio/u1/a.mp3');
    store.close?.();
  });

  it('s3: path-style requests under the prefix, signed with the access key', async () => {
    const store = bucket();
    await store.put('image/u2/b.png', solidPng(2, 2), 'image/png');
    const put = s3.lastRequest('/anima-media/prod/v1/image/u2/b.png');
    expect(put?.method).toBe('PUT');
    expect(String(put?.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=test-access-key\//);
    expect(s3.objects.get('anima-media/prod/v1/image/u2/b.png')?.contentType).toBe('image/png');
    store.close?.();
  });

  it('s3: a rejected access key is an error, not a miss', async () => {
    const store = new S3MediaStore({ bucket: 'anima-media', prefix: '', endpoint: s3.url, region: 'us-east-1', accessKeyId: 'wrong', secretAccessKey: 'secret' });
    await expect(store.get('audio/x.mp3')).rejects.toThrow();
    store.close?.();
  });

  it('refuses keys that could leave the store root', async () => {
    await expect(file().put('../escape.mp3', Buffer.from('x'), 'audio/mpeg')).rejects.toThrow(/unsafe media key/);
    await expect(file().get('audio/../../etc/passwd')).rejects.toThrow(/unsafe media key/);
  });
});
