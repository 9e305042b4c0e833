import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { media } from '../../src/infra/db/schema.js';
import { eq } from 'drizzle-orm';
import { silentMp3, startS3Fake, type S3Fake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * GET /v1/media/{id}: the owner's bearer token or a signed URL, others get 404; ranges; expiry;
 * the retention sweep; DELETE /v1/me removes the bytes. Embedded runs on files, PostgreSQL on S3.
 */
describe.each(backends())('stored media over HTTP (%s)', (backend) => {
  let server: TestServer;
  let s3: S3Fake | undefined;
  const as = (externalId: string) => ({ key: server.internalKey, headers: { 'x-user-id': externalId } });

  beforeAll(async () => {
    s3 = backend === 'postgres' ? await startS3Fake() : undefined;
    server = await startTestServer(
      backend,
      s3 ? { MEDIA_STORE: 's3://anima-media/test', S3_ENDPOINT: s3.url, S3_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test-access-key', AWS_SECRET_ACCESS_KEY: 'secret' } : {},
    );
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await s3?.close();
  });

  async function userId(externalId: string): Promise<string> {
    return (await server.container.identity.service.registerUser(externalId, undefined)).user.id;
  }

  it('serves the owner, a signed URL and an admin; a stranger, a forged or expired signature get 404', async () => {
    const owner = await userId('media-owner');
    await userId('media-stranger');
    const audio = silentMp3(2000);
    const row = await server.container.media.service.save({ userId: owner, kind: 'audio', bytes: audio, contentType: 'audio/mpeg', metadata: { voice: 'test' } });
    expect(row.byteSize).toBe(audio.length);
    if (s3) expect([...s3.objects.keys()].some((key) => key.startsWith('anima-media/test/audio/'))).toBe(true);

    const own = await fetch(`${server.url}/v1/media/${row.id}`, { headers: { authorization: `Bearer ${server.internalKey}`, 'x-user-id': 'media-owner' } });
    expect(own.status).toBe(200);
    expect(own.headers.get('content-type')).toBe('audio/mpeg');
    expect(own.headers.get('cache-control')).toContain('private');
    expect(Buffer.from(await own.arrayBuffer()).equals(audio)).toBe(true);

    expect((await server.request('GET', `/v1/media/${row.id}`, as('media-stranger'))).status).toBe(404);
    expect((await server.request('GET', `/v1/media/${row.id}`, { key: null })).status).toBe(401);
    expect((await server.request('GET', `/v1/media/${row.id}`)).status).toBe(200); // admin

    const { url } = server.container.media.service.signedUrl(row, { ttlSeconds: 600, origin: server.url });
    expect(url.startsWith(`${server.url}/v1/media/${row.id}?expires=`)).toBe(true);
    const signed = await fetch(url);
    expect(signed.status).toBe(200);
    expect(signed.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(Buffer.from(await signed.arrayBuffer()).equals(audio)).toBe(true);

    const forged = url.replace(/signature=([^&]+)/, (_all, value: string) => `signature=${value.slice(0, -2)}AA`);
    expect((await fetch(forged)).status).toBe(404);
    const later = url.replace(/expires=(\d+)/, (_all, value: string) => `expires=${Number(value) + 60}`);
    expect((await fetch(later)).status).toBe(404);
    const expired = server.container.media.service.signedUrl(row, { ttlSeconds: -10, origin: server.url });
    expect((await fetch(expired.url)).status).toBe(404);
    expect((await server.request('GET', '/v1/media/not-a-uuid', as('media-owner'))).status).toBe(404);
  });

  it('answers byte ranges for seeking', async () => {
    const owner = await userId('media-ranger');
    const audio = silentMp3(3000);
    const row = await server.container.media.service.save({ userId: owner, kind: 'audio', bytes: audio, contentType: 'audio/mpeg' });
    const { url } = server.container.media.service.signedUrl(row, { origin: server.url });
    const part = await fetch(url, { headers: { range: 'bytes=10-99' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-99/${audio.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(audio.subarray(10, 100))).toBe(true);
    const tail = await fetch(url, { headers: { range: 'bytes=-16' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(audio.subarray(audio.length - 16))).toBe(true);
    expect((await fetch(url, { headers: { range: `bytes=${audio.length + 5}-` } })).status).toBe(416);
  });

  it('sweeps expired media and forgets a deleted user\'s media', async () => {
    const service = server.container.media.service;
    const owner = await userId('media-leaver');
    const stale = await service.save({ userId: owner, kind: 'audio', bytes: silentMp3(200), contentType: 'audio/mpeg', expiresAt: new Date(Date.now() + 200) });
    const kept = await service.save({ userId: owner, kind: 'image', bytes: Buffer.from('png'), contentType: 'image/png' });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await service.sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(await server.container.db.select().from(media).where(eq(media.id, stale.id))).toEqual([]);
    expect(await service.store.get(stale.storageKey)).toBeUndefined();

    const exported = await server.request('GET', '/v1/me/export', as('media-leaver'));
    expect(exported.body.media.map((item: { id: string }) => item.id)).toEqual([kept.id]);
    expect((await server.request('DELETE', '/v1/me', as('media-leaver'))).status).toBe(204);
    expect(await server.container.db.select().from(media).where(eq(media.id, kept.id))).toEqual([]);
    expect(await service.store.get(kept.storageKey)).toBeUndefined();
  });
});
