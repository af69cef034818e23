// A finding's charts as SVG, drawn by Apache ECharts' server-side SVG renderer: no DOM,
// no canvas, no browser. ECharts escapes the text it writes into the SVG (labels, legend,
// axis names); the tests feed it hostile labels to keep it so.
import { createRequire } from 'node:module';
import type { EChartsOption } from 'echarts';
import type { ChartSpec, LayersChart } from '../engine/probe/types.js';

type EChartsModule = typeof import('echarts');

let echartsModule: EChartsModule | undefined;

/** ECharts' single-file CommonJS build: loads in a fifth of the time of its many ESM files. */
function echarts(): EChartsModule {
  echartsModule ??= createRequire(import.meta.url)('echarts') as EChartsModule;
  return echartsModule;
}

export function echartsVersion(): string {
  return echarts().version;
}


export interface RenderedChart {
  kind: string;
  title: string;
  /** The SVG, or absent when the chart could not be drawn (see `problem`). */
  svg?: string;
  /** Plain text shown under the chart (percentile values, bars left out). */
  caption?: string;
  problem?: string;
}

const WIDTH = 680;
const FONT = '"Liberation Sans", Arial, "DejaVu Sans", sans-serif';
/** Okabe–Ito: told apart by colour-blind readers, and in greyscale print. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#999999', '#F0E442', '#000000'];
const MAX_BARS = 25;
const MAX_SERIES = 12;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const finite = (v: unknown): boolean => Number.isFinite(num(v));
const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

/** 1500 → "1500"; 123456 → "123,456"; 12345678 → "12.3M"; 0.000123 → "0.000123". */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1e7) return `${+(n / 1e6).toPrecision(3)}M`;
  if (Number.isInteger(n)) return abs >= 1e5 ? n.toLocaleString('en-US') : String(n);
  return String(+n.toPrecision(abs >= 1 ? 4 : 3));
}

const withUnit = (n: number, unit: string | undefined) => (unit ? `${formatNumber(n)} ${unit}` : formatNumber(n));

function base(): EChartsOption {
  return {
    animation: false,
    useUTC: true,
    color: PALETTE,
    textStyle: { fontFamily: FONT, fontSize: 12, color: '#1f2937' },
    backgroundColor: 'transparent',
  };
}

function draw(option: EChartsOption, height: number): string {
  const chart = echarts().init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** Renders one chart; a malformed chart (a bundle is data from elsewhere) becomes a `problem`, never a throw. */
export function renderChart(spec: unknown): RenderedChart {
  const chart = (spec ?? {}) as Partial<ChartSpec> & { kind?: unknown };
  const kind = str(chart.kind);
  const title = str(chart.title) || '(untitled chart)';
  try {
    switch (kind) {
      case 'bar':
        return { kind, title, ...barChart(chart as ChartSpec & { kind: 'bar' }) };
      case 'timeseries':
        return { kind, title, ...timeSeries(chart as ChartSpec & { kind: 'timeseries' }) };
      case 'histogram':
        return { kind, title, ...histogram(chart as ChartSpec & { kind: 'histogram' }) };
      case 'layers':
        return { kind, title, ...layers(chart as LayersChart) };
      default:
        return { kind, title, problem: `chart kind "${kind}" is not one this report draws` };
    }
  } catch (err) {
    return { kind, title, problem: `the chart could not be drawn: ${(err as Error).message}` };
  }
}

function barChart(spec: { unit?: string; bars: Array<{ label: string; value: number }> }): Omit<RenderedChart, 'kind' | 'title'> {
  const all = (Array.isArray(spec.bars) ? spec.bars : []).filter((b) => b && finite(b.value));
  if (all.length === 0) return { problem: 'no bars to draw' };
  const bars = all.slice(0, MAX_BARS);
  const unit = str(spec.unit) || undefined;
  const height = 44 + (unit ? 18 : 0) + 26 * bars.length;
  const svg = draw(
    {
      ...base(),
      grid: { left: 8, right: 56, top: 12, bottom: unit ? 26 : 8, containLabel: true },
      xAxis: { type: 'value', name: unit ?? '', nameLocation: 'middle', nameGap: 26, splitNumber: 4 },
      yAxis: {
        type: 'category',
        inverse: true,
        data: bars.map((b) => str(b.label)),
        axisLabel: { width: 260, overflow: 'truncate', interval: 0 },
        axisTick: { show: false },
      },
      series: [
        {
          type: 'bar',
          data: bars.map((b) => num(b.value)),
          barMaxWidth: 18,
          itemStyle: { color: PALETTE[0] },
          label: { show: true, position: 'right', formatter: (p: { value?: unknown }) => formatNumber(num(p.value)) },
        },
      ],
    },
    height,
  );
  const caption = all.length > bars.length ? `The ${all.length - bars.length} smallest of ${all.length} bars are not drawn; the table has them all.` : undefined;
  return { svg, ...(caption ? { caption } : {}) };
}

function timeSeries(spec: { unit?: string; series: Array<{ name: string; points: Array<[number, number]> }> }): Omit<RenderedChart, 'kind' | 'title'> {
  const all = (Array.isArray(spec.series) ? spec.series : [])
    .map((s) => ({ name: str(s?.name), points: (Array.isArray(s?.points) ? s.points : []).filter((p) => Array.isArray(p) && finite(p[0]) && finite(p[1])) }))
    .filter((s) => s.points.length > 0);
  if (all.length === 0) return { problem: 'no points to draw' };
  const series = all.slice(0, MAX_SERIES);
  const unit = str(spec.unit) || undefined;
  const legendRows = series.length > 1 ? Math.ceil(series.length / 3) : 0;
  const height = 250 + legendRows * 22;
  const dense = series.some((s) => s.points.length > 40);
  const svg = draw(
    {
      ...base(),
      grid: { left: 8, right: 44, top: 36, bottom: 12 + legendRows * 22, containLabel: true },
      legend: series.length > 1 ? { bottom: 0, left: 'center', itemWidth: 18, itemHeight: 10, textStyle: { fontSize: 11 } } : { show: false },
      xAxis: { type: 'time', splitNumber: 5 },
      yAxis: { type: 'value', name: unit ?? '', nameTextStyle: { align: 'left' }, splitNumber: 4 },
      series: series.map((s) => ({
        type: 'line',
        name: s.name,
        showSymbol: !dense,
        symbolSize: 5,
        lineStyle: { width: 2 },
        data: s.points.map((p) => [num(p[0]), num(p[1])]),
      })),
    },
    height,
  );
  const caption = `Times in UTC.${all.length > series.length ? ` ${all.length - series.length} more series are not drawn.` : ''}`;
  return { svg, caption };
}

/** "4 µs–8 µs" → a compact bucket label: "4–8 µs". */
function bucketLabel(low: number, high: number, unit: string | undefined): string {
  return `${formatNumber(low)}–${formatNumber(high)}${unit ? ` ${unit}` : ''}`;
}

function histogram(spec: {
  unit?: string;
  buckets: Array<{ low: number; high: number; count: number }>;
  percentiles?: Record<string, number>;
}): Omit<RenderedChart, 'kind' | 'title'> {
  const buckets = (Array.isArray(spec.buckets) ? spec.buckets : []).filter((b) => b && finite(b.low) && finite(b.high) && finite(b.count));
  if (buckets.length === 0) return { problem: 'no buckets to draw' };
  const unit = str(spec.unit) || undefined;
  const labels = buckets.map((b) => bucketLabel(num(b.low), num(b.high), unit));
  const percentiles = Object.entries(spec.percentiles && typeof spec.percentiles === 'object' ? spec.percentiles : {}).filter(
    (e): e is [string, number] => finite(e[1]),
  );
  // A mark per bucket holding percentiles: the percentile is only known to bucket resolution.
  const marks = new Map<number, string[]>();
  for (const [name, value] of percentiles) {
    if (/^max$/i.test(name)) continue;
    // Log2 percentiles are reported as the upper bound of their bucket: (low, high].
    let at = buckets.findIndex((b) => num(value) > num(b.low) && num(value) <= num(b.high));
    if (at < 0) at = num(value) <= num(buckets[0]!.low) ? 0 : buckets.length - 1;
    marks.set(at, [...(marks.get(at) ?? []), name]);
  }
  const markData = [...marks.entries()].map(([index, names]) => ({
    xAxis: index,
    name: names.join(' '),
    label: { formatter: () => names.join(' · ') },
  }));
  const height = 290;
  const svg = draw(
    {
      ...base(),
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      xAxis: {
        type: 'category',
        data: labels,
        axisLabel: { rotate: buckets.length > 6 ? 35 : 0, interval: 0, fontSize: 10 },
        axisTick: { alignWithLabel: true },
      },
      yAxis: { type: 'value', name: 'count', splitNumber: 4 },
      series: [
        {
          type: 'bar',
          data: buckets.map((b) => num(b.count)),
          barCategoryGap: '8%',
          itemStyle: { color: PALETTE[4] },
          markLine: {
            silent: true,
            symbol: 'none',
            lineStyle: { color: PALETTE[5], type: 'dashed', width: 1.5 },
            label: { position: 'end', color: PALETTE[5], fontWeight: 'bold', fontSize: 11 },
            data: markData,
          },
        },
      ],
    },
    height,
  );
  const caption = percentiles.length
    ? `${percentiles.map(([name, value]) => `${name} ${withUnit(num(value), unit)}`).join(', ')} (log2 buckets: a percentile is known to its bucket).`
    : undefined;
  return { svg, ...(caption ? { caption } : {}) };
}

function layers(spec: LayersChart): Omit<RenderedChart, 'kind' | 'title'> {
  const names = (Array.isArray(spec.layers) ? spec.layers : []).map(str).slice(0, MAX_SERIES);
  const rows = (Array.isArray(spec.rows) ? spec.rows : []).filter((r) => r && Array.isArray(r.values)).slice(0, MAX_BARS);
  if (names.length === 0 || rows.length === 0) return { problem: 'no layers to draw' };
  const unit = str(spec.unit) || undefined;
  const totals = rows.map((r) => r.values.slice(0, names.length).reduce((sum: number, v) => sum + (finite(v) ? num(v) : 0), 0));
  const legendRows = Math.ceil(names.length / 4);
  const height = 60 + legendRows * 22 + 34 * rows.length;
  const svg = draw(
    {
      ...base(),
      grid: { left: 8, right: 40, top: 14 + legendRows * 22, bottom: unit ? 26 : 8, containLabel: true },
      legend: { top: 0, left: 'center', itemWidth: 18, itemHeight: 10, textStyle: { fontSize: 11 } },
      xAxis: { type: 'value', name: unit ?? '', nameLocation: 'middle', nameGap: 26, splitNumber: 4 },
      yAxis: { type: 'category', inverse: true, data: rows.map((r) => str(r.label)), axisLabel: { width: 200, overflow: 'truncate', interval: 0 }, axisTick: { show: false } },
      series: names.map((name, i) => ({
        type: 'bar',
        name,
        stack: 'layers',
        barMaxWidth: 22,
        data: rows.map((r) => (finite(r.values[i]) ? num(r.values[i]) : 0)),
        label: {
          show: true,
          color: '#ffffff',
          fontSize: 10,
          // Only segments wide enough to hold their value are labelled.
          formatter: (p: { value?: unknown; dataIndex: number }) => {
            const v = num(p.value);
            const total = totals[p.dataIndex] ?? 0;
            return total > 0 && v / total >= 0.12 ? formatNumber(v) : '';
          },
        },
      })),
    },
    height,
  );
  const caption = rows.map((r, i) => `${str(r.label)}: ${withUnit(totals[i] ?? 0, unit)} in all`).join('; ');
  return { svg, caption };
}
