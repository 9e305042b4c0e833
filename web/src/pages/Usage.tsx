import { useEffect, useState } from 'react';
import { api, type LedgerEntry, type UsageReport, type Wallet } from '../api';
import { formatCredits, Problem } from '../ui';
import { BuyCredits, DailyChart } from './UsageChart';

/** Each part loads on its own, so a server without billing still shows what it has. */
function useApi<T>(path: string): { data: T | null; error: unknown } {
  const [state, setState] = useState<{ data: T | null; error: unknown }>({ data: null, error: null });
  useEffect(() => {
    api<T>('GET', path)
      .then((data) => setState({ data, error: null }))
      .catch((error: unknown) => setState({ data: null, error }));
  }, [path]);
  return state;
}

/** The services used in the period (the report lists every service, most with zeros). */
function usedServices(report: UsageReport): [string, UsageReport['totals']][] {
  return Object.entries(report.services).filter(([, figures]) => figures.requests > 0 || figures.credits !== 0);
}

export function UsagePage() {
  const wallet = useApi<Wallet>('/v1/wallet/balance');
  const usage = useApi<UsageReport>('/v1/me/usage?days=30');
  const ledger = useApi<{ data: LedgerEntry[] }>('/v1/wallet/transactions');

  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage &amp; credits</h2>
      <h3>Balance</h3>
      {wallet.error !== null && <Problem error={wallet.error} />}
      {wallet.data && (
        <div className="stats">
          <div className="card stat">
            <span className="muted small">Balance</span>
            <strong data-testid="balance">{formatCredits(wallet.data.balance)}</strong>
            <span className="muted small">credits</span>
          </div>
          <div className="card stat">
            <span className="muted small">Daily left</span>
            <strong>{formatCredits(wallet.data.daily_remaining)}</strong>
            <span className="muted small">of {formatCredits(wallet.data.plan.daily_credits)}</span>
          </div>
          <div className="card stat">
            <span className="muted small">Plan</span>
            <strong>{wallet.data.plan.name}</strong>
            <span className="muted small">refresh {new Date(wallet.data.next_refresh_at).toLocaleString()}</span>
          </div>
        </div>
      )}
      <h3>Last 30 days by service</h3>
      {usage.data && usage.data.daily.length > 0 && <DailyChart daily={usage.data.daily} days={usage.data.days} />}
      {usage.error !== null && <Problem error={usage.error} />}
      {usage.data && usedServices(usage.data).length === 0 && <p className="muted">No usage yet.</p>}
      {usage.data && usedServices(usage.data).length > 0 && (
        <table className="usage">
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col">Requests</th>
              <th scope="col">Tokens</th>
              <th scope="col">Credits</th>
            </tr>
          </thead>
          <tbody>
            {usedServices(usage.data).map(([service, figures]) => (
              <tr key={service}>
                <td>{service}</td>
                <td>{figures.requests}</td>
                <td>{figures.tokens}</td>
                <td>{formatCredits(figures.credits)}</td>
              </tr>
            ))}
            <tr className="total">
              <th scope="row">Total</th>
              <td>{usage.data.totals.requests}</td>
              <td>{usage.data.totals.tokens}</td>
              <td>{formatCredits(usage.data.totals.credits)}</td>
            </tr>
          </tbody>
        </table>
      )}
      <BuyCredits />
      <h3>Transactions</h3>
      {ledger.error !== null && <Problem error={ledger.error} />}
      {ledger.data && ledger.data.data.length === 0 && <p className="muted">No transactions yet.</p>}
      {ledger.data && ledger.data.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Kind</th>
              <th scope="col">Amount</th>
              <th scope="col">Balance after</th>
            </tr>
          </thead>
          <tbody>
            {ledger.data.data.map((entry) => (
              <tr key={entry.id}>
                <td>{new Date(entry.created_at).toLocaleString()}</td>
                <td title={entry.reason ?? undefined}>{entry.kind}</td>
                <td className={entry.amount < 0 ? 'neg' : 'pos'}>{formatCredits(entry.amount)}</td>
                <td>{formatCredits(entry.balance_after)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
