import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PayloadTooLargeError, ValidationError } from './errors.js';
import { isPrivateAddress, safeFetch, type ResolvedAddress } from './safe-fetch.js';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.254',
    '169.254.169.254', '0.0.0.0', '224.0.0.1', '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1',
    '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a00:1', '2002:a00:1::', 'not-an-ip',
    // IPv4-translated (::ffff:0:0/96), IPv4-compatible (::/96), NAT64 with a private tail, 6to4 of loopback, Teredo, local-use NAT64.
    '::ffff:0:127.0.0.1', '::ffff:0:7f00:1', '::ffff:0:a9fe:a9fe', '::127.0.0.1', '::a00:1', '64:ff9b::127.0.0.1', '64:ff9b::c0a8:101',
    '2002:7f00:1::1', '2002:c0a8:101::', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::1', '64:ff9b:1::8.8.8.8',
  ])('refuses %s', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '93.184.216.34', '2606:4700:4700::1111', '::ffff:8.8.8.8', '::ffff:0:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1'])('allows %s', (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});

describe('safeFetch', () => {
  let server: http.Server;
  let port: number;
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const target = request.url ?? '/';
      if (target === '/image.png') response.writeHead(200, { 'content-type': 'image/png' }).end(png);
      else if (target === '/page') response.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
      else if (target === '/big') {
        response.writeHead(200, { 'content-type': 'image/png' });
        response.end(Buffer.alloc(4096));
      } else if (target === '/to-private') response.writeHead(302, { location: `http://internal.example:${port}/image.png` }).end();
      else if (target === '/to-loopback-literal') response.writeHead(301, { location: `http://127.0.0.1:${port}/image.png` }).end();
      else if (target === '/to-public') response.writeHead(302, { location: '/image.png' }).end();
      else if (target === '/loop') response.writeHead(302, { location: '/loop' }).end();
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  // "public.example" plays a public host: it resolves to the loopback test server, and only it is
  // trusted there, so redirects to anything else get the real private-address checks.
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    if (hostname === 'public.example') return [{ address: '127.0.0.1', family: 4 }];
    if (hostname === 'internal.example') return [{ address: '10.0.0.5', family: 4 }];
    if (hostname === 'mixed.example') return [{ address: '93.184.216.34', family: 4 }, { address: '192.168.0.10', family: 4 }];
    throw new Error('ENOTFOUND');
  };
  const options = {
    allowPrivate: false,
    field: 'attachment_url',
    resolve,
    isAddressAllowed: (address: string, hostname: string) => hostname === 'public.example' || !isPrivateAddress(address),
  };

  async function refusal(url: string, extra: Partial<typeof options> & { maxBytes?: number } = {}): Promise<Error> {
    try {
      await safeFetch(url, { ...options, ...extra });
    } catch (error) {
      return error as Error;
    }
    throw new Error(`expected ${url} to be refused`);
  }

  it('fetches an image from an allowed host, following a same-host redirect', async () => {
    const fetched = await safeFetch(`http://public.example:${port}/to-public`, options);
    expect(fetched.contentType).toBe('image/png');
    expect(fetched.bytes.equals(png)).toBe(true);
  });

  it('refuses loopback, private and IPv6 literals without allowPrivate, naming the field', async () => {
    for (const url of [`http://127.0.0.1:${port}/image.png`, 'http://10.0.0.1/x.png', 'http://[::1]/x.png', 'http://[::ffff:127.0.0.1]/x.png', 'http://169.254.169.254/latest/meta-data']) {
      const error = await refusal(url);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe('attachment_url');
      expect(error.message).toMatch(/private or reserved/);
    }
  });

  it('refuses a name with any private record, and non-http schemes', async () => {
    expect((await refusal('http://mixed.example/x.png')).message).toMatch(/private or reserved/);
    expect((await refusal('file:///etc/passwd')).message).toMatch(/Only http and https/);
    expect((await refusal('ftp://public.example/x')).message).toMatch(/Only http and https/);
  });

  it('re-checks every redirect: to a private name or a loopback literal is refused', async () => {
    expect((await refusal(`http://public.example:${port}/to-private`)).message).toMatch(/private or reserved.*internal\.example/);
    expect((await refusal(`http://public.example:${port}/to-loopback-literal`)).message).toMatch(/private or reserved/);
    expect((await refusal(`http://public.example:${port}/loop`)).message).toMatch(/redirects more than 3/);
  });

  it('refuses non-images and bodies over the size limit', async () => {
    expect((await refusal(`http://public.example:${port}/page`)).message).toMatch(/not an image/);
    expect(await refusal(`http://public.example:${port}/big`, { maxBytes: 1000 })).toBeInstanceOf(PayloadTooLargeError);
  });

  it('connects to the vetted address, not to what the name resolves to later (no rebinding)', async () => {
    let calls = 0;
    const rebinding = async (): Promise<ResolvedAddress[]> => {
      calls += 1;
      // First answer (vetted) is the trusted test server; any later lookup would say 10.0.0.1.
      return [{ address: calls === 1 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    };
    const fetched = await safeFetch(`http://public.example:${port}/image.png`, { ...options, resolve: rebinding });
    expect(fetched.bytes.equals(png)).toBe(true);
    expect(calls).toBe(1);
  });

  it('allows private targets when allowPrivate is set', async () => {
    const fetched = await safeFetch(`http://127.0.0.1:${port}/image.png`, { allowPrivate: true });
    expect(fetched.contentType).toBe('image/png');
  });

  it('answers a connection failure with a generic 422, without the socket error', async () => {
    const failure = safeFetch('http://127.0.0.1:9/image.png', { allowPrivate: true, field: 'attachment_url' });
    await expect(failure).rejects.toMatchObject({ status: 422, field: 'attachment_url', message: 'The URL could not be fetched.' });
  });
});
