import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { PayloadTooLargeError, ValidationError } from './errors.js';

/**
 * SSRF-safe fetch of a user-supplied URL (image attachments). We resolve DNS ourselves, refuse
 * non-public addresses, and then connect to exactly the vetted address (the socket's `lookup`
 * returns it), so a second DNS answer cannot swap in 127.0.0.1 (DNS rebinding). Redirects are
 * followed by hand, each hop vetted again. Only http/https, a size limit enforced while reading,
 * an image/* content type and a timeout over the whole exchange.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface SafeFetchOptions {
  /** Permit loopback/private targets (ALLOW_PRIVATE_FETCH: tests, trusted LANs). */
  allowPrivate: boolean;
  /** Request field named in 4xx errors, e.g. `attachment_url`. */
  field?: string;
  maxBytes?: number;
  timeoutMs?: number;
  maxRedirects?: number;
  /** Accept this Content-Type (default: image/*). */
  acceptContentType?: (contentType: string) => boolean;
  /** DNS resolution; injectable for tests. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** Whether an address may be contacted (default: not private unless allowPrivate); a test seam. */
  isAddressAllowed?: (address: string, hostname: string) => boolean;
  signal?: AbortSignal;
}

export interface FetchedResource {
  bytes: Buffer;
  contentType: string;
  finalUrl: string;
}

export const DEFAULT_MAX_FETCH_BYTES = 10 * 1024 * 1024;

const defaultResolve = async (hostname: string): Promise<ResolvedAddress[]> =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((entry) => ({ address: entry.address, family: entry.family === 6 ? 6 : 4 }));

export async function safeFetch(rawUrl: string, options: SafeFetchOptions): Promise<FetchedResource> {
  const field = options.field ?? 'url';
  const maxRedirects = options.maxRedirects ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let url = parseUrl(rawUrl, field);
  for (let hop = 0; ; hop += 1) {
    const address = await vet(url, options, field);
    const response = await requestOnce(url, address, options, field, deadline);
    if (response.redirect !== undefined) {
      if (hop >= maxRedirects) throw new ValidationError(field, `The URL redirects more than ${maxRedirects} times.`);
      url = parseUrl(new URL(response.redirect, url).toString(), field);
      continue;
    }
    return { bytes: response.bytes!, contentType: response.contentType!, finalUrl: url.toString() };
  }
}

function parseUrl(raw: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(field, 'This is not a valid URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError(field, 'Only http and https URLs can be fetched.');
  if (url.username || url.password) throw new ValidationError(field, 'URLs with credentials are not fetched.');
  return url;
}

async function vet(url: URL, options: SafeFetchOptions, field: string): Promise<ResolvedAddress> {
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: ResolvedAddress[];
  const literal = isIP(hostname);
  if (literal !== 0) addresses = [{ address: hostname, family: literal === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await (options.resolve ?? defaultResolve)(hostname);
    } catch {
      throw new ValidationError(field, `The host ${hostname} could not be resolved.`);
    }
  }
  if (addresses.length === 0) throw new ValidationError(field, `The host ${hostname} could not be resolved.`);
  const allowed = options.isAddressAllowed ?? ((address: string) => options.allowPrivate || !isPrivateAddress(address));
  // Every answer must be public: otherwise an attacker's name with one public and one private
  // record could still steer us inside.
  for (const entry of addresses) {
    if (!allowed(entry.address, hostname)) {
      throw new ValidationError(field, `The URL points to a private or reserved address (${hostname}); it will not be fetched.`);
    }
  }
  return addresses[0]!;
}

interface OneResponse {
  redirect?: string;
  bytes?: Buffer;
  contentType?: string;
}

function requestOnce(url: URL, address: ResolvedAddress, options: SafeFetchOptions, field: string, deadline: number): Promise<OneResponse> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FETCH_BYTES;
  const accept = options.acceptContentType ?? ((type: string) => type.startsWith('image/'));
  // Connect to the vetted address whatever the name resolves to now.
  const pinnedLookup: LookupFunction = (_hostname, lookupOptions, callback) => {
    if ((lookupOptions as { all?: boolean }).all) (callback as unknown as (error: null, addresses: ResolvedAddress[]) => void)(null, [address]);
    else callback(null, address.address, address.family);
  };
  return new Promise<OneResponse>((resolve, reject) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      reject(new ValidationError(field, 'Fetching the URL took too long.'));
      return;
    }
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, {
      method: 'GET',
      lookup: pinnedLookup,
      agent: false,
      headers: { accept: 'image/*', 'user-agent': 'Anima/1 (+attachment fetch)' },
      signal: options.signal,
    });
    const timer = setTimeout(() => request.destroy(new ValidationError(field, 'Fetching the URL took too long.')), remaining);
    const fail = (error: unknown) => {
      clearTimeout(timer);
      // Connection errors (EHOSTUNREACH, ECONNREFUSED…) would tell a prober about the network: one generic answer.
      reject(error instanceof ValidationError || error instanceof PayloadTooLargeError ? error : new ValidationError(field, 'The URL could not be fetched.'));
    };
    request.on('error', fail);
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        clearTimeout(timer);
        resolve({ redirect: response.headers.location });
        return;
      }
      if (status < 200 || status >= 300) {
        response.resume();
        fail(new ValidationError(field, `The URL answered HTTP ${status}.`));
        return;
      }
      const contentType = (response.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (!accept(contentType)) {
        response.destroy();
        fail(new ValidationError(field, `The URL is not an image (content type "${contentType || 'none'}").`));
        return;
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        response.destroy();
        fail(new PayloadTooLargeError(`The file at the URL is larger than ${maxBytes} bytes.`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          response.destroy();
          fail(new PayloadTooLargeError(`The file at the URL is larger than ${maxBytes} bytes.`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', fail);
      response.on('end', () => {
        clearTimeout(timer);
        if (size > maxBytes) return;
        resolve({ bytes: Buffer.concat(chunks), contentType });
      });
    });
    request.end();
  });
}

const PRIVATE_IPV4: Array<[number, number]> = [
  [ipv4ToNumber('0.0.0.0'), 8],
  [ipv4ToNumber('10.0.0.0'), 8],
  [ipv4ToNumber('100.64.0.0'), 10],
  [ipv4ToNumber('127.0.0.0'), 8],
  [ipv4ToNumber('169.254.0.0'), 16],
  [ipv4ToNumber('172.16.0.0'), 12],
  [ipv4ToNumber('192.0.0.0'), 24],
  [ipv4ToNumber('192.0.2.0'), 24],
  [ipv4ToNumber('192.168.0.0'), 16],
  [ipv4ToNumber('198.18.0.0'), 15],
  [ipv4ToNumber('198.51.100.0'), 24],
  [ipv4ToNumber('203.0.113.0'), 24],
  [ipv4ToNumber('224.0.0.0'), 4],
  [ipv4ToNumber('240.0.0.0'), 4],
];

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

function ipv4InRange(address: string, [base, bits]: [number, number]): boolean {
  // Arithmetic rather than bit operators: JavaScript's are signed 32-bit.
  const blockSize = 2 ** (32 - bits);
  return Math.floor(ipv4ToNumber(address) / blockSize) === Math.floor(base / blockSize);
}

/** The eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail expanded). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const value = ipv4ToNumber(dotted[1]!);
    text = `${text.slice(0, -dotted[1]!.length)}${Math.floor(value / 65536).toString(16)}:${(value % 65536).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  if (tail === undefined ? headGroups.length !== 8 : missing < 0) return undefined;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups].map((group) => parseInt(group, 16));
  return groups.length === 8 && groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}

/** True for loopback, private, link-local, CGNAT, unspecified, multicast, reserved and documentation ranges, IPv4 or IPv6. */
export function isPrivateAddress(address: string): boolean {
  const version = isIP(address.split('%')[0]!);
  if (version === 4) return PRIVATE_IPV4.some((range) => ipv4InRange(address, range));
  if (version !== 6) return true; // not an IP at all: refuse rather than guess
  const groups = ipv6Groups(address);
  if (!groups) return true;
  const [first = 0] = groups;
  const embeddedIpv4 = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  const zeroPrefix = (count: number) => groups.slice(0, count).every((group) => group === 0);
  if (zeroPrefix(8)) return true; // ::
  if (zeroPrefix(7) && groups[7] === 1) return true; // ::1
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): judge the IPv4 inside.
  if (zeroPrefix(5) && groups[5] === 0xffff) return isPrivateAddress(embeddedIpv4(groups[6]!, groups[7]!));
  // IPv4-translated (::ffff:0:a.b.c.d, RFC 2765): the same.
  if (zeroPrefix(4) && groups[4] === 0xffff && groups[5] === 0) return isPrivateAddress(embeddedIpv4(groups[6]!, groups[7]!));
  if (zeroPrefix(6)) return isPrivateAddress(embeddedIpv4(groups[6]!, groups[7]!));
  // Teredo (2001:0::/32) tunnels to an IPv4 address hidden in the address: never a public web server.
  if (first === 0x2001 && groups[1] === 0) return true;
  // Local-use NAT64 (64:ff9b:1::/48) translates to whatever IPv4 the operator chose.
  if (first === 0x64 && groups[1] === 0xff9b && groups[2] === 1) return true;
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address too.
  if (first === 0x64 && groups[1] === 0xff9b && zeroPrefix(0) && groups.slice(2, 6).every((group) => group === 0)) return isPrivateAddress(embeddedIpv4(groups[6]!, groups[7]!));
  if (first === 0x2002) return isPrivateAddress(embeddedIpv4(groups[1]!, groups[2]!));
  if ((first & 0xfe00) === 0xfc00) return true; // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return true; // fe80::/10 link-local
  if ((first & 0xffc0) === 0xfec0) return true; // fec0::/10 old site-local
  if ((first & 0xff00) === 0xff00) return true; // multicast
  if (first === 0x2001 && groups[1] === 0x0db8) return true; // documentation
  return false;
}
