import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, PROVIDERS, type Provider, type ProviderKey } from '../api';
import { Problem } from '../ui';

type Light = 'valid' | 'invalid' | 'unreachable' | 'unchecked' | 'missing';

/** One light per provider from your own active keys: the best status among them, or missing. */
function lightFor(keys: ProviderKey[], provider: Provider): Light {
  const statuses = keys.filter((key) => key.provider === provider && key.active).map((key) => key.status);
  for (const status of ['valid', 'unchecked', 'unreachable', 'invalid'] as const) if (statuses.includes(status)) return status;
  return 'missing';
}

export function SetupPage() {
  const [keys, setKeys] = useState<ProviderKey[] | null>(null);
  const [platform, setPlatform] = useState<Record<string, boolean>>({});
  const [error, setError] = useState<unknown>(null);
  const [provider, setProvider] = useState<Provider>('openrouter');
  const [secret, setSecret] = useState('');
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [checking, setChecking] = useState<string | null>(null);
  const [checked, setChecked] = useState<ProviderKey | null>(null);

  const load = useCallback(async () => {
    try {
      const [list, status] = await Promise.all([
        api<{ data: ProviderKey[] }>('GET', '/v1/me/provider-keys'),
        api<Record<string, boolean>>('GET', '/v1/me/provider-keys/status'),
      ]);
      setKeys(list.data);
      setPlatform(status);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }, []);
  useEffect(() => void load(), [load]);

  async function add(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setFormError(null);
    try {
      await api('POST', '/v1/me/provider-keys', { provider, key: secret.trim() });
      setSecret('');
      await load();
    } catch (failure) {
      setFormError(failure instanceof Error ? failure.message : 'Could not add the key');
    } finally {
      setBusy(false);
    }
  }

  /** Asks the provider again (POST …/check); the answer is the key with its new status. */
  async function recheck(key: ProviderKey) {
    setChecking(key.id);
    setChecked(null);
    try {
      const updated = await api<ProviderKey>('POST', `/v1/me/provider-keys/${key.id}/check`);
      setKeys((current) => current?.map((item) => (item.id === updated.id ? updated : item)) ?? current);
      setChecked(updated);
      setError(null);
    } catch (failure) {
      setError(failure);
    } finally {
      setChecking(null);
    }
  }

  /** Turns a key off (calls go to the platform's key or ask for another) or on again, kept stored either way. */
  async function setActive(key: ProviderKey, active: boolean) {
    try {
      const updated = await api<ProviderKey>('PATCH', `/v1/me/provider-keys/${key.id}`, { active });
      setKeys((current) => current?.map((item) => (item.id === updated.id ? updated : item)) ?? current);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }

  async function remove(key: ProviderKey) {
    if (!window.confirm(`Delete the ${key.provider} key ${key.masked}?`)) return;
    try {
      await api('DELETE', `/v1/me/provider-keys/${key.id}`);
      await load();
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <section aria-labelledby="setup-title">
      <h2 id="setup-title">Setup: your provider keys</h2>
      <p className="muted">
        Keys are checked with the provider when you add them (and when you press Re-check) and stored encrypted; only a masked form is ever shown.
      </p>
      {error !== null && <Problem error={error} />}
      {keys && (
        <>
          <ul className="lights" aria-label="Provider status">
            {PROVIDERS.map((name) => {
              const light = lightFor(keys, name);
              return (
                <li key={name} className="light-row" data-provider={name} data-status={light}>
                  <span className={`light ${light}`} aria-hidden="true" />
                  <span className="provider">{name}</span>
                  <span className="status">{light}</span>
                  {light === 'missing' && platform[name] && <span className="muted small">platform key in use</span>}
                </li>
              );
            })}
          </ul>
          <form className="card row-form" onSubmit={(event) => void add(event)}>
            <div className="field">
              <label htmlFor="pk-provider">Provider</label>
              <select id="pk-provider" value={provider} onChange={(event) => setProvider(event.target.value as Provider)}>
                {PROVIDERS.map((name) => (
                  <option key={name}>{name}</option>
                ))}
              </select>
            </div>
            <div className="field grow">
              <label htmlFor="pk-key">Key</label>
              <input id="pk-key" type="password" autoComplete="off" required value={secret} onChange={(event) => setSecret(event.target.value)} />
            </div>
            <button type="submit" disabled={busy || secret.trim() === ''}>
              {busy ? 'Checking…' : 'Add key'}
            </button>
            {formError && (
              <p className="notice error full" role="alert">
                {formError}
              </p>
            )}
          </form>
          {checked && (
            <p className={`notice${checked.status === 'valid' ? ' ok' : checked.status === 'invalid' ? ' error' : ''}`} role="status">
              Re-checked {checked.provider} key <code>{checked.masked}</code>: <strong>{checked.status}</strong>
              {checked.status_detail ? ` (${checked.status_detail})` : ''}
            </p>
          )}
          {keys.length > 0 && (
            <table>
              <caption className="sr-only">Your provider keys</caption>
              <thead>
                <tr>
                  <th scope="col">Provider</th>
                  <th scope="col">Key</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((key) => (
                  <tr key={key.id}>
                    <td>{key.provider}</td>
                    <td>
                      <code>{key.masked}</code>
                    </td>
                    <td title={key.status_detail ?? undefined}>
                      <span className={`light ${key.status}`} aria-hidden="true" /> {key.active ? key.status : 'inactive'}
                      {key.last_checked_at && <span className="muted small"> · checked {new Date(key.last_checked_at).toLocaleString()}</span>}
                    </td>
                    <td className="row-actions">
                      <button
                        type="button"
                        className="ghost"
                        disabled={checking !== null}
                        onClick={() => void recheck(key)}
                        aria-label={`Re-check ${key.provider} key ${key.masked}`}
                      >
                        {checking === key.id ? 'Checking…' : 'Re-check'}
                      </button>{' '}
                      <button type="button" className="ghost" onClick={() => void setActive(key, !key.active)} aria-label={`${key.active ? 'Turn off' : 'Turn on'} ${key.provider} key ${key.masked}`}>
                        {key.active ? 'Turn off' : 'Turn on'}
                      </button>{' '}
                      <button type="button" className="ghost danger" onClick={() => void remove(key)} aria-label={`Delete ${key.provider} key ${key.masked}`}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
