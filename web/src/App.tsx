import { useEffect, useState } from 'react';
import { api, storedKey, storeKey, type Me } from './api';
import { AdminPage } from './pages/Admin';
import { CharactersPage } from './pages/Characters';
import { ChatPage } from './pages/Chat';
import { ImagesPage } from './pages/Images';
import { MemoriesPage } from './pages/Memories';
import { SetupPage } from './pages/Setup';
import { UsagePage } from './pages/Usage';
import { VoicesPage } from './pages/Voices';
import { idTokenFromRedirect, LINK_CODE_FROM_URL, SignIn } from './signin';
import { ThemeToggle } from './theme';

const PAGES = [
  { id: 'setup', label: 'Setup' },
  { id: 'characters', label: 'Characters' },
  { id: 'chat', label: 'Chat' },
  { id: 'memories', label: 'Memories' },
  { id: 'images', label: 'Images' },
  { id: 'voices', label: 'Voices' },
  { id: 'usage', label: 'Usage & credits' },
  { id: 'admin', label: 'Admin', admin: true },
] as const;
type PageId = (typeof PAGES)[number]['id'];

function pageFromHash(): PageId {
  const wanted = window.location.hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.find((page) => page.id === wanted)?.id ?? 'setup';
}

// An identity provider's answer to the implicit flow arrives in the fragment: take it before routing.
const redirectedToken = idTokenFromRedirect();
if (redirectedToken) storeKey(redirectedToken);
// Opened from the bot's link (?code=…): sign in afresh as the person the code was made for.
else if (LINK_CODE_FROM_URL) storeKey(null);

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [admin, setAdmin] = useState(false);
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

  // Admin pages show only to keys the admin-only health route accepts.
  useEffect(() => {
    if (!me) return setAdmin(false);
    api('GET', '/health/detailed')
      .then(() => setAdmin(true))
      .catch(() => setAdmin(false));
  }, [me]);

  if (checking) return <p className="muted center">Loading…</p>;
  if (!me) return <SignIn onSignedIn={setMe} />;

  const visible = PAGES.filter((item) => !('admin' in item) || admin);
  const current = page === 'admin' && !admin ? 'setup' : page;

  return (
    <div className="shell">
      <button type="button" className="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header className="topbar">
        <span className="brand">
          <span className="logo" aria-hidden="true">◐</span> Anima
        </span>
        <nav aria-label="Pages">
          {visible.map((item) => (
            <a key={item.id} href={`#/${item.id}`} aria-current={item.id === current ? 'page' : undefined}>
              {item.label}
            </a>
          ))}
        </nav>
        <span className="who">
          <span className="muted small">{me.username ?? me.id.slice(0, 8)}</span>
          <a href="/docs" className="small">
            API docs
          </a>
          <ThemeToggle />
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
      <main className="content" id="main" tabIndex={-1}>
        {current === 'setup' && <SetupPage />}
        {current === 'characters' && <CharactersPage />}
        {current === 'chat' && <ChatPage />}
        {current === 'memories' && <MemoriesPage />}
        {current === 'images' && <ImagesPage />}
        {current === 'voices' && <VoicesPage />}
        {current === 'usage' && <UsagePage />}
        {current === 'admin' && admin && <AdminPage />}
      </main>
    </div>
  );
}
