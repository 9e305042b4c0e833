import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { api, storeKey, type Me } from './api';
import { useApi } from './hooks';

interface AuthMethods {
  api_key: boolean;
  link_code: boolean;
  oidc: { issuer: string; client_id: string; authorization_endpoint: string | null } | null;
}

const OIDC_STATE = 'anima.oidcState';

/** A link code from the URL (SETUP_URL?code=…), read once at load and removed from the address bar. */
function codeFromUrl(): string {
  const code = new URLSearchParams(window.location.search).get('code') ?? '';
  if (code) window.history.replaceState(null, '', `${window.location.pathname}${window.location.hash}`);
  return code;
}
export const LINK_CODE_FROM_URL = codeFromUrl();
/** The code from the URL is tried once, however often the form mounts. */
let linkCodeTried = false;

/** The implicit flow's answer (#id_token=…&state=…), checked against the state and nonce this tab sent. */
export function idTokenFromRedirect(): string | null {
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const token = fragment.get('id_token');
  if (!token) return null;
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
  const expected = JSON.parse(sessionStorage.getItem(OIDC_STATE) ?? 'null') as { state: string; nonce: string } | null;
  sessionStorage.removeItem(OIDC_STATE);
  if (!expected || fragment.get('state') !== expected.state) return null;
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { nonce?: string };
    return payload.nonce === expected.nonce ? token : null;
  } catch {
    return null;
  }
}

function randomText(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function startImplicitFlow(oidc: NonNullable<AuthMethods['oidc']>) {
  const state = randomText();
  const nonce = randomText();
  sessionStorage.setItem(OIDC_STATE, JSON.stringify({ state, nonce }));
  const url = new URL(oidc.authorization_endpoint!);
  url.searchParams.set('response_type', 'id_token');
  url.searchParams.set('client_id', oidc.client_id);
  url.searchParams.set('redirect_uri', `${window.location.origin}/`);
  url.searchParams.set('scope', 'openid profile');
  url.searchParams.set('response_mode', 'fragment');
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  window.location.assign(url.toString());
}

function Method({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section className="method">
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function SignIn({ onSignedIn, initialError }: { onSignedIn: (me: Me) => void; initialError?: string | null }) {
  const methods = useApi<AuthMethods>('/v1/auth/methods');
  const [key, setKey] = useState('');
  const [code, setCode] = useState(LINK_CODE_FROM_URL);
  const [idToken, setIdToken] = useState('');
  const [error, setError] = useState<string | null>(initialError ?? null);
  const [busy, setBusy] = useState(false);

  async function signInWith(credential: () => Promise<string>) {
    setBusy(true);
    setError(null);
    try {
      storeKey(await credential());
      onSignedIn(await api<Me>('GET', '/v1/me'));
    } catch (failure) {
      storeKey(null);
      setError(failure instanceof Error ? failure.message : 'Sign-in failed');
    } finally {
      setBusy(false);
    }
  }

  const linkCredential = async () => (await api<{ key: string }>('POST', '/v1/link-codes/redeem', { code: code.trim(), name: 'dashboard' })).key;

  // Opened from the bot's link (SETUP_URL?code=…): redeem at once.
  useEffect(() => {
    if (!code || code !== LINK_CODE_FROM_URL || linkCodeTried) return;
    linkCodeTried = true;
    void signInWith(linkCredential);
  }, []);

  const submit = (event: FormEvent, credential: () => Promise<string>) => {
    event.preventDefault();
    void signInWith(credential);
  };
  const oidc = methods.data?.oidc ?? null;

  return (
    <main className="signin">
      <div className="card signin-card">
        <h1>
          <span className="logo" aria-hidden="true">◐</span> Anima
        </h1>
        <p className="muted small">Your credential stays in this tab only (session storage) and is sent as a bearer token.</p>
        {error && (
          <p className="notice error" role="alert">
            {error}
          </p>
        )}
        <Method title="Discord code">
          <form onSubmit={(event) => submit(event, linkCredential)}>
            <label htmlFor="link-code">Code from the bot's /setup</label>
            <div className="inline-form">
              <input id="link-code" autoComplete="one-time-code" placeholder="ABCD-EFGH" value={code} onChange={(event) => setCode(event.target.value)} maxLength={40} />
              <button type="submit" disabled={busy || code.trim() === ''}>
                Use code
              </button>
            </div>
          </form>
        </Method>
        <Method title="Anima API key">
          <form onSubmit={(event) => submit(event, async () => key.trim())}>
            <label htmlFor="api-key">API key</label>
            <div className="inline-form">
              <input id="api-key" type="password" autoComplete="off" required value={key} onChange={(event) => setKey(event.target.value)} />
              <button type="submit" disabled={busy || key.trim() === ''}>
                {busy ? 'Signing in…' : 'Sign in'}
              </button>
            </div>
          </form>
        </Method>
        {oidc && (
          <Method title="Identity provider">
            {oidc.authorization_endpoint && (
              <button type="button" className="ghost wide" onClick={() => startImplicitFlow(oidc)}>
                Sign in with {new URL(oidc.issuer).host}
              </button>
            )}
            <form onSubmit={(event) => submit(event, async () => idToken.trim())}>
              <label htmlFor="id-token">or paste an ID token</label>
              <div className="inline-form">
                <input id="id-token" type="password" autoComplete="off" value={idToken} onChange={(event) => setIdToken(event.target.value)} />
                <button type="submit" disabled={busy || idToken.trim() === ''}>
                  Use token
                </button>
              </div>
            </form>
          </Method>
        )}
        <p className="muted small">
          No key yet? Use <code>/setup</code> with the Discord bot, or ask your server's admin. API reference: <a href="/docs">/docs</a>
        </p>
      </div>
    </main>
  );
}
