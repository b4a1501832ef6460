/**
 * `segtensor report` as a library call, and the report of a fit in memory (`fit --report`).
 *
 * The report reads runs and draws; it computes nothing on an accelerator (its sample projection
 * runs on a CPU backend; see ./sample.ts). One self-contained HTML file: see ./html.ts.
 *
 * @example
 * const r = await writeReport({ run: 'out/', churn: 'scores.parquet', sweep: 'sweep/', out: 'report.html' });
 * console.log(r.files[0], r.bytes);
 */
import os from 'node:os';
import { SegtensorError } from '../errors.js';
import { atomicWrite } from '../io/atomic.js';
import { beginRun } from '../io/run-dir.js';
import { VERSION } from '../version.js';
import { sourceFromRuns, type RunsJob } from './collect.js';
import { buildReportData, type ReportData, type ReportSource } from './data.js';
import { renderReport } from './html.js';

export { chartSpecs, compileCharts, renderReport } from './html.js';
export { buildReportData, type ReportData, type ReportSource } from './data.js';
export { sourceFromRuns, type RunsJob } from './collect.js';
export * from './naming.js';

export interface ReportJob extends RunsJob {
  /** The HTML file to write (`.html`). */
  out: string;
  log?: (line: string) => void;
}

export interface ReportResult {
  files: string[];
  /** Size of the HTML file. */
  bytes: number;
  data: ReportData;
}

/** The HTML of a report and the data it shows; `log` hears Vega-Lite's warnings about the charts, as `warning:` lines. */
export async function reportHtml(src: ReportSource, log: (line: string) => void = () => {}): Promise<{ html: string; data: ReportData }> {
  const data = await buildReportData(src);
  return { html: renderReport(data, (w) => log(`warning: ${w}`)), data };
}

/** The versions a report made in this process records. @internal */
export function hereVersions(): { segtensor: string; node: string; platform: string } {
  return { segtensor: VERSION, node: process.version, platform: `${os.platform()}-${os.arch()}` };
}

/**
 * Reads a fit run (and optionally churn scores and a sweep), and publishes the report at `out`
 * as a run of its own (file layout: `out` is a link into `.<name>.runs/`, with a manifest of the
 * files it read).
 */
export async function writeReport(job: ReportJob): Promise<ReportResult> {
  if (!/\.html?$/i.test(job.out)) throw new SegtensorError('BAD_OPTION', `--out must name an .html file; got '${job.out}'`);
  const log = job.log ?? (() => {});
  const run = beginRun({ command: 'report', out: job.out, layout: 'file', options: job });
  try {
    const src = await sourceFromRuns(job, (f) => run.input(f), log);
    const { html, data } = await reportHtml(src, log);
    atomicWrite(run.primary, html);
    const bytes = Buffer.byteLength(html);
    run.count({ segments: data.segments.length, sampleRows: data.sample?.size ?? 0, bytes });
    const { files } = await run.commit();
    return { files, bytes, data };
  } finally {
    run.dispose();
  }
}
