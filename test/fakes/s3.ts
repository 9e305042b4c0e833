/**
 * S3 fake: path-style object PUT / GET / HEAD / DELETE (`/<bucket>/<key>`), as the AWS SDK sends
 * them with `forcePathStyle` (MinIO, R2 and other S3-compatible stores). Requests must carry a
 * SigV4 `Authorization` header naming a known access key id; errors are S3's XML bodies.
 */
import { createHash } from 'node:crypto';
import { headerValue, startFakeServer, type FakeServer } from './fake-server.js';

export interface S3Settings {
  accessKeyIds: string[];
  buckets: string[];
}

export interface S3Object {
  bytes: Buffer;
  contentType: string;
  etag: string;
}

export interface S3Fake extends FakeServer {
  settings: S3Settings;
  /** Objects by `<bucket>/<key>`. */
  objects: Map<string, S3Object>;
}

function xmlError(code: string, message: string, resource: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource>${resource}</Resource><RequestId>fake</RequestId></Error>`;
}

const ERROR_CODES: Record<number, string> = { 403: 'AccessDenied', 404: 'NoSuchKey', 500: 'InternalError', 503: 'SlowDown' };

export async function startS3Fake(options: Partial<S3Settings> = {}): Promise<S3Fake> {
  const settings: S3Settings = { accessKeyIds: ['test-access-key'], buckets: ['anima-media'], ...options };
  const objects = new Map<string, S3Object>();
  const server = await startFakeServer(
    async (context) => {
      const { method, path } = context.request;
      const xml = { 'content-type': 'application/xml' };
      const authorization = headerValue(context.request.headers, 'authorization') ?? '';
      const credential = /^AWS4-HMAC-SHA256 Credential=([^/]+)\//.exec(authorization);
      if (!credential || !settings.accessKeyIds.includes(credential[1] ?? '')) {
        await context.send(403, xmlError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', path), xml);
        return;
      }
      const match = /^\/([^/]+)\/(.+)$/.exec(path);
      if (!match) {
        await context.send(400, xmlError('InvalidRequest', 'path-style /<bucket>/<key> expected', path), xml);
        return;
      }
      const bucket = match[1] ?? '';
      const key = decodeURIComponent(match[2] ?? '');
      if (!settings.buckets.includes(bucket)) {
        await context.send(404, xmlError('NoSuchBucket', 'The specified bucket does not exist', path), xml);
        return;
      }
      const id = `${bucket}/${key}`;
      Object.assign(context.request.meta, { bucket, key });
      switch (method) {
        case 'PUT': {
          const bytes = context.request.rawBody;
          const etag = `"${createHash('md5').update(bytes).digest('hex')}"`;
          objects.set(id, { bytes, contentType: headerValue(context.request.headers, 'content-type') ?? 'binary/octet-stream', etag });
          await context.send(200, '', { etag });
          return;
        }
        case 'GET':
        case 'HEAD': {
          const object = objects.get(id);
          if (!object) {
            await context.send(404, method === 'HEAD' ? '' : xmlError('NoSuchKey', 'The specified key does not exist.', path), xml);
            return;
          }
          const headers = { 'content-type': object.contentType, etag: object.etag, 'last-modified': new Date().toUTCString() };
          if (method === 'HEAD') {
            context.res.writeHead(200, { ...headers, 'content-length': String(object.bytes.length) });
            context.res.end();
            return;
          }
          await context.send(200, object.bytes, headers);
          return;
        }
        case 'DELETE':
          objects.delete(id);
          context.res.writeHead(204);
          context.res.end();
          return;
        default:
          await context.send(405, xmlError('MethodNotAllowed', `${method} is not allowed`, path), xml);
      }
    },
    { errorBody: (status) => xmlError(ERROR_CODES[status] ?? 'InternalError', `Error ${status}`, '/') },
  );
  return { ...server, settings, objects };
}
