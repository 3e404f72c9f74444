/** One line of the results table. A row without a value says why it was skipped in `note`. */
export interface Row {
  group: string;
  name: string;
  value: number | null;
  unit: string;
  /** The target, as a comparison the value must satisfy. */
  target?: { op: '>=' | '<='; value: number };
  note?: string;
}

export type Verdict = 'pass' | 'MISS' | 'n/a' | '';

export function verdict(row: Row): Verdict {
  if (!row.target) return '';
  if (row.value === null || Number.isNaN(row.value)) return 'n/a';
  const ok = row.target.op === '>=' ? row.value >= row.target.value : row.value <= row.target.value;
  return ok ? 'pass' : 'MISS';
}

function formatValue(value: number | null): string {
  if (value === null || Number.isNaN(value)) return '—';
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

/** A plain-text table (also valid Markdown) of every row with its target and verdict. */
export function table(rows: Row[]): string {
  const header = ['group', 'measure', 'value', 'unit', 'target', 'result', 'note'];
  const lines = rows.map((r) => [
    r.group,
    r.name,
    formatValue(r.value),
    r.unit,
    r.target ? `${r.target.op} ${formatValue(r.target.value)}` : '',
    verdict(r),
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}
