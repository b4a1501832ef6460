/** The commands of the CLI. Each parses, calls the library, prints. @internal */
import path from 'node:path';
import { Command, Option } from 'commander';
// Only light modules here: the pipelines (DuckDB, Arrow, the backends) load when a command runs,
// so `--version` and `--help` cost little more than Node itself.
import { SAMPLE_DEFAULTS, SEGMENT_NAMES } from '../datasets/sample-defaults.js';
import { BACKEND_NAMES } from '../engine/registry.js';
import { IMPUTES, SCALES, type ImputeKind, type ScaleKind } from '../preprocess/kinds.js';
import type { FitJob } from '../pipeline/fit.js';
import { INIT_NAMES, KMEANS_DEFAULTS, type InitName } from '../models/kmeans.js';
import { DTYPES, type DType } from '../io/dtypes.js';
import { addPseudonymFlags, choiceOption, dtypesOption, floatOption, intOption, listOption, pcaOption, parseMemoryLimitOption, positiveOption } from './options.js';
import { progress, type Bar, type Progress } from './progress.js';
import { parseHalfLife } from '../pipeline/half-life.js';
import { parseKRange } from '../pipeline/k-range.js';
import { BISECTING_STRATEGIES, COVARIANCES, LINKAGES, METHODS, type Method } from '../pipeline/method-names.js';
import type { MethodParams } from '../pipeline/methods.js';

/** sweep's defaults, here so that --help does not load the sweep pipeline (kept equal to SWEEP_DEFAULTS by a test). */
export const SWEEP_SAMPLE = 20000;
export const SWEEP_STABILITY = 5;

interface FitFlags extends Omit<MethodParams, 'categorical'> {
  input: string;
  k?: number | 'auto';
  kRange?: number[];
  stability?: number;
  alignTo?: string;
  warmStart?: string;
  out: string;
  features?: string[];
  exclude?: string[];
  dtypes?: Record<string, DType>;
  coerceInvalid?: boolean;
  id?: string;
  weight?: string;
  scale: ScaleKind;
  impute: ImputeKind;
  maxCategories: number;
  seed: number;
  nInit?: number;
  maxIter?: number;
  tol?: number;
  init: InitName;
  method: Method;
  batchSize: number;
  /** Column names (`--categorical`), not the pipeline's blocks. */
  categorical?: string[];
  pca?: number;
  backend: string;
  format: 'arrow' | 'parquet';
  report?: boolean;
  names?: string;
  resume?: boolean;
  checkpointInterval?: number;
  sensitive?: string[];
  memoryLimit?: number;
  pseudonymizeIds?: boolean;
  pseudonymKeyFile?: string;
}

/**
 * A fit's phases and Lloyd iterations as progress: one bar over restarts × iterations (an upper
 * bound: a restart that converges early moves the bar to the next one's start), with the rows
 * per second of each iteration; json events per phase and per iteration.
 */
function fitProgress(p: Progress): Pick<FitJob, 'onStart' | 'onPhase' | 'onIteration' | 'onBar'> {
  let bar: Bar | null = null;
  // The other long phases (seeding, mini-batch steps, passes over blocks): one bar at a time,
  // json events at most once a second each ('progress', with the phase).
  let other: { phase: string; bar: Bar } | null = null;
  let rows = 0;
  let maxIter = 1;
  let run = -1;
  let it = 0;
  return {
    onStart: (info) => {
      rows = info.rows;
      maxIter = info.maxIter;
      p.event('start', { rows: info.rows, features: info.features, k: info.k, method: info.method, nInit: info.nInit, maxIter: info.maxIter, backend: info.backend });
      bar = p.bar('iteration', info.nInit * info.maxIter, 'it');
    },
    onPhase: (phase, ms) => {
      if (phase === 'fit') bar?.end();
      p.event('phase', { phase, ms });
    },
    onBar: (phase, done, total, unit) => {
      if (other?.phase !== phase) {
        other?.bar.end();
        other = { phase, bar: p.bar(phase, total, unit, { everyMs: 1000, event: 'progress' }) };
      }
      other.bar.tick(done);
      if (done >= total) {
        other.bar.end();
        other = null;
      }
    },
    onIteration: (r, s) => {
      if (r !== run) [run, it] = [r, 0];
      it++;
      const rowsPerSecond = Math.round(rows / Math.max(s.ms / 1000, 1e-9));
      const fields = { restart: r + 1, iteration: it, inertia: s.inertia, changed: s.changed, ms: Number(s.ms.toFixed(3)), rowsPerSecond };
      bar?.tick(r * maxIter + it, { ...fields, text: `restart ${r + 1}, inertia ${s.inertia.toPrecision(6)}, ${s.changed} changed, ${(rowsPerSecond / 1e6).toPrecision(3)} M rows/s` });
    },
  };
}

function quiet(cmd: Command): boolean {
  return Boolean(cmd.optsWithGlobals().quiet);
}

function addFitOptions(cmd: Command, withInput: boolean, { format = true }: { format?: boolean } = {}): Command {
  if (withInput) {
    cmd
      .requiredOption('-i, --input <table>', 'customer table: .arrow/.arrows/.feather (Arrow IPC), .parquet or .csv')
      .option('-k, --k <n|auto>', 'number of segments (every method but dbscan), or auto: the k that `sweep` would recommend over --k-range (the sweep goes into metrics.json)', (v: string) => (v === 'auto' ? 'auto' : intOption('--k', 1)(v)))
      .option('--k-range <range>', 'the k values --k auto tries: a range (2..10) or a list (2,4,8)', (v: string) => parseKRange(v, '--k-range'))
      .option('--stability <r>', 'with --k auto: bootstrap refits per k, the tie-breaker when the indices disagree (0: none)', intOption('--stability', 0, 1000), SWEEP_STABILITY)
      .option('--align-to <dir>', "a previous fit's output: its segment ids carry over to the matching new segments (minimum-cost matching of centroids); new segments get new ids, vanished ones are listed as retired; with --id, transitions.csv counts customers between them")
      .option('--warm-start <dir>', "a previous fit's output: start from its centroids instead of seeding (same --k and features)")
      .requiredOption('-o, --out <dir>', 'output directory (created if missing)')
      .option('--resume', "kmeans: continue from the checkpoint a killed fit of the same input and options left beside --out (the same model, bit for bit, as an uninterrupted run); without one, fit from the start")
      .option('--checkpoint-interval <seconds>', 'kmeans: save the fit\'s state at most this often, after seeding, every 16 Lloyd iterations and after each restart (default 30; 0: at each of those points)', floatOption('--checkpoint-interval', 0));
    cmd.option(
      '--memory-limit <size>',
      "memory budget, e.g. 4GB: a table that would not fit in it in memory is read in blocks (Arrow IPC batches, Parquet and CSV through DuckDB), its scaled rows cached in a file beside the outputs and every pass of the fit read from there (kmeans and minibatch)",
      (v: string) => parseMemoryLimitOption(v),
    );
    addPseudonymFlags(cmd);
  }
  cmd
    .option('--features <a,b,...>', 'feature columns (default: every numeric column except --id and --weight); string columns are one-hot encoded', listOption('--features'))
    .option('--sensitive <a,b,...>', 'columns never used as features, so never in profiles or the report (e.g. age,gender); recorded in model.json', listOption('--sensitive'))
    .option('--exclude <a,b,...>', 'columns never used as features (labels, keys, leakage); labels marked by `segtensor features` and label-like names (churn, churned, label, target) are left out of the default features anyway', listOption('--exclude'))
    .option('--id <col>', 'customer id column, passed through to the assignments (checked for duplicates)')
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')}), applied after reading whatever the format`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type (a stray 'n/a' in a numeric column) as null, counted, instead of failing")
    .option('--weight <col>', 'sample-weight column (e.g. customer value)')
    .addOption(new Option('--scale <kind>', 'feature scaling').choices(SCALES).default('standard').argParser(choiceOption('--scale', SCALES)))
    .addOption(new Option('--impute <kind>', 'fill for missing numeric values, fitted on this table').choices(IMPUTES).default('median').argParser(choiceOption('--impute', IMPUTES)))
    .option('--max-categories <n>', 'one-hot columns per categorical feature at most (rarer values go to __other__)', intOption('--max-categories', 1, 1000), 20)
    .option('--seed <n>', 'random seed; the same seed reproduces a run on a given backend', intOption('--seed', 0, 2 ** 32 - 1), KMEANS_DEFAULTS.seed)
    .option('--n-init <n>', `restarts, each seeded anew; the best wins (default ${KMEANS_DEFAULTS.nInit} for kmeans, minibatch and kprototypes, 1 for gmm and bisecting, as scikit-learn)`, intOption('--n-init', 1, 1000))
    .addOption(
      new Option(
        '--method <name>',
        "kmeans (Lloyd, scikit-learn's KMeans), minibatch (MiniBatchKMeans), gmm (Gaussian mixture, EM), dbscan (density; noise is segment -1), agglomerative (hierarchical, --linkage), bisecting (BisectingKMeans), kprototypes (numbers and categories together)",
      )
        .choices(METHODS)
        .default('kmeans'),
    )
    .option('--batch-size <n>', 'rows per mini-batch step (--method minibatch)', intOption('--batch-size', 1), 1024)
    .addOption(new Option('--covariance <type>', 'gmm: covariance of each component').choices(COVARIANCES).argParser(choiceOption('--covariance', COVARIANCES)))
    .option('--reg-covar <x>', 'gmm: added to the covariance diagonals (default 1e-6)', floatOption('--reg-covar', 0))
    .option('--soft', 'gmm: one probability_<segment> column per segment in the assignments')
    .option('--eps <x|auto>', 'dbscan: neighbourhood radius in scaled units, or auto (the knee of the k-distance curve; default)', (v: string) => (v === 'auto' ? 'auto' : positiveOption('--eps')(v)))
    .option('--min-samples <n>', 'dbscan: rows (summed weights) within --eps, itself included, that make a core point (default 5)', intOption('--min-samples', 1))
    .addOption(new Option('--linkage <kind>', 'agglomerative: merge criterion (default ward)').choices(LINKAGES).argParser(choiceOption('--linkage', LINKAGES)))
    .addOption(new Option('--bisecting-strategy <s>', 'bisecting: which segment to split next (default biggest_inertia)').choices(BISECTING_STRATEGIES).argParser(choiceOption('--bisecting-strategy', BISECTING_STRATEGIES)))
    .option('--categorical <a,b,...>', 'columns to treat as categories even when stored as numbers (one-hot; kprototypes matches them by mode)', listOption('--categorical'))
    .option('--gamma <x>', 'kprototypes: weight of one categorical mismatch against squared scaled distance (default: half the mean standard deviation of the numeric features, Huang)', floatOption('--gamma', 0))
    .option('--pca <n|share>', 'project the scaled features on their first n principal components, or on as many as explain this share of the variance (e.g. 0.95), before segmenting', pcaOption)
    .option('--max-iter <n>', `kmeans: Lloyd iterations per restart at most (default ${KMEANS_DEFAULTS.maxIter}); minibatch: passes over the data at most (default 100); gmm: EM iterations (default 100)`, intOption('--max-iter', 1))
    .option('--tol <x>', `stop when the squared centroid shift is below tol × mean feature variance (default ${KMEANS_DEFAULTS.tol} for kmeans, 0 = off for minibatch, which stops on its smoothed batch inertia)`, floatOption('--tol', 0))
    .addOption(new Option('--init <method>', "seeding: greedy k-means++ (scikit-learn's), k-means|| (a few sampling rounds, for large k), random rows; auto picks k-means|| from k = 32").choices(INIT_NAMES).default('auto').argParser(choiceOption('--init', INIT_NAMES)))
    .addOption(new Option('--backend <name>', 'compute backend; auto picks the fastest usable one (see `segtensor doctor`)').choices(BACKEND_NAMES).default('auto'));
  if (format) cmd.addOption(new Option('--format <fmt>', 'assignments file format').choices(['arrow', 'parquet']).default('arrow'));
  return cmd;
}

async function runFit(flags: FitFlags, isQuiet: boolean, extra: Partial<FitJob> = {}) {
  const p = progress(isQuiet);
  const { fitSegmentation } = await import('../pipeline/fit.js');
  const { profileTable } = await import('../pipeline/profile.js');
  const { categorical, ...rest } = flags;
  const r = await fitSegmentation({
    ...rest,
    categoricalColumns: categorical,
    features: flags.features ?? null,
    log: p.message,
    ...fitProgress(p),
    ...extra,
  });
  p.done();
  p.event('done', { outputs: r.files, inertia: r.metrics.inertia, nIter: r.metrics.nIter, converged: r.metrics.converged, rows: r.metrics.rows, k: r.metrics.k, timingsMs: r.metrics.timingsMs });
  const m = r.metrics;
  console.log(profileTable(r.profile));
  console.log(
    `\ninertia ${m.inertia.toPrecision(7)}, ${m.nIter} iterations (${m.converged ? 'converged' : 'not converged'}), ` +
      `${typeof m.noise === 'number' ? `${m.noise} noise rows, ` : ''}silhouette ${m.silhouette?.toFixed(3) ?? 'n/a'}, Calinski-Harabasz ${m.calinskiHarabasz?.toFixed(1) ?? 'n/a'}, ` +
      `Davies-Bouldin ${m.daviesBouldin?.toFixed(3) ?? 'n/a'}; backend ${m.backend}, fit ${((m.timingsMs.fit ?? 0) / 1000).toFixed(2)} s`,
  );
  console.log(`wrote ${r.files.join(', ')}`);
  return r;
}

export function registerFit(program: Command): void {
  const cmd = program
    .command('fit')
    .description('segment a customer table (K-Means or --method); writes model.json, metrics.json, assignments.arrow|parquet and segments.csv to --out')
    .addHelpText(
      'after',
      '\nExample:\n  segtensor fit --input customers.parquet --k 6 --id customer_id --out out/\n\n' +
        'Outputs (staged and published together: a failed or killed run leaves the earlier run whole):\n' +
        '  model.json        preprocessing, centroids (scaled and original units), parameters\n' +
        '  metrics.json      inertia, nIter, converged, sizes, silhouette, calinskiHarabasz, daviesBouldin, timings\n' +
        '  assignments.*     id, segment, distance (Euclidean, in scaled units); gmm: probability (and probability_<segment> with --soft); dbscan: core\n' +
        '  dendrogram.json   agglomerative: the merges (pairs, heights, sizes) of the tree cut at --k\n' +
        '  segments.csv      count, share and mean of each feature per segment\n' +
        '  transitions.csv   with --align-to and --id: previous_segment, segment, customers (ids in both runs)\n' +
        '  report.html       with --report: the segment report (see `segtensor report --help`)\n' +
        '  manifest.json     run id, options, inputs and outputs with SHA-256, versions, times, counts',
    );
  addReportFlags(addFitOptions(cmd, true)).option('--report', 'also write report.html, the segment report, into --out (published with the run)').action(async (flags: FitFlags, c: Command) => {
    await runFit(flags, quiet(c));
  });
}

/** `--names`, shared by fit, demo and report. */
function addReportFlags(cmd: Command): Command {
  return cmd.option('--names <file>', 'JSON file of segment names, {"<segment id>": "name"}, over the names derived from the profiles (segments.csv, assignments, report)');
}

export function registerReport(program: Command): void {
  const cmd = program
    .command('report')
    .description('one self-contained HTML report of a fit: segment sizes and names, what makes each distinct, a map, profiles, distributions, and churn, transitions and the k sweep when given')
    .requiredOption('--run <dir>', 'a `segtensor fit` output directory (its input table is read again for the sample charts)')
    .option('--churn <scores>', 'a `segtensor churn predict` output (the scores file): churn risk per segment, and calibration when the scored table has the label')
    .option('--sweep <dir>', 'a `segtensor sweep` output directory: the k-sweep curves and the recommended k')
    .option('--sample <n>', 'customers sampled per segment for the map and the distributions', intOption('--sample', 10, 1_000_000), 2000)
    .option('--seed <n>', 'seed of the sample', intOption('--seed', 0, 2 ** 32 - 1), 0)
    .requiredOption('-o, --out <file.html>', 'the HTML file (published whole, with a manifest of what it read, in .<name>.runs beside it)')
    .addHelpText('after', '\nExample:\n  segtensor report --run out/ --churn scores.parquet --sweep sweep/ --out report.html\n\nThe file opens offline in any browser (the chart library, Vega, is inlined).');
  addReportFlags(cmd).action(async (flags: { run: string; churn?: string; sweep?: string; names?: string; sample: number; seed: number; out: string }, c: Command) => {
    const p = progress(quiet(c));
    const { writeReport } = await import('../report/index.js');
    const r = await writeReport({ ...flags, log: p.message });
    p.done();
    for (const n of r.data.notes) p.message(`notice: ${n}`);
    const names = r.data.segments.map((s) => `${s.segment === -1 ? 'noise' : s.segment}: ${s.name}`).join('; ');
    console.log(`segments: ${names}`);
    console.log(`wrote ${r.files.join(', ')} (${(r.bytes / 1e6).toFixed(2)} MB)`);
    p.event('done', { outputs: r.files, bytes: r.bytes });
  });
}

export function registerSweep(program: Command): void {
  const cmd = program
    .command('sweep')
    .description('fit K-Means for each k of a range and recommend one: inertia, silhouette, Calinski-Harabasz, Davies-Bouldin and bootstrap stability per k; writes sweep.csv and sweep.json to --out')
    .requiredOption('-i, --input <table>', 'customer table: .arrow/.arrows/.feather (Arrow IPC), .parquet or .csv')
    .requiredOption('-k, --k <range>', 'the k values: a range (2..12) or a list (2,4,8), each >= 2', (v: string) => parseKRange(v, '--k'))
    .requiredOption('-o, --out <dir>', 'output directory (created if missing)')
    .option('--sample <n>', 'rows sampled (seeded) for the silhouette; exact below it', intOption('--sample', 2), SWEEP_SAMPLE)
    .option('--stability <r>', 'bootstrap refits per k for stability_ari and min_jaccard (0: none)', intOption('--stability', 0, 1000), SWEEP_STABILITY)
    .option('--memory-limit <size>', 'memory budget, e.g. 4GB: a table that would not fit in it in memory is read in blocks, its scaled rows cached in a file beside the outputs and every fit read from there (kmeans and minibatch)', (v: string) => parseMemoryLimitOption(v))
    .addHelpText(
      'after',
      '\nExample:\n  segtensor sweep --input customers.parquet --k 2..12 --id customer_id --out sweep/\n\n' +
        'Outputs (published together):\n' +
        '  sweep.csv    k, inertia, silhouette, calinski_harabasz, davies_bouldin, stability_ari, min_jaccard\n' +
        '  sweep.json   the same per k (with iterations and seconds), recommendedK, and the rule and reason that chose it\n' +
        '  manifest.json\n\n' +
        'The recommended k is the one most of silhouette (highest), Calinski-Harabasz (highest) and Davies-Bouldin\n' +
        '(lowest) prefer; when all three disagree, the most stable of their choices. It is flagged as not clear when\n' +
        'the indices disagree, when it sits at an end of the range, or when the best silhouette is below 0.25.',
    );
  addFitOptions(cmd, false, { format: false }).action(async (flags: Omit<FitFlags, 'k' | 'format'> & { k: number[]; sample: number; stability: number; memoryLimit?: number }, c: Command) => {
    const p = progress(quiet(c));
    const { sweepSegmentation } = await import('../pipeline/sweep.js');
    const { k: ks, categorical, ...rest } = flags;
    const r = await sweepSegmentation({
      ...rest,
      categoricalColumns: categorical,
      ks,
      features: flags.features ?? null,
      log: p.message,
      onProgress: (line, row) => (row ? p.step(line) : p.live(line)),
    });
    p.done();
    const cell = (v: number | null, digits: number) => (v === null ? 'n/a' : v.toFixed(digits));
    const head = ['k', 'inertia', 'silhouette', 'calinski_harabasz', 'davies_bouldin', 'stability_ari', 'min_jaccard'];
    const body = r.rows.map((x) => [String(x.k), x.inertia.toPrecision(6), cell(x.silhouette, 3), cell(x.calinski_harabasz, 1), cell(x.davies_bouldin, 3), cell(x.stability_ari, 3), cell(x.min_jaccard, 3)]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    for (const line of [head, ...body]) console.log(line.map((v, i) => v.padStart(widths[i])).join('  '));
    const rec = r.recommendation;
    console.log(`\nrecommended k = ${rec.k}${rec.clear ? '' : ' (not clear: check the curves)'}: ${rec.reason}`);
    console.log(`wrote ${r.files.join(', ')}`);
    p.event('done', { outputs: r.files, recommendedK: rec.k });
  });
}

export function registerUpdate(program: Command): void {
  const cmd = program
    .command('update')
    .description("move a saved model's segments toward new customers without a refit (mini-batch partial_fit steps, the model's preprocessing kept); writes a full model directory to --out")
    .requiredOption('-m, --model <dir>', 'directory written by `segtensor fit` or `segtensor update`')
    .requiredOption('-i, --input <table>', 'the new rows (.arrow/.arrows/.feather, .parquet, .csv), with the model\'s feature columns')
    .requiredOption('-o, --out <dir>', 'output directory: model.json, metrics.json, assignments.*, segments.csv, manifest.json')
    .option('--id <col>', "id column (default: the model's, when present in the input)")
    .option('--weight <col>', 'sample-weight column')
    .option('--batch-size <n>', 'rows per partial_fit step, in table order', intOption('--batch-size', 1), 1024)
    .option('--half-life <n|Nd>', 'let older rows fade: counts halve every n rows, or every N days since the model was made (e.g. 500000 or 30d)', (v: string) => parseHalfLife(v))
    .option('--reassignment-ratio <x>', "centres whose count falls below this share of the largest move to a random new row (scikit-learn's; 0 keeps every centre)", floatOption('--reassignment-ratio', 0), 0.01)
    .option('--seed <n>', 'seed of the random reassignments', intOption('--seed', 0, 2 ** 32 - 1), 0)
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('auto'))
    .addOption(new Option('--format <fmt>', 'assignments file format').choices(['arrow', 'parquet']).default('arrow'))
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')})`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type as null, counted, instead of failing")
    .option('--memory-limit <size>', 'memory budget, e.g. 4GB: new rows that would not fit in it in memory are read in batches, stepped through and scored from a float32 cache (assignments .arrow)', (v: string) => parseMemoryLimitOption(v));
  addPseudonymFlags(cmd)
    .action(async (flags: { model: string; input: string; out: string; id?: string; weight?: string; batchSize: number; memoryLimit?: number; pseudonymizeIds?: boolean; pseudonymKeyFile?: string; halfLife?: { rows: number } | { days: number }; reassignmentRatio: number; seed: number; backend: string; format: 'arrow' | 'parquet'; dtypes?: Record<string, DType>; coerceInvalid?: boolean }, c: Command) => {
      const { updateModel } = await import('../pipeline/update.js');
      // Its lines (what moved, the half-life) are shown off a terminal too, but for --quiet.
      const p = progress(quiet(c));
      const r = await updateModel({ ...flags, log: (l) => p.message(l, !quiet(c)) });
      p.event('done', { outputs: r.files, rows: r.sizes.reduce((a, b) => a + b, 0) });
      console.log(`updated ${r.model.k} segments; inertia on the new rows ${r.inertia.toPrecision(7)}; segment sizes ${r.sizes.join(', ')}; wrote ${r.files.join(', ')}`);
    });
}

export function registerPredict(program: Command): void {
  const cmd = program
    .command('predict')
    .description("assign customers to a fitted model's segments, with the model's own preprocessing")
    .requiredOption('-m, --model <dir>', 'directory written by `segtensor fit` (or its model.json)')
    .requiredOption('-i, --input <table>', 'customer table (.arrow/.arrows/.feather, .parquet, .csv)')
    .requiredOption('-o, --out <file>', 'output table; format by extension (.arrow, .parquet, .csv): id, segment, distance')
    .option('--id <col>', "id column (default: the model's, when present in the input)")
    .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('auto'))
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')}), applied after reading whatever the format`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type (a stray 'n/a' in a numeric column) as null, counted, instead of failing");
  cmd.option('--memory-limit <size>', 'memory budget, e.g. 4GB: a table that would not fit in it in memory is read, scored and written in batches (output .arrow)', (v: string) => parseMemoryLimitOption(v));
  addPseudonymFlags(cmd)
    .action(async (flags: { model: string; input: string; out: string; id?: string; backend: string; memoryLimit?: number; pseudonymizeIds?: boolean; pseudonymKeyFile?: string; dtypes?: Record<string, DType>; coerceInvalid?: boolean }, c: Command) => {
      const { predictSegments } = await import('../pipeline/predict.js');
      const p = progress(quiet(c));
      const r = await predictSegments({ ...flags, log: (l) => p.message(l, !quiet(c)) });
      p.event('done', { outputs: r.files, rows: r.rows });
      const sizes = r.segmentIds.every((id, j) => id === j) ? r.sizes.join(', ') : r.sizes.map((n, j) => `${r.segmentIds[j]}: ${n}`).join(', ');
      console.log(`assigned ${r.rows} rows; segment sizes ${sizes}; wrote ${r.files.join(', ')}`);
    });
}

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    // Thousands separators by hand: toLocaleString loads ICU's locale data, ~20 ms of every
    // command's start-up, for one help line.
    .description(`generate the bundled sample (${String(SAMPLE_DEFAULTS.customers).replace(/\B(?=(\d{3})+$)/g, ',')} customers, 5 known segments) and segment it`)
    .option('--dir <dir>', 'where the sample and the outputs go', 'demo-output')
    .option('--customers <n>', 'sample size', intOption('--customers', 10), SAMPLE_DEFAULTS.customers);
  addReportFlags(addFitOptions(cmd, false)).action(async (flags: FitFlags & { dir: string; customers: number }, c: Command) => {
    const dir = flags.dir;
    const { writeSample } = await import('../datasets/sample.js');
    const sample = writeSample(path.join(dir, 'sample'), { customers: flags.customers, seed: SAMPLE_DEFAULTS.seed });
    console.log(`sample: ${sample.customers} (${flags.customers} customers; true segments in ${sample.truth})`);
    const r = await runFit(
      { ...flags, input: sample.customers, k: 5, out: path.join(dir, 'out'), id: flags.id ?? 'customer_id', scale: flags.scale, report: true },
      quiet(c),
    );
    // The sample knows its segments: say how well they were recovered (rows are in the same order).
    const assignments = r.files.find((f) => /assignments\./.test(path.basename(f)))!;
    const { readTable } = await import('../io/read-table.js');
    const { adjustedRandIndex } = await import('../eval/agreement.js');
    const found = (await readTable(assignments)).numeric('segment');
    const truth = (await readTable(sample.truth)).numeric('segment');
    console.log(`agreement with the ${SEGMENT_NAMES.length} true segments (${SEGMENT_NAMES.join(', ')}): adjusted Rand index ${adjustedRandIndex(found, truth).toFixed(3)}`);
    console.log(`report: ${path.join(dir, 'out', 'report.html')} (open it in a browser)`);
  });
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('list every compute backend, whether it is usable here, and why not')
    .action(async () => {
      await import('../engine/backends/index.js');
      const { probeBackends } = await import('../engine/registry.js');
      for (const b of await probeBackends()) console.log(`${b.usable ? 'ok ' : 'no '} ${b.name.padEnd(10)} ${b.detail}`);
    });
}
