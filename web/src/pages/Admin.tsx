import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type ProviderKey, type Voice } from '../api';
import { useApi } from '../hooks';
import { formatCredits, Problem } from '../ui';

interface Component {
  status: string;
  kind?: string;
  latency_ms?: number;
  error?: string;
}
interface Health {
  status: 'ok' | 'degraded';
  version: string;
  database: Component;
  cache: Component;
  queue: Component;
  providers: Record<string, { configured: boolean }>;
}
/** A plan as GET /v1/admin/plans answers it. */
interface Plan {
  id: string;
  name: string;
  description: string;
  daily_credits: number;
  credits_per_1k_tokens: number;
  credits_per_image: number;
  credits_per_audio_second: number;
  requests_per_minute: number;
  concurrent_streams: number;
  voice_seconds_per_month: number;
  images_per_day: number;
  features: Record<string, unknown>;
  price: { amount_cents: number | null; currency: string; interval: 'month' };
  public: boolean;
  sort_order: number;
}
const PLAN_FEATURES = [
  ['platform_keys', 'Platform keys (the platform pays when the user has no key)'],
  ['long_term_memory', 'Long-term memory'],
  ['voice', 'Voice'],
  ['image_generation', 'Image generation'],
] as const;
/** The plan's numeric fields as the editor shows them: [field, label, credits (decimals) or a whole number]. */
const PLAN_NUMBERS = [
  ['daily_credits', 'Daily credits', 'whole'],
  ['credits_per_1k_tokens', 'Credits per 1,000 tokens', 'credits'],
  ['credits_per_image', 'Credits per image', 'credits'],
  ['credits_per_audio_second', 'Credits per audio second', 'credits'],
  ['requests_per_minute', 'Requests per minute', 'whole'],
  ['concurrent_streams', 'Concurrent streams', 'whole'],
  ['images_per_day', 'Images per day', 'whole'],
  ['voice_seconds_per_month', 'Voice seconds per month', 'whole'],
  ['sort_order', 'Sort order', 'whole'],
] as const;
type PlanNumber = (typeof PLAN_NUMBERS)[number][0];
interface PlanForm {
  id: string;
  name: string;
  description: string;
  numbers: Record<PlanNumber, string>;
  features: Record<(typeof PLAN_FEATURES)[number][0], boolean>;
  price: string;
  currency: string;
  public: boolean;
}
interface PlatformKey {
  id: string;
  name: string;
  role: string;
  prefix: string;
  user_id: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
interface AdminUser {
  id: string;
  username: string | null;
  plan: { id?: string; name: string } | null;
  identities: string[];
  active: boolean;
  created_at: string;
  /** In the one-user view (GET /v1/admin/users/{id}), not in the list. */
  provider_keys?: ProviderKey[];
}
interface UserPage {
  data: AdminUser[];
  next_cursor: string | null;
}

function HealthPanel() {
  const health = useApi<Health>('/health/detailed');
  if (health.error !== null) return <Problem error={health.error} />;
  if (!health.data) return <p className="muted">Loading…</p>;
  const parts: [string, Component][] = [
    ['Database', health.data.database],
    ['Cache', health.data.cache],
    ['Queue', health.data.queue],
  ];
  return (
    <>
      <p>
        Status <strong data-testid="health-status">{health.data.status}</strong> · version {health.data.version}
      </p>
      <ul className="lights">
        {parts.map(([label, part]) => (
          <li key={label} className="light-row">
            <span className={`light ${part.status === 'ok' ? 'valid' : 'invalid'}`} aria-hidden="true" />
            <span className="provider">{label}</span>
            <span className="status">{[part.kind, part.status].filter(Boolean).join(' · ')}</span>
          </li>
        ))}
        {Object.entries(health.data.providers).map(([provider, state]) => (
          <li key={provider} className="light-row">
            <span className={`light ${state.configured ? 'valid' : ''}`} aria-hidden="true" />
            <span className="provider">{provider}</span>
            <span className="status">{state.configured ? 'platform key' : 'no platform key'}</span>
          </li>
        ))}
      </ul>
    </>
  );
}

function UsersPanel({ plans }: { plans: Plan[] }) {
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<AdminUser[] | null>(null);
  const [next, setNext] = useState<{ q: string; cursor: string } | null>(null);
  const [user, setUser] = useState<AdminUser | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [credits, setCredits] = useState('');

  /** One page of GET /v1/admin/users (newest first); a cursor appends to the list shown. */
  const loadPage = useCallback(async (q: string, cursor: string | null) => {
    const params = new URLSearchParams({ limit: '20' });
    if (q) params.set('q', q);
    if (cursor) params.set('cursor', cursor);
    try {
      const page = await api<UserPage>('GET', `/v1/admin/users?${params.toString()}`);
      setUsers((current) => (cursor ? [...(current ?? []), ...page.data] : page.data));
      setNext(page.next_cursor ? { q, cursor: page.next_cursor } : null);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }, []);
  useEffect(() => void loadPage('', null), [loadPage]);

  function search(event: FormEvent) {
    event.preventDefault();
    void loadPage(query.trim(), null);
  }
  async function open(id: string) {
    setError(null);
    try {
      setUser(await api<AdminUser>('GET', `/v1/admin/users/${encodeURIComponent(id)}`));
    } catch (failure) {
      setUser(null);
      setError(failure);
    }
  }
  async function change(body: Record<string, unknown>) {
    if (!user) return;
    try {
      const updated = await api<AdminUser>('PATCH', `/v1/admin/users/${user.id}`, body);
      setUser(updated);
      setUsers((current) => current?.map((item) => (item.id === updated.id ? { ...item, plan: updated.plan, active: updated.active } : item)) ?? current);
    } catch (failure) {
      setError(failure);
    }
  }
  async function grant(event: FormEvent) {
    event.preventDefault();
    if (!user) return;
    try {
      await api('POST', `/v1/admin/users/${user.id}/credits`, { amount: Number(credits), reason: 'granted from the dashboard' });
      setCredits('');
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <>
      <form className="row-form" role="search" onSubmit={search}>
        <div className="field grow">
          <label htmlFor="admin-user-search">Search users</label>
          <input id="admin-user-search" type="search" value={query} onChange={(event) => setQuery(event.target.value)} placeholder="external id, username or id (empty: everyone)" />
        </div>
        <button type="submit">Search</button>
      </form>
      {error !== null && <Problem error={error} />}
      {users && users.length === 0 && <p className="muted">No users match.</p>}
      {users && users.length > 0 && (
        <ul className="user-list" aria-label="Users">
          {users.map((item) => (
            <li key={item.id}>
              <button type="button" className="ghost" aria-current={user?.id === item.id ? 'true' : undefined} onClick={() => void open(item.id)}>
                <strong>{item.username ?? 'no name'}</strong> <span className="muted small">{item.identities.join(', ') || item.id}</span>{' '}
                <span className="small">{item.plan?.name ?? 'no plan'}</span>
                {!item.active && <span className="small"> · inactive</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
      {next && (
        <button type="button" className="ghost" onClick={() => void loadPage(next.q, next.cursor)}>
          More users
        </button>
      )}
      {user && (
        <div className="card" aria-label={`User ${user.username ?? user.id}`} role="region">
          <p>
            <strong>{user.username ?? user.id}</strong> <span className="muted small">{user.identities.join(', ')}</span>{' '}
            <span className="muted small">· since {new Date(user.created_at).toLocaleDateString()}</span>
          </p>
          {user.provider_keys && (
            <p className="small">
              {user.provider_keys.length === 0
                ? 'No provider keys of their own.'
                : `Provider keys: ${user.provider_keys.map((key) => `${key.provider} ${key.masked} (${key.status})`).join(', ')}`}
            </p>
          )}
          <div className="row-form">
            <div className="field">
              <label htmlFor="admin-plan">Plan</label>
              <select id="admin-plan" value={plans.find((plan) => plan.name === user.plan?.name || plan.id === user.plan?.id)?.id ?? ''} onChange={(event) => void change({ plan: event.target.value })}>
                {plans.map((plan) => (
                  <option key={plan.id} value={plan.id}>
                    {plan.name}
                  </option>
                ))}
              </select>
            </div>
            <label className="check">
              <input type="checkbox" checked={user.active} onChange={(event) => void change({ active: event.target.checked })} /> Active
            </label>
          </div>
          <form className="row-form" onSubmit={(event) => void grant(event)}>
            <div className="field">
              <label htmlFor="admin-credits">Grant credits</label>
              <input id="admin-credits" type="number" value={credits} onChange={(event) => setCredits(event.target.value)} />
            </div>
            <button type="submit" disabled={!credits}>
              Grant
            </button>
          </form>
        </div>
      )}
    </>
  );
}

function planForm(plan: Plan | null): PlanForm {
  const numbers = Object.fromEntries(PLAN_NUMBERS.map(([field]) => [field, plan ? String(plan[field]) : ''])) as Record<PlanNumber, string>;
  const features = Object.fromEntries(PLAN_FEATURES.map(([feature]) => [feature, plan ? plan.features[feature] === true : false])) as PlanForm['features'];
  return {
    id: plan?.id ?? '',
    name: plan?.name ?? '',
    description: plan?.description ?? '',
    numbers,
    features,
    // The price in the currency's main unit (e.g. 9.99); empty: a custom price.
    price: plan?.price.amount_cents === null || plan === null ? '' : (plan.price.amount_cents / 100).toFixed(2),
    currency: plan?.price.currency ?? 'usd',
    public: plan?.public ?? true,
  };
}

/**
 * Plans: every limit and price an admin may set (GET/POST/PATCH /v1/admin/plans). A new plan sends
 * what is filled in (the server's defaults for the rest); a change sends the whole form. The server
 * validates (422 names the field); a change reaches every replica at once.
 */
function PlansPanel({ plans, onChanged }: { plans: Plan[]; onChanged: () => void }) {
  const [editing, setEditing] = useState<{ plan: Plan | null; form: PlanForm } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);

  function edit(plan: Plan | null) {
    setError(null);
    setSaved(null);
    setEditing({ plan, form: planForm(plan) });
  }
  function update(change: Partial<PlanForm>) {
    setEditing((current) => (current ? { ...current, form: { ...current.form, ...change } } : current));
  }
  async function save(event: FormEvent) {
    event.preventDefault();
    if (!editing) return;
    const { plan, form } = editing;
    const body: Record<string, unknown> = { name: form.name.trim(), description: form.description.trim(), public: form.public, currency: form.currency.trim(), features: form.features };
    for (const [field] of PLAN_NUMBERS) if (form.numbers[field].trim() !== '') body[field] = Number(form.numbers[field]);
    body.price_cents = form.price.trim() === '' ? null : Math.round(Number(form.price) * 100);
    try {
      const answer = plan ? await api<Plan>('PATCH', `/v1/admin/plans/${encodeURIComponent(plan.id)}`, body) : await api<Plan>('POST', '/v1/admin/plans', { id: form.id.trim(), ...body });
      setEditing(null);
      setError(null);
      setSaved(`Plan ${answer.name} saved.`);
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <>
      <div className="table-scroll">
      <table>
        <thead>
          <tr>
            <th scope="col">Plan</th>
            <th scope="col">Daily credits</th>
            <th scope="col">Per 1k tokens</th>
            <th scope="col">Req./min</th>
            <th scope="col">Images/day</th>
            <th scope="col">Price</th>
            <th scope="col">
              <span className="sr-only">Edit</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {plans.map((plan) => (
            <tr key={plan.id}>
              <td>
                {plan.name} {plan.public ? '' : <span className="muted small">(hidden)</span>}
              </td>
              <td>{formatCredits(plan.daily_credits)}</td>
              <td>{plan.credits_per_1k_tokens}</td>
              <td>{plan.requests_per_minute}</td>
              <td>{plan.images_per_day}</td>
              <td>{plan.price.amount_cents === null ? 'custom' : `${(plan.price.amount_cents / 100).toFixed(2)} ${plan.price.currency.toUpperCase()}`}</td>
              <td>
                <button type="button" className="ghost" aria-label={`Edit plan ${plan.name}`} onClick={() => edit(plan)}>
                  Edit
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      <button type="button" onClick={() => edit(null)}>
        New plan
      </button>
      {saved && (
        <p role="status" className="small">
          {saved}
        </p>
      )}
      {editing && (
        <form className="card" aria-label={editing.plan ? `Plan ${editing.plan.name}` : 'New plan'} onSubmit={(event) => void save(event)}>
          <h4>{editing.plan ? `Plan ${editing.plan.name} (${editing.plan.id})` : 'New plan'}</h4>
          <div className="row-form">
            {!editing.plan && (
              <div className="field">
                <label htmlFor="plan-id">Id</label>
                <input id="plan-id" value={editing.form.id} onChange={(event) => update({ id: event.target.value })} placeholder="lower-case, e.g. team" required />
              </div>
            )}
            <div className="field grow">
              <label htmlFor="plan-name">Name</label>
              <input id="plan-name" value={editing.form.name} onChange={(event) => update({ name: event.target.value })} required />
            </div>
            <div className="field full">
              <label htmlFor="plan-description">Description</label>
              <input id="plan-description" value={editing.form.description} onChange={(event) => update({ description: event.target.value })} />
            </div>
          </div>
          <div className="row-form">
            {PLAN_NUMBERS.map(([field, label, kind]) => (
              <div className="field" key={field}>
                <label htmlFor={`plan-${field}`}>{label}</label>
                <input
                  id={`plan-${field}`}
                  type="number"
                  min={field === 'sort_order' ? -1000 : 0}
                  step={kind === 'credits' ? 'any' : 1}
                  value={editing.form.numbers[field]}
                  onChange={(event) => update({ numbers: { ...editing.form.numbers, [field]: event.target.value } })}
                />
              </div>
            ))}
            <div className="field">
              <label htmlFor="plan-price">Monthly price (empty: custom)</label>
              <input id="plan-price" type="number" min={0} step="0.01" value={editing.form.price} onChange={(event) => update({ price: event.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="plan-currency">Currency</label>
              <input id="plan-currency" value={editing.form.currency} maxLength={3} onChange={(event) => update({ currency: event.target.value.toLowerCase() })} />
            </div>
          </div>
          <fieldset className="checks">
            <legend>Features</legend>
            {PLAN_FEATURES.map(([feature, label]) => (
              <label className="check" key={feature}>
                <input type="checkbox" checked={editing.form.features[feature]} onChange={(event) => update({ features: { ...editing.form.features, [feature]: event.target.checked } })} /> {label}
              </label>
            ))}
            <label className="check">
              <input type="checkbox" checked={editing.form.public} onChange={(event) => update({ public: event.target.checked })} /> Listed publicly (GET /v1/plans)
            </label>
          </fieldset>
          <div className="row-form">
            <button type="submit">{editing.plan ? 'Save plan' : 'Create plan'}</button>
            <button type="button" className="ghost" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error !== null && <Problem error={error} />}
    </>
  );
}

function KeysPanel() {
  const keys = useApi<{ data: PlatformKey[] }>('/v1/keys');
  const [name, setName] = useState('');
  const [role, setRole] = useState('service');
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      setCreated((await api<{ key: string }>('POST', '/v1/keys', { name: name.trim(), role })).key);
      setName('');
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  async function revoke(id: string) {
    try {
      await api('DELETE', `/v1/keys/${id}`);
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  return (
    <>
      <form className="row-form" onSubmit={(event) => void create(event)}>
        <div className="field grow">
          <label htmlFor="admin-key-name">Key name</label>
          <input id="admin-key-name" value={name} onChange={(event) => setName(event.target.value)} maxLength={100} />
        </div>
        <div className="field">
          <label htmlFor="admin-key-role">Role</label>
          <select id="admin-key-role" value={role} onChange={(event) => setRole(event.target.value)}>
            <option value="service">service</option>
            <option value="admin">admin</option>
          </select>
        </div>
        <button type="submit" disabled={!name.trim()}>
          Create key
        </button>
      </form>
      {created && (
        <p className="notice ok" role="status">
          Copy it now, it is shown once: <code className="secret">{created}</code>
        </p>
      )}
      {error !== null && <Problem error={error} />}
      {keys.error !== null && <Problem error={keys.error} />}
      {keys.data && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Prefix</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.data.data
              .filter((key) => !key.revoked_at)
              .map((key) => (
                <tr key={key.id}>
                  <td>{key.name}</td>
                  <td>{key.role}</td>
                  <td>
                    <code>{key.prefix}</code>
                  </td>
                  <td>{key.last_used_at ? new Date(key.last_used_at).toLocaleString() : '—'}</td>
                  <td>
                    <button type="button" className="ghost danger" onClick={() => void revoke(key.id)} aria-label={`Revoke ${key.name}`}>
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/**
 * The voice registry, deactivated voices included (GET /v1/admin/voices): add one, change one
 * (description, language, gender, the vendor's voice id), and turn one off or on again — an inactive
 * voice is no longer listed to users nor spoken with.
 */
function VoicesPanel() {
  const voices = useApi<{ data: Voice[] }>('/v1/admin/voices');
  const [form, setForm] = useState({ name: '', provider: 'elevenlabs', provider_voice_id: '', language: '', gender: '' });
  const [editing, setEditing] = useState<{ voice: Voice; description: string; language: string; gender: string; provider_voice_id: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  /** A switch shows its new state at once, while its PATCH is on its way (and goes back if refused). */
  const [switching, setSwitching] = useState<Record<string, boolean>>({});
  async function switchActive(voice: Voice, active: boolean) {
    setSwitching((current) => ({ ...current, [voice.id]: active }));
    if (!(await change(voice, { active }))) setSwitching(({ [voice.id]: _refused, ...rest }) => rest);
  }
  // The list as reloaded after a change holds the new states.
  useEffect(() => setSwitching({}), [voices.data]);
  async function add(event: FormEvent) {
    event.preventDefault();
    try {
      await api('POST', '/v1/admin/voices', { ...form, language: form.language || null, gender: form.gender || null });
      setForm({ ...form, name: '', provider_voice_id: '' });
      setError(null);
      voices.reload();
    } catch (failure) {
      setError(failure);
    }
  }
  async function change(voice: Voice, body: Record<string, unknown>): Promise<boolean> {
    try {
      await api('PATCH', `/v1/admin/voices/${encodeURIComponent(voice.id)}`, body);
      setError(null);
      setEditing(null);
      voices.reload();
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  }
  const field = (key: keyof typeof form, label: string) => (
    <div className="field">
      <label htmlFor={`admin-voice-${key}`}>{label}</label>
      <input id={`admin-voice-${key}`} value={form[key]} onChange={(event) => setForm({ ...form, [key]: event.target.value })} />
    </div>
  );
  return (
    <>
      <form className="row-form" onSubmit={(event) => void add(event)}>
        {field('name', 'Voice name')}
        <div className="field">
          <label htmlFor="admin-voice-provider">Provider</label>
          <select id="admin-voice-provider" value={form.provider} onChange={(event) => setForm({ ...form, provider: event.target.value })}>
            <option>elevenlabs</option>
            <option>minimax</option>
          </select>
        </div>
        {field('provider_voice_id', 'Vendor voice id')}
        {field('language', 'Language')}
        {field('gender', 'Gender')}
        <button type="submit" disabled={!form.name || !form.provider_voice_id}>
          Add voice
        </button>
      </form>
      {error !== null && <Problem error={error} />}
      {voices.error !== null && <Problem error={voices.error} />}
      {voices.data && (
        <div className="table-scroll">
          <table aria-label="Voice registry">
            <thead>
              <tr>
                <th scope="col">Voice</th>
                <th scope="col">Provider</th>
                <th scope="col">Language</th>
                <th scope="col">Description</th>
                <th scope="col">Active</th>
                <th scope="col">
                  <span className="sr-only">Edit</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {voices.data.data.map((voice) => (
                <tr key={voice.id}>
                  <td>
                    {voice.name} {voice.gender && <span className="muted small">{voice.gender}</span>}
                  </td>
                  <td>{voice.provider}</td>
                  <td>{voice.language ?? '–'}</td>
                  <td className="small">{voice.description || <span className="muted">–</span>}</td>
                  <td>
                    <label className="check">
                      <input type="checkbox" checked={switching[voice.id] ?? voice.active} aria-label={`${voice.name} active`} onChange={(event) => void switchActive(voice, event.target.checked)} />
                    </label>
                  </td>
                  <td>
                    <button
                      type="button"
                      className="ghost"
                      aria-label={`Edit voice ${voice.name}`}
                      onClick={() => setEditing({ voice, description: voice.description, language: voice.language ?? '', gender: voice.gender ?? '', provider_voice_id: voice.provider_voice_id })}
                    >
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {editing && (
        <form
          className="card"
          aria-label={`Voice ${editing.voice.name}`}
          onSubmit={(event) => {
            event.preventDefault();
            void change(editing.voice, { description: editing.description.trim(), language: editing.language.trim() || null, gender: editing.gender.trim() || null, provider_voice_id: editing.provider_voice_id.trim() });
          }}
        >
          <h4>Voice {editing.voice.name}</h4>
          <div className="row-form">
            <div className="field">
              <label htmlFor="voice-edit-id">Vendor voice id</label>
              <input id="voice-edit-id" value={editing.provider_voice_id} onChange={(event) => setEditing({ ...editing, provider_voice_id: event.target.value })} required />
            </div>
            <div className="field">
              <label htmlFor="voice-edit-language">Language</label>
              <input id="voice-edit-language" value={editing.language} onChange={(event) => setEditing({ ...editing, language: event.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="voice-edit-gender">Gender</label>
              <input id="voice-edit-gender" value={editing.gender} onChange={(event) => setEditing({ ...editing, gender: event.target.value })} />
            </div>
            <div className="field full">
              <label htmlFor="voice-edit-description">Description</label>
              <input id="voice-edit-description" value={editing.description} onChange={(event) => setEditing({ ...editing, description: event.target.value })} />
            </div>
          </div>
          <div className="row-form">
            <button type="submit">Save voice</button>
            <button type="button" className="ghost" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </>
  );
}

/** A product as GET /v1/admin/products answers it. */
interface AdminProduct {
  id: string;
  kind: 'credit_pack' | 'subscription';
  name: string;
  description: string | null;
  credits: number;
  price: number;
  price_cents: number;
  currency: string;
  interval: 'month' | 'year' | null;
  plan: string | null;
  active: boolean;
}
interface ProductForm {
  id: string;
  kind: 'credit_pack' | 'subscription';
  name: string;
  description: string;
  credits: string;
  price: string;
  currency: string;
  interval: 'month' | 'year';
  plan: string;
  active: boolean;
}

/**
 * What the market sells (GET/POST /v1/admin/products, PATCH /v1/admin/products/{id}): credit packs and
 * subscriptions, on sale or not. A subscription names its plan and interval; the server checks the rest.
 */
function ProductsPanel({ plans }: { plans: Plan[] }) {
  const products = useApi<{ data: AdminProduct[] }>('/v1/admin/products');
  const [editing, setEditing] = useState<{ product: AdminProduct | null; form: ProductForm } | null>(null);
  const [error, setError] = useState<unknown>(null);

  function edit(product: AdminProduct | null) {
    setError(null);
    setEditing({
      product,
      form: {
        id: product?.id ?? '',
        kind: product?.kind ?? 'credit_pack',
        name: product?.name ?? '',
        description: product?.description ?? '',
        credits: product ? String(product.credits) : '',
        price: product ? (product.price_cents / 100).toFixed(2) : '',
        currency: product?.currency ?? 'usd',
        interval: product?.interval ?? 'month',
        plan: product?.plan ?? plans[0]?.id ?? '',
        active: product?.active ?? true,
      },
    });
  }
  function update(change: Partial<ProductForm>) {
    setEditing((current) => (current ? { ...current, form: { ...current.form, ...change } } : current));
  }
  async function save(event: FormEvent) {
    event.preventDefault();
    if (!editing) return;
    const { product, form } = editing;
    const subscription = form.kind === 'subscription';
    const body: Record<string, unknown> = {
      name: form.name.trim(),
      description: form.description.trim() || null,
      credits: Number(form.credits || '0'),
      price_cents: Math.round(Number(form.price) * 100),
      currency: form.currency.trim(),
      interval: subscription ? form.interval : null,
      plan: subscription ? form.plan : null,
      active: form.active,
    };
    try {
      if (product) await api('PATCH', `/v1/admin/products/${encodeURIComponent(product.id)}`, body);
      else await api('POST', '/v1/admin/products', { id: form.id.trim(), kind: form.kind, ...body });
      setEditing(null);
      setError(null);
      products.reload();
    } catch (failure) {
      setError(failure);
    }
  }

  return (
    <>
      {products.error !== null && <Problem error={products.error} />}
      {products.data && products.data.data.length === 0 && <p className="muted">Nothing on sale yet.</p>}
      {products.data && products.data.data.length > 0 && (
        <div className="table-scroll">
          <table aria-label="Products">
            <thead>
              <tr>
                <th scope="col">Product</th>
                <th scope="col">Credits</th>
                <th scope="col">Price</th>
                <th scope="col">Plan</th>
                <th scope="col">On sale</th>
                <th scope="col">
                  <span className="sr-only">Edit</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {products.data.data.map((product) => (
                <tr key={product.id}>
                  <td>
                    {product.name} <span className="muted small">{product.kind === 'subscription' ? `subscription, per ${product.interval ?? 'month'}` : 'credit pack'}</span>
                  </td>
                  <td>{product.credits}</td>
                  <td>
                    {(product.price_cents / 100).toFixed(2)} {product.currency.toUpperCase()}
                  </td>
                  <td>{product.plan ?? '–'}</td>
                  <td>{product.active ? 'yes' : 'no'}</td>
                  <td>
                    <button type="button" className="ghost" aria-label={`Edit product ${product.name}`} onClick={() => edit(product)}>
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <button type="button" onClick={() => edit(null)}>
        New product
      </button>
      {editing && (
        <form className="card" aria-label={editing.product ? `Product ${editing.product.name}` : 'New product'} onSubmit={(event) => void save(event)}>
          <h4>{editing.product ? `Product ${editing.product.name} (${editing.product.id})` : 'New product'}</h4>
          <div className="row-form">
            {!editing.product && (
              <>
                <div className="field">
                  <label htmlFor="product-id">Id</label>
                  <input id="product-id" value={editing.form.id} onChange={(event) => update({ id: event.target.value })} placeholder="e.g. credits_500" required />
                </div>
                <div className="field">
                  <label htmlFor="product-kind">Kind</label>
                  <select id="product-kind" value={editing.form.kind} onChange={(event) => update({ kind: event.target.value as ProductForm['kind'] })}>
                    <option value="credit_pack">credit pack</option>
                    <option value="subscription">subscription</option>
                  </select>
                </div>
              </>
            )}
            <div className="field grow">
              <label htmlFor="product-name">Name</label>
              <input id="product-name" value={editing.form.name} onChange={(event) => update({ name: event.target.value })} required />
            </div>
            <div className="field full">
              <label htmlFor="product-description">Description</label>
              <input id="product-description" value={editing.form.description} onChange={(event) => update({ description: event.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="product-credits">{editing.form.kind === 'subscription' ? 'Bonus credits a period' : 'Credits'}</label>
              <input id="product-credits" type="number" min={0} step={1} value={editing.form.credits} onChange={(event) => update({ credits: event.target.value })} />
            </div>
            <div className="field">
              <label htmlFor="product-price">Price</label>
              <input id="product-price" type="number" min={0.01} step="0.01" value={editing.form.price} onChange={(event) => update({ price: event.target.value })} required />
            </div>
            <div className="field">
              <label htmlFor="product-currency">Currency</label>
              <input id="product-currency" value={editing.form.currency} maxLength={3} onChange={(event) => update({ currency: event.target.value.toLowerCase() })} />
            </div>
            {editing.form.kind === 'subscription' && (
              <>
                <div className="field">
                  <label htmlFor="product-interval">Billed every</label>
                  <select id="product-interval" value={editing.form.interval} onChange={(event) => update({ interval: event.target.value as ProductForm['interval'] })}>
                    <option value="month">month</option>
                    <option value="year">year</option>
                  </select>
                </div>
                <div className="field">
                  <label htmlFor="product-plan">Grants the plan</label>
                  <select id="product-plan" value={editing.form.plan} onChange={(event) => update({ plan: event.target.value })}>
                    {plans.map((plan) => (
                      <option key={plan.id} value={plan.id}>
                        {plan.name}
                      </option>
                    ))}
                  </select>
                </div>
              </>
            )}
          </div>
          <label className="check">
            <input type="checkbox" checked={editing.form.active} onChange={(event) => update({ active: event.target.checked })} /> On sale
          </label>
          <div className="row-form">
            <button type="submit">{editing.product ? 'Save product' : 'Create product'}</button>
            <button type="button" className="ghost" onClick={() => setEditing(null)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error !== null && <Problem error={error} />}
    </>
  );
}

export function AdminPage() {
  const plans = useApi<{ data: Plan[] }>('/v1/admin/plans');
  return (
    <section aria-labelledby="admin-title">
      <h2 id="admin-title">Admin</h2>
      <h3>Health</h3>
      <HealthPanel />
      <h3>Users</h3>
      {plans.error !== null && <Problem error={plans.error} />}
      {plans.data && <UsersPanel plans={plans.data.data} />}
      <h3>Plans</h3>
      {plans.data && <PlansPanel plans={plans.data.data} onChanged={plans.reload} />}
      <h3>Products</h3>
      {plans.data && <ProductsPanel plans={plans.data.data} />}
      <h3>Platform keys</h3>
      <KeysPanel />
      <h3>Voices</h3>
      <VoicesPanel />
    </section>
  );
}
