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
const GRID_LINES = 4;
/** Markers on each point while a series is short enough for them to read. */
const MAX_MARKED_POINTS = 60;

/** The chart, with its legend; `label` names it for assistive technology, with a summary of each series. */
export function lineChart(series: Series[], label: string): HTMLElement {
  const shown = series.filter((s) => s.points.length > 0);
  if (shown.length === 0) return h('p', { class: 'muted chart-empty' }, 'No numeric fields in the messages shown yet.');
  const all = shown.flatMap((s) => s.points);
  const [t0, t1] = padded(Math.min(...all.map(([t]) => t)), Math.max(...all.map(([t]) => t)), 1000);
  const [v0, v1] = padded(Math.min(...all.map(([, v]) => v)), Math.max(...all.map(([, v]) => v)), 1);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + ((t - t0) / (t1 - t0)) * plotWidth;
  const y = (v: number) => MARGIN.top + (1 - (v - v0) / (v1 - v0)) * plotHeight;

  const grid = Array.from({ length: GRID_LINES + 1 }, (_, i) => v0 + ((v1 - v0) * i) / GRID_LINES);
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.max(Math.abs(v1 - v0), 1e-9))));
  const summary = shown.map((s) => {
    const values = s.points.map(([, v]) => v);
    return `${s.name}: latest ${format(values.at(-1)!, digits)}, from ${format(Math.min(...values), digits)} to ${format(Math.max(...values), digits)} over ${s.points.length} messages`;
  });

  const chart = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img', 'aria-label': `${label}. ${summary.join('. ')}.` },
    ...grid.map((v) => svg('g', { class: 'grid' },
      svg('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }),
      svg('text', { x: MARGIN.left - 8, y: y(v) + 4, 'text-anchor': 'end' }, format(v, digits)),
    )),
    ...[t0, (t0 + t1) / 2, t1].map((t, i) =>
      svg('text', { class: 'axis-time', x: x(t), y: HEIGHT - 8, 'text-anchor': ['start', 'middle', 'end'][i] }, new Date(t).toLocaleTimeString(undefined, { hour12: false }))),
    ...shown.map((s, i) => svg('g', { class: `series series-${i % 6}`, 'data-series': s.name },
      svg('polyline', { points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }),
      ...(s.points.length <= MAX_MARKED_POINTS ? s.points.map(([t, v]) => svg('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 3 })) : []),
    )),
  );
  const legend = h('ul', { class: 'legend' }, ...shown.map((s, i) =>
    h('li', { class: `series-${i % 6}` }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), `${s.name} `, h('strong', {}, format(s.points.at(-1)![1], digits)))));
  return h('div', { class: 'chart-box' }, chart, legend);
}

/** A range that is never empty: a single value or instant gets room around it. */
function padded(min: number, max: number, least: number): [number, number] {
  if (max - min < least) return [min - least / 2, max + least / 2];
  const margin = (max - min) * 0.05;
  return [min - margin, max + margin];
}

function format(value: number, digits: number): string {
  return value.toFixed(Math.min(digits, 6));
}
