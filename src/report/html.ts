/**
 * The report as one self-contained HTML file: text and tables rendered here, charts as
 * Vega-Lite specs compiled here to Vega specs and drawn in the page by Vega, whose browser bundle
 * is inlined, so the file opens offline and loads nothing.
 *
 * Why Vega-Lite rather than Observable Plot or hand-written SVG:
 * - a chart is a declarative spec, plain JSON data built here and checked by the tests, not
 *   code that runs in the page;
 * - it renders SVG whose marks carry their spec's name (`<g class="... sizes_marks">`), so a
 *   browser test can count bars, cells and box plots per chart (and a canvas chart's marks in
 *   the view's scenegraph);
 * - Vega ships one minified UMD bundle (520 KB) that inlines as is, with no further fetches
 *   (no fonts, no schema downloads);
 * - vega and vega-lite are BSD-3-Clause.
 *
 * The specs are compiled with vega-lite here, not in the page: inlining vega-lite and vega-embed
 * as well (310 KB more to parse) and compiling in the browser made a 1,000,000-customer report
 * open about a quarter slower (2.2–2.9 s against 1.6–2.1 s, cold Chromium on the shared 2-core
 * VM with another job running), against the issue's 2 s.
 *
 * The page records when its charts are drawn (`window.__report.drawnMs`, ms from navigation
 * start) for the browser test and the load-time measurement.
 *
 * @example
 * fs.writeFileSync('report.html', renderReport(await buildReportData(src)));
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { compile } from 'vega-lite';
import { formatNumber, formatShare, NOISE_SEGMENT } from './naming.js';
import type { ReportData } from './data.js';

const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** 20 distinct colours (Tableau 10, then its lighter companions); noise is grey. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#a0cbe8', '#ffbe7d', '#ff9d9a', '#86bcb6', '#8cd17d', '#f1ce63', '#d4a6c8', '#fabfd2', '#d7b5a6', '#79706e'];
const NOISE_COLOUR = '#b0b0b0';

/**
 * One chart of the page: its id (the container is `#chart-<id>`), a Vega-Lite spec, and how it is
 * drawn: SVG, except the map's thousands of points, which go to a canvas (one element instead of
 * one per point: the difference between a page that opens in a second and one that takes several).
 */
export interface ChartSpec {
  id: string;
  spec: Record<string, unknown>;
  renderer: 'svg' | 'canvas';
}

const bundles = new Map<string, string>();

/** The minified browser bundle of a package, read once. @internal */
export function bundle(pkg: 'vega'): string {
  let text = bundles.get(pkg);
  if (!text) {
    const require = createRequire(import.meta.url);
    // Each package's entry lives in its build/ folder, beside the minified UMD bundle.
    const file = path.join(path.dirname(require.resolve(pkg)), `${pkg}.min.js`);
    text = fs.readFileSync(file, 'utf8').replaceAll('</script', '<\\/script');
    bundles.set(pkg, text);
  }
  return text;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** The colour scale every chart shares: segment labels in id order. */
function colourScale(d: ReportData) {
  let i = 0;
  return {
    domain: d.segments.map((s) => s.label),
    range: d.segments.map((s) => (s.segment === NOISE_SEGMENT ? NOISE_COLOUR : PALETTE[i++ % PALETTE.length])),
  };
}

/** The Vega-Lite specs of the report's charts, in page order. Pure: the tests read them. */
export function chartSpecs(d: ReportData): ChartSpec[] {
  const colour = colourScale(d);
  const labels = d.segments.map((s) => s.label);
  const segY = { field: 'label', type: 'nominal', sort: labels, title: null, axis: { labelLimit: 260 } };
  const segColour = { field: 'label', type: 'nominal', scale: colour, legend: null };
  const base = { $schema: VL_SCHEMA, config: { view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 } } };
  const charts: ChartSpec[] = [];

  charts.push({
    id: 'sizes',
    renderer: 'svg',
    spec: {
      ...base,
      name: 'sizes',
      width: 480,
      height: { step: 24 },
      data: { values: d.segments.map((s) => ({ label: s.label, customers: s.count, share: s.share })) },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: segY,
        x: { field: 'customers', type: 'quantitative', title: 'customers' },
        color: segColour,
        tooltip: [{ field: 'label', title: 'segment' }, { field: 'customers', format: ',' }, { field: 'share', format: '.1%' }],
      },
    },
  });

  if (d.money) {
    charts.push({
      id: 'revenue',
      renderer: 'svg',
      spec: {
        ...base,
        name: 'revenue',
        width: 480,
        height: { step: 24 },
        data: { values: d.segments.filter((s) => s.revenueShare !== null).flatMap((s) => [{ label: s.label, share: s.revenueShare }]) },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: segY,
          x: { field: 'share', type: 'quantitative', title: `share of total ${d.money}`, axis: { format: '%' } },
          color: segColour,
          tooltip: [{ field: 'label', title: 'segment' }, { field: 'share', format: '.1%', title: `share of ${d.money}` }],
        },
      },
    });
  }

  if (d.sample) {
    const [e1, e2] = d.sample.explained.map((e) => `${(100 * e).toFixed(1)} %`);
    charts.push({
      id: 'scatter',
      renderer: 'canvas',
      spec: {
        ...base,
        name: 'scatter',
        width: 560,
        height: 420,
        // Filled in the page from the compact arrays (see the page script).
        data: { name: 'points' },
        // No ARIA description per point: formatting 16,000 of them cost about 0.2 s of the page's load.
        mark: { type: 'point', filled: true, size: 10, opacity: 0.55, aria: false },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: `first principal component (${e1} of the variance)`, scale: { zero: false } },
          y: { field: 'y', type: 'quantitative', title: `second principal component (${e2})`, scale: { zero: false } },
          color: { field: 'label', type: 'nominal', scale: colour, title: 'segment', legend: { labelLimit: 260, symbolOpacity: 1 } },
        },
      },
    });
  }

  const hm = d.heatmap;
  charts.push({
    id: 'heatmap',
    renderer: 'svg',
    spec: {
      ...base,
      name: 'heatmap',
      width: { step: Math.max(18, Math.min(48, Math.floor(720 / Math.max(1, hm.columns.length)))) },
      height: { step: 26 },
      data: { values: hm.cells },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: { field: 'feature', type: 'nominal', sort: hm.columns, title: null, axis: { labelAngle: -40, labelLimit: 160 } },
        y: segY,
        color: { field: 'z', type: 'quantitative', title: 'standardised mean', scale: { scheme: 'redblue', reverse: true, domainMid: 0, domain: [-2.5, 2.5], clamp: true } },
        tooltip: [{ field: 'label', title: 'segment' }, { field: 'feature' }, { field: 'mean', title: 'segment mean', format: ',.4~g' }, { field: 'z', title: 'standardised', format: '.2f' }],
      },
    },
  });

  if (d.boxes && d.boxes.length) {
    const byFeature = d.boxFeatures.map((f, i) => {
      const values = d.boxes!.filter((b) => b.feature === f).map((b) => ({ ...b, label: d.segments.find((s) => s.segment === b.segment)?.label ?? String(b.segment) }));
      const x = { type: 'quantitative', title: f, scale: { zero: false } };
      return {
        width: 300,
        height: { step: 20 },
        data: { values },
        encoding: { y: segY },
        layer: [
          { name: `box_whisker_${i}`, mark: { type: 'rule' }, encoding: { x: { field: 'lo', ...x }, x2: { field: 'hi' } } },
          {
            name: `box_iqr_${i}`,
            mark: { type: 'bar', size: 12, tooltip: true },
            encoding: {
              x: { field: 'q1', ...x },
              x2: { field: 'q3' },
              color: segColour,
              tooltip: [{ field: 'label', title: 'segment' }, ...['lo', 'q1', 'median', 'q3', 'hi'].map((k) => ({ field: k, type: 'quantitative', format: ',.4~g' }))],
            },
          },
          { name: `box_median_${i}`, mark: { type: 'tick', color: 'black', size: 12, thickness: 2 }, encoding: { x: { field: 'median', ...x } } },
        ],
      };
    });
    charts.push({ id: 'distributions', renderer: 'svg', spec: { ...base, columns: 2, concat: byFeature } });
  }

  if (d.churn) {
    const c = d.churn;
    const lab = (s: number) => d.segments.find((x) => x.segment === s)?.label ?? String(s);
    charts.push({
      id: 'churn',
      renderer: 'svg',
      spec: {
        ...base,
        // Segments colour the left chart, risk bands the right: two colour scales.
        resolve: { scale: { color: 'independent' } },
        hconcat: [
          {
            name: 'churn_mean',
            width: 300,
            height: { step: 24 },
            data: { values: c.perSegment.map((r) => ({ label: lab(r.segment), p: r.meanProbability, customers: r.customers })) },
            mark: { type: 'bar', tooltip: true },
            encoding: {
              y: segY,
              x: { field: 'p', type: 'quantitative', title: 'mean P(churn)', axis: { format: '%' } },
              color: segColour,
              tooltip: [{ field: 'label', title: 'segment' }, { field: 'p', title: 'mean P(churn)', format: '.1%' }, { field: 'customers', format: ',' }],
            },
          },
          {
            name: 'churn_bands',
            width: 300,
            height: { step: 24 },
            data: { values: c.perSegment.flatMap((r) => c.bandNames.map((b, i) => ({ label: lab(r.segment), band: b, order: i, customers: r.bands[i], share: r.bands[i] / r.customers })).filter((x) => x.customers > 0)) },
            mark: { type: 'bar', tooltip: true },
            encoding: {
              y: { ...segY, axis: null },
              x: { field: 'share', type: 'quantitative', stack: 'normalize', title: 'customers by risk band', axis: { format: '%' } },
              color: { field: 'band', type: 'nominal', sort: c.bandNames, scale: { domain: c.bandNames, scheme: 'orangered' }, title: 'risk band' },
              order: { field: 'order' },
              tooltip: [{ field: 'label', title: 'segment' }, { field: 'band' }, { field: 'customers', format: ',' }, { field: 'share', format: '.1%' }],
            },
          },
        ],
      },
    });
    if (c.calibration) {
      const bins = c.calibration.filter((b) => b.count > 0);
      const px = { field: 'predicted', type: 'quantitative', title: 'mean predicted P(churn)', scale: { domain: [0, 1] } };
      const py = { field: 'observed', type: 'quantitative', title: 'observed churn rate', scale: { domain: [0, 1] } };
      charts.push({
        id: 'calibration',
        renderer: 'svg',
        spec: {
          ...base,
          width: 360,
          height: 300,
          data: { values: bins.map((b) => ({ predicted: b.meanPredicted, observed: b.observedRate, count: b.count, bin: `${b.lo.toFixed(1)}–${b.hi.toFixed(1)}` })) },
          layer: [
            { name: 'calibration_diagonal', data: { values: [{ predicted: 0, observed: 0 }, { predicted: 1, observed: 1 }] }, mark: { type: 'line', strokeDash: [4, 4], color: '#888' }, encoding: { x: px, y: py } },
            { name: 'calibration_line', mark: { type: 'line', color: '#e15759' }, encoding: { x: px, y: py } },
            { name: 'calibration_points', mark: { type: 'point', filled: true, color: '#e15759', tooltip: true }, encoding: { x: px, y: py, size: { field: 'count', type: 'quantitative', title: 'customers' }, tooltip: [{ field: 'bin' }, { field: 'predicted', format: '.3f' }, { field: 'observed', format: '.3f' }, { field: 'count', format: ',' }] } },
          ],
        },
      });
    }
  }

  if (d.transitions && d.transitions.rows.length) {
    const t = d.transitions;
    const current = d.segments.filter((s) => s.segment !== NOISE_SEGMENT).map((s) => s.label);
    const lab = (s: number) => d.segments.find((x) => x.segment === s)?.label ?? String(s);
    const prev = [...new Set(t.rows.map((r) => r.from))].sort((a, b) => a - b).map((s) => (s === NOISE_SEGMENT ? 'noise' : `previous ${s}`));
    charts.push({
      id: 'transitions',
      renderer: 'svg',
      spec: {
        ...base,
        width: { step: 64 },
        height: { step: 30 },
        data: { values: t.rows.map((r) => ({ from: r.from === NOISE_SEGMENT ? 'noise' : `previous ${r.from}`, to: lab(r.to), customers: r.customers })) },
        encoding: {
          x: { field: 'to', type: 'nominal', sort: current, title: 'segment in this run', axis: { labelAngle: -30, labelLimit: 180 } },
          y: { field: 'from', type: 'nominal', sort: prev, title: 'segment in the previous run' },
        },
        layer: [
          { name: 'transitions', mark: { type: 'rect', tooltip: true }, encoding: { color: { field: 'customers', type: 'quantitative', scale: { scheme: 'blues', type: 'sqrt' }, title: 'customers' }, tooltip: [{ field: 'from' }, { field: 'to' }, { field: 'customers', format: ',' }] } },
          { name: 'transitions_text', mark: { type: 'text', fontSize: 10 }, encoding: { text: { field: 'customers', type: 'quantitative', format: ',' }, color: { condition: { test: `datum.customers > ${Math.max(...t.rows.map((r) => r.customers)) / 3}`, value: 'white' }, value: 'black' } } },
        ],
      },
    });
  }

  if (d.sweep) {
    const s = d.sweep;
    const metrics: [keyof (typeof s.rows)[number], string][] = [
      ['silhouette', 'silhouette (higher is better)'],
      ['calinski_harabasz', 'Calinski-Harabasz (higher is better)'],
      ['davies_bouldin', 'Davies-Bouldin (lower is better)'],
      ['inertia', 'inertia (look for the elbow)'],
    ];
    const kX = { field: 'k', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, scale: { zero: false } };
    const valueY = { field: 'value', type: 'quantitative', title: null, scale: { zero: false } };
    charts.push({
      id: 'sweep',
      renderer: 'svg',
      spec: {
        ...base,
        columns: 2,
        concat: metrics.map(([m, title], i) => ({
          width: 280,
          height: 180,
          title: { text: title, fontSize: 12 },
          data: { values: s.rows.filter((r) => typeof r[m] === 'number' && Number.isFinite(r[m] as number)).map((r) => ({ k: r.k, value: r[m] })) },
          layer: [
            { name: `sweep_line_${i}`, mark: { type: 'line', color: '#4e79a7' }, encoding: { x: kX, y: valueY } },
            { name: `sweep_points_${i}`, mark: { type: 'point', filled: true, color: '#4e79a7', tooltip: true }, encoding: { x: kX, y: valueY, tooltip: [{ field: 'k' }, { field: 'value', format: ',.4~g', title: m }] } },
            { name: `sweep_rec_${i}`, data: { values: [{ k: s.recommendedK }] }, mark: { type: 'rule', color: '#e15759', strokeWidth: 2, strokeDash: [5, 3] }, encoding: { x: kX } },
          ],
        })),
      },
    });
  }
  return charts;
}

function table(head: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function chartDiv(id: string): string {
  return `<div class="chart" id="chart-${id}" data-chart="${id}"></div>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa}
header{background:#24323f;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#c9d3dc}
nav{padding:8px 32px;background:#eef1f4;border-bottom:1px solid #dde3e8;font-size:13px}nav a{margin-right:14px;color:#24323f}
main{padding:8px 32px 40px;max-width:1200px}section{margin:22px 0;padding:16px 20px;background:#fff;border:1px solid #e3e7eb;border-radius:6px}
h2{font-size:17px;margin:0 0 8px}p.note{color:#555;font-size:13px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{border-bottom:1px solid #e6e9ec;padding:4px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.chart{margin:6px 0}ul.distinct li{margin:4px 0}pre{background:#f4f6f8;padding:8px;overflow:auto;font-size:12px}
.pair{display:flex;flex-wrap:wrap;gap:24px}`;

/**
 * Vega specs of the charts, compiled from their Vega-Lite specs. Vega-Lite's warnings (a spec
 * mistake: conflicting scales, a field that is not there) go to `warn`.
 */
export function compileCharts(charts: ChartSpec[], warn: (line: string) => void = () => {}): { id: string; renderer: ChartSpec['renderer']; vega: object }[] {
  return charts.map((c) => {
    const say = (level: string) => (...args: unknown[]) => warn(`report chart '${c.id}': Vega-Lite ${level}: ${args.map(String).join(' ')}`);
    let lv = 2;
    const logger = {
      level(l?: number) {
        if (l === undefined) return lv;
        lv = l;
        return logger;
      },
      error: (...a: unknown[]) => (say('error')(...a), logger),
      warn: (...a: unknown[]) => (say('warning')(...a), logger),
      info: () => logger,
      debug: () => logger,
    };
    return { id: c.id, renderer: c.renderer, vega: compile(c.spec as never, { logger: logger as never }).spec };
  });
}

/** The page: the report as HTML, with Vega's bundle and the compiled specs inlined. `warn` hears Vega-Lite's warnings. */
export function renderReport(d: ReportData, warn: (line: string) => void = () => {}): string {
  const charts = chartSpecs(d);
  const has = (id: string) => charts.some((c) => c.id === id);
  const colour = colourScale(d);
  const swatch = (label: string) => `<span class="swatch" style="background:${colour.range[colour.domain.indexOf(label)]}"></span>`;
  const sections: string[] = [];
  const nav: [string, string][] = [];
  const section = (id: string, title: string, body: string) => {
    nav.push([id, title]);
    sections.push(`<section id="${id}"><h2>${esc(title)}</h2>${body}</section>`);
  };

  const segHead = ['segment', 'name', 'customers', 'share', ...(d.money ? [`share of ${d.money}`] : [])];
  const segRows = d.segments.map((s) => [
    `${swatch(s.label)}${s.segment === NOISE_SEGMENT ? 'noise' : s.segment}`,
    esc(s.name),
    `<span class="num">${s.count.toLocaleString('en-US')}</span>`,
    formatShare(s.share),
    ...(d.money ? [s.revenueShare === null ? 'n/a' : formatShare(s.revenueShare)] : []),
  ]);
  section(
    'segments',
    'Segments',
    `<p class="note">${esc(d.nameRule)}</p>${table(segHead, segRows)}<div class="pair">${chartDiv('sizes')}${has('revenue') ? chartDiv('revenue') : ''}</div>` +
      (d.money ? `<p class="note">Share of ${esc(d.money)}: each segment's customers × its mean ${esc(d.money)}, over the total.</p>` : ''),
  );
  section('distinct', 'What makes each segment distinct', `<p class="note">Each segment's top features by standardised difference from the rest of the customers (segment mean − mean of the others, in ${esc(d.spreadBasis)}).</p><ul class="distinct">${d.segments.map((s) => `<li>${esc(s.description)}</li>`).join('')}</ul>`);
  if (d.sample) {
    section('map', 'Map of the customers', `<p class="note">A seeded sample of ${d.sample.size.toLocaleString('en-US')} customers (at most ${d.sample.perSegment.toLocaleString('en-US')} per segment, seed ${d.sample.seed}), scaled as the model scales them and projected on their first two principal components.</p>${chartDiv('scatter')}`);
  }
  section('profiles', 'Profiles', `<p class="note">Mean of each feature per segment, as the difference from all customers' mean in ${esc(d.heatmap.basis)}: red above, blue below.</p>${chartDiv('heatmap')}`);
  if (has('distributions')) {
    section('distributions', 'Distributions', `<p class="note">The ${d.boxFeatures.length} features that separate the segments most (largest share of variance between segments), per segment, from the sample: box from the first to the third quartile, black tick at the median, whiskers to the furthest values within 1.5 box lengths (values beyond are not drawn).</p>${chartDiv('distributions')}`);
  }
  if (d.churn) {
    const c = d.churn;
    const rows = c.perSegment.map((r) => [esc(d.segments.find((s) => s.segment === r.segment)?.label ?? String(r.segment)), r.customers.toLocaleString('en-US'), `${(100 * r.meanProbability).toFixed(1)} %`, formatNumber(r.customers * r.meanProbability), ...r.bands.map((b) => b.toLocaleString('en-US'))]);
    section(
      'churn',
      'Churn risk',
      `<p class="note">Scores from ${esc(c.source)}: mean probability of churn per segment, and customers by risk band.</p>${chartDiv('churn')}${table(['segment', 'customers', 'mean P(churn)', 'expected churners', ...c.bandNames], rows)}` +
        (c.calibration ? `<h2>Calibration</h2><p class="note">Predicted against observed churn in 10 bins of predicted probability (${esc(c.calibrationNote)}); on the dashed diagonal the probabilities are exact.</p>${chartDiv('calibration')}` : `<p class="note">No calibration plot: ${esc(c.calibrationNote)}.</p>`),
    );
  }
  if (d.transitions) {
    const t = d.transitions;
    const counts = t.counts ? `${t.counts.customersInBoth.toLocaleString('en-US')} customers in both runs, ${t.counts.onlyPrevious.toLocaleString('en-US')} only in the previous one, ${t.counts.onlyCurrent.toLocaleString('en-US')} only in this one.` : '';
    section('transitions', 'Transitions from the previous run', t.rows.length ? `<p class="note">Customers (by id) from each segment of the previous run to each of this run. ${counts}</p>${chartDiv('transitions')}` : `<p class="note">No customer id of this run appears in the previous run. ${counts}</p>`);
  }
  if (d.sweep) {
    const s = d.sweep;
    section('sweep', 'Choosing k', `<p class="note">From ${esc(s.source)}. Recommended k = ${s.recommendedK}${s.clear ? '' : ' (not clear: check the curves)'}: ${esc(s.reason)} The dashed red line marks it.</p>${chartDiv('sweep')}`);
  }
  const timings = Object.entries(d.timingsMs).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ');
  section('run', 'Run', table(['', ''], [...d.meta, { label: 'timings', value: timings }].map((m) => [esc(m.label), esc(m.value)]), 'meta') + `<p class="note">Parameters</p><pre>${esc(JSON.stringify(d.parameters, null, 1))}</pre>`);
  if (d.notes.length) section('notes', 'Notes', `<ul>${d.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);

  const points = d.sample ? { x: d.sample.points.map((p) => p.x), y: d.sample.points.map((p) => p.y), s: d.sample.points.map((p) => p.s) } : null;
  const payload = { charts: compileCharts(charts, warn), points, labels: Object.fromEntries(d.segments.map((s) => [s.segment, s.label])) };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="segtensor">
<title>${esc(d.title)}</title>
<style>${STYLE}</style>
<script>${bundle('vega')}</script>
</head>
<body>
<header><h1>${esc(d.title)}</h1><p>${d.segments.filter((s) => s.segment !== NOISE_SEGMENT).length} segments of ${d.segments.reduce((a, s) => a + s.count, 0).toLocaleString('en-US')} customers · generated ${esc(d.generatedAt)} by segtensor</p></header>
<nav>${nav.map(([id, t]) => `<a href="#${id}">${esc(t)}</a>`).join('')}</nav>
<main>
${sections.join('\n')}
<p class="note">Charts made with Vega-Lite and drawn with Vega (BSD-3-Clause), inlined in this file.</p>
</main>
<script type="application/json" id="report-data">${scriptJson(payload)}</script>
<script>
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  // The map's points travel as columns; Vega wants rows, in the data set the spec names 'points'.
  var rows = null;
  if (data.points) {
    var p = data.points;
    rows = new Array(p.x.length);
    for (var i = 0; i < rows.length; i++) rows[i] = { x: p.x[i], y: p.y[i], label: data.labels[p.s[i]] };
  }
  window.__report = { ready: false, views: {}, scriptMs: performance.now(), chartMs: {} };
  var jobs = data.charts.map(function (c) {
    (c.vega.data || []).forEach(function (d) { if (d.name === 'points' && rows) d.values = rows; });
    var view = new vega.View(vega.parse(c.vega), { renderer: c.renderer, container: '#chart-' + c.id, hover: true });
    window.__report.views[c.id] = view;
    return view.runAsync().then(function () { window.__report.chartMs[c.id] = performance.now(); });
  });
  Promise.all(jobs).then(function () {
    window.__report.drawnMs = performance.now();
    window.__report.ready = true;
    document.documentElement.setAttribute('data-charts', 'drawn');
  }, function (e) {
    console.error('segtensor report: a chart failed to draw: ' + (e && e.message ? e.message : e));
  });
})();
</script>
</body>
</html>
`;
}
