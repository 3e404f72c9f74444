// A line chart of numeric telemetry over time, drawn as SVG: a few polylines, axes, a legend. Small
// enough that a chart library would be most of the page's code.

import { h, svg } from './dom.js';

export interface Series {
  name: string;
  /** [time in ms, value], oldest first. */
  points: Array<[number, number]>;
}

const WIDTH = 800;
const HEIGHT = 260;
const MARGIN = { top: 12, right: 16, bottom: 30, left: 56 };
const GRID_STEPS = 4;
/** Markers on each point while a series is short enough for them to read. */
const MAX_MARKED_POINTS = 60;

/** The chart, with its legend; `label` names it for assistive technology, with a summary of each series. */
export function lineChart(series: Series[], label: string): HTMLElement {
  const shown = series.filter((s) => s.points.length > 0);
  if (shown.length === 0) return h('p', { class: 'muted chart-empty' }, 'No numeric fields in the messages shown yet.');
  const all = shown.flatMap((s) => s.points);
  const [t0, t1] = timeRange(Math.min(...all.map(([t]) => t)), Math.max(...all.map(([t]) => t)));
  const scale = niceScale(Math.min(...all.map(([, v]) => v)), Math.max(...all.map(([, v]) => v)));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + ((t - t0) / (t1 - t0)) * plotWidth;
  const y = (v: number) => MARGIN.top + (1 - (v - scale.low) / (scale.high - scale.low)) * plotHeight;

  const grid = Array.from({ length: Math.round((scale.high - scale.low) / scale.step) + 1 }, (_, i) => scale.low + i * scale.step);
  const format = (v: number) => v.toFixed(scale.digits);
  // Values themselves with two more digits than the axis.
  const exact = (v: number) => v.toFixed(Math.min(scale.digits + 2, 6));
  const summary = shown.map((s) => {
    const values = s.points.map(([, v]) => v);
    return `${s.name}: latest ${exact(values.at(-1)!)}, from ${exact(Math.min(...values))} to ${exact(Math.max(...values))} over ${s.points.length} messages`;
  });

  const chart = svg(
    'svg',
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': `${label}. ${summary.join('. ')}.` },
    ...grid.map((v) =>
      svg(
        'g',
        { class: 'grid' },
        svg('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }),
        svg('text', { x: MARGIN.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, format(v)),
      ),
    ),
    ...[t0, (t0 + t1) / 2, t1].map((t, i) =>
      svg(
        'text',
        { class: 'axis-time', x: x(t), y: HEIGHT - 8, 'text-anchor': ['start', 'middle', 'end'][i] },
        new Date(t).toLocaleTimeString(undefined, { hour12: false }),
      ),
    ),
    ...shown.map((s, i) =>
      svg(
        'g',
        { class: `series series-${i % 6}`, 'data-series': s.name },
        svg('polyline', { points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }),
        ...(s.points.length <= MAX_MARKED_POINTS
          ? s.points.map(([t, v]) => svg('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3 }))
          : []),
      ),
    ),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    ...shown.map((s, i) =>
      h(
        'li',
        { class: `series-${i % 6}` },
        h('span', { class: 'swatch', 'aria-hidden': 'true' }),
        `${s.name} `,
        h('strong', {}, exact(s.points.at(-1)![1])),
      ),
    ),
  );
  return h('div', { class: 'chart-box' }, chart, legend);
}

/** A time range that is never empty: a single instant gets a second around it. */
function timeRange(first: number, last: number): [number, number] {
  return last - first < 1000 ? [first - 500, last + 500] : [first, last];
}

/** A value axis on round numbers (steps of 1, 2, 2.5 or 5 times a power of ten), about GRID_STEPS of them. */
function niceScale(min: number, max: number): { low: number; high: number; step: number; digits: number } {
  const rough = (max - min || Math.abs(max) || 1) / GRID_STEPS;
  const power = Math.floor(Math.log10(rough));
  const multiple = [1, 2, 2.5, 5, 10].find((m) => m * 10 ** power >= rough)!;
  const step = multiple * 10 ** power;
  const low = Math.floor(min / step) * step;
  const high = Math.max(Math.ceil(max / step) * step, low + step);
  const digits = Math.max(0, -power + (multiple === 2.5 ? 1 : 0) - (multiple === 10 ? 1 : 0));
  return { low, high, step, digits: Math.min(digits, 6) };
}
