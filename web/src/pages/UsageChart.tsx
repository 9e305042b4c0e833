import { useState } from 'react';
import { api, type DayUsage, type Product } from '../api';
import { useApi } from '../hooks';
import { formatCredits, Problem } from '../ui';

const COLOURS = ['#6b4fd8', '#1f9d55', '#d99a1e', '#d64545', '#2b8fd6', '#b04fb0', '#5a8a8a', '#8a6a3a'];
type Measure = 'requests' | 'credits';

/** Per-day bars stacked by service, plain SVG; the figures are also in a table for screen readers. */
export function DailyChart({ daily, days }: { daily: DayUsage[]; days: number }) {
  const [measure, setMeasure] = useState<Measure>('requests');
  const services = [...new Set(daily.flatMap((day) => Object.keys(day.services)))].sort();
  const byDate = new Map(daily.map((day) => [day.date, day]));
  const dates: string[] = [];
  const today = new Date();
  for (let back = days - 1; back >= 0; back -= 1) {
    dates.push(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - back)).toISOString().slice(0, 10));
  }
  const value = (day: DayUsage | undefined, service: string) => day?.services[service]?.[measure] ?? 0;
  const max = Math.max(1e-9, ...dates.map((date) => services.reduce((sum, service) => sum + value(byDate.get(date), service), 0)));
  const width = 600;
  const height = 160;
  const slot = width / dates.length;
  const bar = Math.max(2, slot * 0.7);

  return (
    <figure className="chart card">
      <div className="chart-head">
        <figcaption>
          Per day, by service ({measure}), last {days} days
        </figcaption>
        <label className="check">
          <input type="checkbox" checked={measure === 'credits'} onChange={(event) => setMeasure(event.target.checked ? 'credits' : 'requests')} /> Show credits
        </label>
      </div>
      <svg viewBox={`0 0 ${width} ${height + 18}`} role="img" aria-label={`Daily ${measure} by service`} data-testid="usage-chart">
        <line x1={0} x2={width} y1={height} y2={height} className="axis" />
        {dates.map((date, index) => {
          const day = byDate.get(date);
          let y = height;
          return (
            <g key={date}>
              {services.map((service, serviceIndex) => {
                const amount = value(day, service);
                if (amount <= 0) return null;
                const h = (amount / max) * (height - 8);
                y -= h;
                return (
                  <rect key={service} x={index * slot + (slot - bar) / 2} y={y} width={bar} height={h} fill={COLOURS[serviceIndex % COLOURS.length]} data-service={service} data-date={date}>
                    <title>{`${date} · ${service}: ${measure === 'credits' ? formatCredits(amount) : amount}`}</title>
                  </rect>
                );
              })}
              {(index === 0 || index === dates.length - 1 || index % 7 === 6) && (
                <text
                  x={index === 0 ? 0 : index === dates.length - 1 ? width : index * slot + slot / 2}
                  y={height + 14}
                  textAnchor={index === 0 ? 'start' : index === dates.length - 1 ? 'end' : 'middle'}
                  className="tick"
                >
                  {date.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <ul className="legend" aria-label="Services">
        {services.map((service, index) => (
          <li key={service}>
            <svg width="12" height="12" aria-hidden="true">
              <rect width="12" height="12" rx="2" fill={COLOURS[index % COLOURS.length]} />
            </svg>
            {service}
          </li>
        ))}
      </ul>
    </figure>
  );
}

/** Credit packs and subscriptions, shown only when the server sells any; checkout happens on Stripe. */
export function BuyCredits() {
  const products = useApi<{ data: Product[] }>('/v1/market/products');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  if (!products.data || products.data.data.length === 0) return null;

  async function buy(product: Product) {
    setBusy(product.id);
    setError(null);
    try {
      const path = product.kind === 'subscription' ? '/v1/market/subscribe' : '/v1/market/buy_credits';
      const back = `${window.location.origin}/#/usage`;
      const checkout = await api<{ url: string }>('POST', path, { product_id: product.id, success_url: back, cancel_url: back });
      window.location.assign(checkout.url);
    } catch (failure) {
      setError(failure);
      setBusy(null);
    }
  }

  return (
    <>
      <h3>Buy credits</h3>
      {error !== null && <Problem error={error} />}
      <ul className="grid products" aria-label="Products">
        {products.data.data.map((product) => (
          <li key={product.id} className="card product">
            <strong>{product.name}</strong>
            {product.description && <span className="muted small">{product.description}</span>}
            <span>
              {formatCredits(product.credits)} credits{product.interval ? ` / ${product.interval}` : ''}
            </span>
            <button type="button" disabled={busy !== null} onClick={() => void buy(product)}>
              {busy === product.id ? 'Opening checkout…' : `${product.kind === 'subscription' ? 'Subscribe' : 'Buy'} · ${product.price.toLocaleString(undefined, { style: 'currency', currency: product.currency.toUpperCase() })}`}
            </button>
          </li>
        ))}
      </ul>
    </>
  );
}
