import { useEffect, useState, type FormEvent } from 'react';
import { api, storedKey, storeKey, type Me } from './api';
import { CharactersPage } from './pages/Characters';
import { ChatPage } from './pages/Chat';
import { SetupPage } from './pages/Setup';
import { UsagePage } from './pages/Usage';

const PAGES = [
  { id: 'setup', label: 'Setup' },
  { id: 'characters', label: 'Characters' },
  { id: 'chat', label: 'Chat' },
  { id: 'usage', label: 'Usage & credits' },
] as const;
type PageId = (typeof PAGES)[number]['id'];

function pageFromHash(): PageId {
  const wanted = window.location.hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.find((page) => page.id === wanted)?.id ?? 'setup';
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    storeKey(key.trim());
    try {
      onSignedIn(await api<Me>('GET', '/v1/me'));
    } catch (failure) {
      storeKey(null);
      setError(failure instanceof Error ? failure.message : 'Sign-in failed');
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin">
      <form className="card" onSubmit={(event) => void submit(event)}>
        <h1>
          <span className="logo" aria-hidden="true">◐</span> Anima
        </h1>
        <p className="muted">Sign in with your Anima API key. It stays in this tab only (session storage) and is sent as a bearer token.</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" required value={key} onChange={(event) => setKey(event.target.value)} />
        {error && (
          <p className="notice error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || key.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">
          No key yet? Ask your server's admin, or use <code>/setup</code> with the Discord bot. API reference: <a href="/docs">/docs</a>
        </p>
      </form>
    </main>
  );
}

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(storedKey() !== null);
  const [page, setPage] = useState<PageId>(pageFromHash);

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (!storedKey()) return;
    api<Me>('GET', '/v1/me')
      .then(setMe)
      .catch(() => storeKey(null))
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p className="muted center">Loading…</p>;
  if (!me) return <SignIn onSignedIn={setMe} />;

  return (
    <div className="shell">
      <header className="topbar">
        <span className="brand">
          <span className="logo" aria-hidden="true">◐</span> Anima
        </span>
        <nav aria-label="Pages">
          {PAGES.map((item) => (
            <a key={item.id} href={`#/${item.id}`} aria-current={item.id === page ? 'page' : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <span className="who">
          <span className="muted small">{me.username ?? me.id.slice(0, 8)}</span>
          <a href="/docs" className="small">
            API docs
          </a>
          <button
            type="button"
            className="ghost"
            onClick={() => {
              storeKey(null);
              setMe(null);
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main className="content">
        {page === 'setup' && <SetupPage />}
        {page === 'characters' && <CharactersPage />}
        {page === 'chat' && <ChatPage />}
        {page === 'usage' && <UsagePage />}
      </main>
    </div>
  );
}
