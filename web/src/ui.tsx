import type { ReactNode } from 'react';
import { ApiError } from './api';

/** What a page shows when a call failed: "not available" for 404/503, the API's message otherwise. */
export function Problem({ error }: { error: unknown }): ReactNode {
  if (error instanceof ApiError && error.unavailable) return <p className="notice">Not available on this server.</p>;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <p className="notice error" role="alert">
      {message}
    </p>
  );
}

export function formatCredits(value: number): string {
  return value.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

/** A labelled input in a `.row-form` (text unless `type` says otherwise). */
export function Field(props: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  type?: 'text' | 'number';
  className?: string;
  required?: boolean;
  placeholder?: string;
  min?: number;
  step?: number | 'any';
  maxLength?: number;
}): ReactNode {
  const { id, label, value, onChange, type = 'text', className, ...rest } = props;
  return (
    <div className={className ? `field ${className}` : 'field'}>
      <label htmlFor={id}>{label}</label>
      <input id={id} type={type} value={value} onChange={(event) => onChange(event.target.value)} {...rest} />
    </div>
  );
}

/** A labelled select, as `Field` is a labelled input: each option a value and the text shown for it. */
export function SelectField<T extends string>(props: {
  id: string;
  label: string;
  value: T;
  onChange: (value: T) => void;
  options: ReadonlyArray<{ value: T; label: string }>;
  className?: string;
}): ReactNode {
  const { id, label, value, onChange, options, className } = props;
  return (
    <div className={className ? `field ${className}` : 'field'}>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value as T)}>
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** An editor form's buttons: save (or create, for a new record) and cancel. */
export function EditorActions({ existing, noun, onCancel }: { existing: boolean; noun: string; onCancel: () => void }): ReactNode {
  return (
    <div className="row-form">
      <button type="submit">{existing ? `Save ${noun}` : `Create ${noun}`}</button>
      <button type="button" className="ghost" onClick={onCancel}>
        Cancel
      </button>
    </div>
  );
}

/** A table's header row: its column names, and a last, visually hidden one for a row's buttons. */
export function TableHead({ columns, actions }: { columns: string[]; actions?: string }): ReactNode {
  return (
    <thead>
      <tr>
        {columns.map((column) => (
          <th key={column} scope="col">
            {column}
          </th>
        ))}
        {actions && (
          <th scope="col">
            <span className="sr-only">{actions}</span>
          </th>
        )}
      </tr>
    </thead>
  );
}

/** A price in the currency's smallest unit, as "9.99 USD". */
export function formatPrice(cents: number, currency: string): string {
  return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

/** A table row's Edit button, in its own cell, named after what it edits. */
export function EditCell({ label, onEdit }: { label: string; onEdit: () => void }): ReactNode {
  return (
    <td>
      <button type="button" className="ghost" aria-label={label} onClick={onEdit}>
        Edit
      </button>
    </td>
  );
}
