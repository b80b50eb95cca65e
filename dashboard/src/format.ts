//! How figures from the API are written on the page. Formatting only: every function takes a
//! number the server sent and returns text; none derives a new figure. Numbers use en-US
//! grouping so the page reads the same on every machine (and tests can compare text).

const COUNT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const ONE_DECIMAL = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const TWO_DECIMALS = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** 12345 -> "12,345". */
export function count(n: number): string {
  return COUNT.format(n);
}

/** A 0..1 fraction as a percentage with one decimal: 0.4215 -> "42.2%"; null -> "—". */
export function fraction(f: number | null): string {
  return f === null ? '—' : `${ONE_DECIMAL.format(f * 100)}%`;
}

/** A percent change as the API sends it (12.5 = +12.5 %): "+12.5%", "−3.2%", "0.0%". */
export function deltaPct(d: number): string {
  const text = ONE_DECIMAL.format(Math.abs(d));
  if (text === '0.0') return '0.0%';
  return `${d > 0 ? '+' : '\u2212'}${text}%`;
}

/**
 * The badge text when the API gives no percent change (`delta_pct` null, which it sends when the
 * previous window had nothing): "new" if something appeared, "—" if both windows are empty.
 */
export function noDelta(value: number): string {
  return value > 0 ? 'new' : '—';
}

/** A decimal with two places, for weights, decay factors, points and z. */
export function decimal(n: number | null): string {
  return n === null ? '—' : TWO_DECIMALS.format(n);
}

/** A p-value: "< 0.001" when tiny, else three places. */
export function pValue(p: number | null): string {
  if (p === null) return '—';
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** Hours of age as the explanation lists them: "42 min", "5.0 h", "6.2 d". */
export function ageHours(h: number): string {
  if (h < 1) return `${Math.round(h * 60)} min`;
  if (h < 48) return `${ONE_DECIMAL.format(h)} h`;
  return `${ONE_DECIMAL.format(h / 24)} d`;
}

/** How long ago `then` was, as of `now`: "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago". */
export function ago(then: Date, now: Date): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - then.getTime()) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

/** An ISO timestamp in the viewer's time zone: "Mar 8, 2026, 11:58:12". */
export function dateTime(iso: string): string {
  return new Date(iso).toLocaleString('en-US', {
    month: 'short',
    day: 'numeric',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
}

/** Time of day only: "11:58:12". */
export function timeOfDay(iso: string): string {
  return new Date(iso).toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * A chart bucket key as the API sends it ("2026-03-01" daily, "2026-03-01T14:00" hourly, both in
 * UTC) as an axis label: "Mar 1" or "Mar 1 14:00". Parsed as text, not as a Date, so the label
 * is the server's bucket whatever the viewer's time zone.
 */
export function bucket(key: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}:\d{2}))?/.exec(key);
  if (!match) return key;
  const [, , month, day, time] = match;
  const date = `${MONTHS[Number(month) - 1] ?? month} ${Number(day)}`;
  return time ? `${date} ${time}` : date;
}

/** A stage or event-type id for reading: "search_performed" -> "search performed". */
export function words(id: string): string {
  return id.replace(/[_-]+/g, ' ');
}

/** Shortens an id for a table cell, keeping its start: "f3a9c2d1-…". */
export function shortId(id: string, keep = 12): string {
  return id.length <= keep ? id : `${id.slice(0, keep)}…`;
}

const RANGE_NAMES: Record<string, string> = { '24h': '24 hours', '7d': '7 days', '30d': '30 days', '90d': '90 days' };

/** A range id as words: "7d" -> "7 days". */
export function rangeName(range: string): string {
  return RANGE_NAMES[range] ?? range;
}

/** A persona id as its label, or the id itself when no label was sent. */
export function personaLabel(labels: Record<string, string>, id: string): string {
  return labels[id] ?? id;
}

/** A short timestamp for a window bound: "Mar 1, 12:00". */
export function shortDateTime(iso: string): string {
  return new Date(iso).toLocaleString('en-US', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}
