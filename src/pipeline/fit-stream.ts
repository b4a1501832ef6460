/**
 * `fit --memory-limit` on a table larger than memory (issue 17, out-of-core): the table is read
 * as a stream of batches (Arrow IPC record batches, Parquet and CSV through DuckDB), never whole.
 *
 * 1. The preprocessing is fitted over streaming passes (src/preprocess/streaming.ts: the resident
 *    fit's statistics, exact medians included).
 * 2. One more pass writes the scaled rows to a float32 cache file in the run's staging directory,
 *    read back one block at a time (src/io/matrix-cache.ts): every seeding and Lloyd pass reads
 *    the cache, never the table again.
 * 3. K-Means runs on the blocks (src/engine/streaming.ts), its checkpoints as in memory; mini-batch
 *    K-Means gathers each step's random rows from the cache and streams its last assignment.
 * 4. The metrics come from the cache (dispersion in two passes, the silhouette on a seeded sample
 *    of rows read from it); a last pass over the table writes the assignments batch by batch
 *    (ids, pseudonymised when asked) and sums the profile.
 *
 * Memory: one batch of the table, one block of the cache, and per row the labels, distances,
 * weights and k-means++ distances (about 16 bytes; 24 with k-means++'s running sums), against
 * 8 bytes per cell for a resident table plus 4 for its matrix. `--k auto` runs the sweep over
 * the cache and fits the chosen k again; `--warm-start` starts from a previous model's centroids.
 * `--align-to` numbers the segments after the previous model's and counts transitions by id in
 * hash buckets (./transitions-blocks.ts). Text features are one-hot encoded as in memory, their
 * categories counted in the first pass (src/preprocess/streaming.ts). Options that need the whole
 * table (--pca, the report, --dtypes, Parquet assignments, methods other than kmeans and
 * minibatch) are refused with a one-line error.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChunkedMatrix } from '../core/matrix.js';
import type { Backend } from '../engine/backend.js';
import { SegtensorError } from '../errors.js';
import { dispersionChunked, calinskiHarabasz, daviesBouldinOn, sampleRows, silhouette } from '../eval/metrics.js';
import { atomicWrite } from '../io/atomic.js';
import { asTextColumns, readTableBatches } from '../io/read-table.js';
import type { beginRun } from '../io/run-dir.js';
import { readLabelColumns } from '../io/table-meta.js';
import type { ColumnTable } from '../io/table.js';
import { ArrowBatchWriter } from '../io/write-table.js';
import { MatrixCacheWriter } from '../io/matrix-cache.js';
import { KMeans, type InitName, type KMeansResult } from '../models/kmeans.js';
import { AUTO_K_RANGE, parseKRange } from './k-range.js';
import { MiniBatchKMeans, MINIBATCH_DEFAULTS } from '../models/minibatch.js';
import { fitStreaming } from '../preprocess/streaming.js';
import { PREPROCESS_DEFAULTS, type Preprocessor } from '../preprocess/preprocessor.js';
import { segmentNames, readNamesFile } from '../report/naming.js';
import type { PseudonymKey } from '../util/pseudonym.js';
import { modelHead, type FitJob, type FitMetrics, type FitResult, type ProgressHook } from './fit.js';
import { idOrder, type ModelFile } from './model-file.js';
import { LABEL_LIKE, weightColumn } from './prepare.js';
import { profileCsv, ProfileSums, type SegmentProfile } from './profile.js';
import { IdCheck, idColumn, pseudonymizeIds } from './ids.js';
import { BLOCK_ROWS, TextColumnsCheck } from './blocks.js';
import { TransitionBuckets } from './transitions-blocks.js';
import { fitsBlocks, methodOptions, seedingProgress } from './methods.js';

/** Refuses what the streaming fit (and sweep) does not do yet, naming the option. */
export function checkStreamingJob(job: Partial<FitJob>): void {
  const refuse = (what: string) => {
    throw new SegtensorError('BAD_OPTION', `--memory-limit: ${what} is not supported on a table read in blocks yet; fit without --memory-limit (in memory)`);
  };
  if (!fitsBlocks(job.method ?? 'kmeans')) refuse(`--method ${job.method}`);
  if (job.pca != null) refuse('--pca');
  if (job.report) refuse('--report');
  if ((job.format ?? 'arrow') !== 'arrow') refuse('--format parquet');
  if (job.dtypes && Object.keys(job.dtypes).length) refuse('--dtypes');
}

/** Σ weights per label. */
function weightsOf(labels: Int32Array, weights: Float32Array, k: number): number[] {
  const out = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) out[labels[i]] += weights[i];
  return out;
}

/** What a table read in blocks becomes: its scaled rows in a cache file, and what was fitted on the way. */
export interface CachedTable {
  /** The scaled rows, read back block by block; `close()` it, then remove `file`. */
  x: ChunkedMatrix & { close(): void };
  file: string;
  weights: Float32Array | null;
  pre: Preprocessor;
  /** The input columns used as features, in the order given. */
  features: string[];
  exclude: string[];
  nRows: number;
  /** A fresh stream of the table's batches (--categorical's columns as text). */
  batches: () => AsyncGenerator<ColumnTable>;
  /** Per text feature with values beyond --max-categories: distinct values, kept, rows in __other__. */
  otherCategories: Record<string, { distinct: number; kept: number; rows: number }>;
  /** Set by {@link closeCache}. */
  closed?: boolean;
}

/**
 * Steps 1 and 2 of the module comment, shared by fit and sweep: the feature columns chosen as the
 * resident fit chooses them (numeric only), the preprocessing fitted over streaming passes, the
 * ids checked and the scaled rows written to a float32 cache in the run's staging directory.
 */
export async function cacheTable(
  run: ReturnType<typeof beginRun>,
  job: Pick<FitJob, 'input' | 'id' | 'weight' | 'exclude' | 'sensitive' | 'features' | 'scale' | 'impute' | 'categoricalColumns' | 'maxCategories'>,
  log: (l: string) => void,
  pseudonymKey: PseudonymKey | null,
  /** Called once the schema is read and the features chosen, before the passes. */
  onRead: () => void = () => {},
  onBar?: ProgressHook,
): Promise<CachedTable> {
  const raw = () => readTableBatches(job.input, '--input', BLOCK_ROWS);
  // The first batch for the schema; the stream is closed at once (an open one keeps reading).
  const peek = raw();
  const firstRaw = (await peek.next()).value as ColumnTable | undefined;
  await peek.return(undefined);
  if (!firstRaw) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
  // --categorical reads its columns as text whatever their storage, as in memory: each batch's.
  const named = job.categoricalColumns ?? [];
  for (const c of named) firstRaw.column(c); // MISSING_COLUMN naming the file
  const asText = named.filter((c) => firstRaw.column(c).type !== 'string');
  const batches = asText.length
    ? async function* () {
        for await (const b of raw()) yield asTextColumns(b, asText);
      }
    : raw;
  const first = asTextColumns(firstRaw, asText);
  run.input(job.input);
  const labelsMarked = await readLabelColumns(job.input);
  const exclude = [job.id, job.weight, ...(job.exclude ?? []), ...(job.sensitive ?? [])].filter((c): c is string => !!c);
  for (const c of [...exclude, ...(job.features ?? [])]) first.column(c); // MISSING_COLUMN naming the file
  let features = job.features ?? null;
  if (!features) {
    // The numeric columns, then --categorical's (the resident fit's default features).
    features = [];
    for (const c of first.columns) {
      if (exclude.includes(c.name) || named.includes(c.name) || !(c.type === 'number' || c.type === 'bigint')) continue;
      if (labelsMarked.includes(c.name) || LABEL_LIKE.test(c.name)) {
        exclude.push(c.name);
        log(`warning: column '${c.name}' looks like a label; left out of the features (name it in --features to cluster on it, or --exclude to silence this)`);
        continue;
      }
      features.push(c.name);
    }
    features.push(...named.filter((c) => !features!.includes(c)));
  }
  if (!features.length) throw new SegtensorError('BAD_INPUT', `${job.input}: no numeric feature columns (columns: ${first.names.join(', ')})`);
  // Numbers are scaled, text is one-hot encoded (its categories counted in the first pass).
  const numericFeatures: string[] = [];
  const textFeatures: string[] = [];
  for (const f of features) {
    const c = first.column(f);
    if (c.type === 'number' || c.type === 'bigint') numericFeatures.push(f);
    else if (c.type === 'string') textFeatures.push(f);
    else throw new SegtensorError('NON_NUMERIC_COLUMN', `${job.input}: column '${f}' is ${c.type === 'other' ? c.typeName : c.type}, neither numeric nor categorical`);
  }
  onRead();

  // The ids are checked in the first pass, before the fit and the other passes (the values named
  // only when they will not be pseudonymised).
  const idCheck = new IdCheck(job.input, job.id ?? null, !pseudonymKey);
  // Text holding numbers: the id, the weight and the features as named, or any column but the
  // excluded ones when the features are the default (in memory it would become one).
  const read = new Set([job.id, job.weight, ...(job.features ?? [])].filter((c): c is string => !!c));
  // --categorical's columns are text as declared (in memory too): not counted.
  const left = new Set([...(job.exclude ?? []), ...(job.sensitive ?? []), ...named]);
  const text = new TextColumnsCheck(job.input, (name) => !named.includes(name) && (job.features ? read.has(name) : read.has(name) || !left.has(name)));
  const types = numericFeatures.map((f) => (first.column(f).type === 'bigint' ? 'bigint' : 'number'));
  const { pre, nRows, beyond } = await fitStreaming(batches, {
    features: numericFeatures,
    types,
    categorical: textFeatures,
    maxCategories: job.maxCategories ?? PREPROCESS_DEFAULTS.maxCategories,
    order: features,
    scale: job.scale ?? PREPROCESS_DEFAULTS.scale,
    impute: job.impute ?? PREPROCESS_DEFAULTS.impute,
    path: job.input,
    onRows: onBar ? (pass, rows, total) => onBar(`preprocess pass ${pass}`, rows, total, 'rows') : undefined,
    firstPass: {
      batch: (b, row0) => {
        idCheck.add(b, row0);
        text.add(b);
      },
      end: () => {
        idCheck.finish(log);
        text.finish();
      },
    },
  });
  // Values beyond --max-categories share one column: say how many, as in memory.
  const otherCategories: Record<string, { distinct: number; kept: number; rows: number }> = {};
  for (const s of pre.state.categorical) {
    if (!s.rare?.length) continue;
    const { distinct, rows } = beyond(s.name, s.categories);
    otherCategories[s.name] = { distinct, kept: s.categories.length, rows };
    log(`notice: column '${s.name}': ${distinct} distinct values; the ${s.categories.length} most frequent are one-hot columns, the other ${distinct - s.categories.length} (${rows} rows) go to ${s.name}=__other__ (--max-categories ${s.categories.length})`);
  }
  const d = pre.featureNames.length;
  // The cache lives in the staging directory: removed with it on failure, never published.
  const file = path.join(run.staging, '.rows.f32');
  const writer = new MatrixCacheWriter(file, d);
  const weights = job.weight ? new Float32Array(nRows) : null;
  let row = 0;
  try {
    for await (const b of batches()) {
      writer.append(pre.transform(b).data);
      if (weights) weights.set(weightColumn(b, job.weight!, row, job.input), row);
      row += b.nRows;
      onBar?.('cache', row, nRows, 'rows');
    }
  } catch (e) {
    writer.abort();
    throw e;
  }
  return { x: writer.finish(BLOCK_ROWS), file, weights, pre, features, exclude, nRows, batches, otherCategories };
}

/** Closes a cached table's file and removes it; twice is harmless. */
export function closeCache(c: CachedTable): void {
  if (!c.closed) {
    c.x.close();
    c.closed = true;
  }
  fs.rmSync(c.file, { force: true });
}

/** The fit of ./fit.ts on a table read in batches; the same outputs (see the module comment). */
export async function fitStreamingInto(
  run: ReturnType<typeof beginRun>,
  job: FitJob,
  be: Backend,
  log: (l: string) => void,
  lap: (name: string) => void,
  t: Record<string, number>,
  pseudonymKey: PseudonymKey | null,
  checkpointsFor: (x: { nRows: number; nFeatures: number }) => Promise<import('./checkpoint.js').CheckpointStore>,
): Promise<FitResult> {
  const { x, file: cacheFile, weights, pre, exclude, nRows, batches, otherCategories } = await cacheTable(run, job, log, pseudonymKey, () => lap('read'), job.onBar);
  const d = pre.featureNames.length;
  try {
    lap('preprocess');
    const method: 'kmeans' | 'minibatch' = job.method === 'minibatch' ? 'minibatch' : 'kmeans';
    const o = methodOptions(job, method);
    const batchSize = job.batchSize ?? MINIBATCH_DEFAULTS.batchSize;
    // --k auto: the sweep's rule over the cached rows (./sweep.ts), as in memory; the chosen k is
    // then fitted again with the same options and seed (the same fit the sweep made: deterministic),
    // rather than every k's labels being kept through the sweep.
    let sweep: FitMetrics['sweep'] = null;
    let k: number;
    if (job.k === 'auto') {
      const ks = job.kRange ?? parseKRange(AUTO_K_RANGE);
      log(`${nRows} rows × ${d} features, k chosen among ${ks.join(', ')}, backend ${be.name}, read in blocks of ${BLOCK_ROWS} rows (--memory-limit)`);
      const { sweepMatrix, recommendK, SWEEP_DEFAULTS } = await import('./sweep.js');
      const so = { ...o, ks, method, params: {}, batchSize, sample: job.silhouetteSample ?? SWEEP_DEFAULTS.sample, stability: job.stability ?? SWEEP_DEFAULTS.stability };
      const swept = await sweepMatrix(be, x, weights, so, (line, row) => row && log(line));
      const rec = recommendK(swept.rows);
      k = rec.k;
      sweep = { rows: swept.rows, recommendation: rec, stability: so.stability };
      log(`k = ${k}${rec.clear ? '' : ' (not clear: check the sweep in metrics.json)'}: ${rec.reason}`);
    } else {
      k = job.k as number;
      log(`${nRows} rows × ${d} features, k = ${k}, backend ${be.name}, read in blocks of ${BLOCK_ROWS} rows (--memory-limit)`);
    }
    // --warm-start: the previous model's centroids, in this fit's scaled units.
    let init: InitName | Float32Array = o.init;
    if (job.warmStart) init = await (await import('./align.js')).warmStartFrom(job.warmStart, pre, k, run, log);
    job.onStart?.({ rows: nRows, features: d, k, method, nInit: o.nInit, maxIter: o.maxIter, backend: be.name });
    let r: KMeansResult;
    // The method's own parameters and the counts `update` continues from (mini-batch's).
    let params: Record<string, unknown> = {};
    let centreCounts: Float64Array | null = null;
    if (method === 'minibatch') {
      // Each step gathers its batch's rows from the cache; the last assignment streams it.
      const onStep = job.onBar ? (done: number, total: number) => job.onBar!('steps', done, total, 'steps') : undefined;
      const mb = await new MiniBatchKMeans({ k, batchSize, maxIter: o.maxIter, tol: o.tol, nInit: o.nInit, seed: o.seed, onStep, init: init instanceof Float32Array ? init : 'k-means++' }).fit(be, x, weights);
      r = mb;
      params = { batchSize, nSteps: mb.nSteps };
      centreCounts = mb.counts;
    } else {
      const checkpoints = await checkpointsFor(x);
      r = await new KMeans({ k, seed: o.seed, nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, init, onIteration: job.onIteration, onSeeding: seedingProgress(job.onBar), checkpoints }).fit(be, x, weights);
      run.count({ checkpoint: { resumedFrom: checkpoints.resumedFrom, written: checkpoints.written } });
    }
    t.init = Math.round(r.ms.init);
    t.lloyd = Math.round(r.ms.lloyd);
    lap('fit');

    // --align-to: segment ids after the previous model's (./align.ts), as in memory. Centroid
    // rows, sizes and profile rows go in ascending id order; `row[j]` is centroid j's row there.
    let idOf = Array.from({ length: k }, (_, j) => j);
    let nextSegmentId = k;
    let alignment: FitMetrics['alignment'] = null;
    let prevRun: Awaited<ReturnType<typeof import('./align.js').previousModel>> | null = null;
    if (job.alignTo) {
      const { previousModel, alignCentroids, alignedLine } = await import('./align.js');
      prevRun = await previousModel(job.alignTo, '--align-to', pre.featureNames);
      run.input(prevRun.run.file('model.json'));
      const al = alignCentroids(prevRun.model, prevRun.run, pre, r.centroids, k);
      ({ idOf, nextSegmentId } = al);
      alignment = al.report;
      log(alignedLine(prevRun.run.dir, al.report));
    }
    const { order, rowOf, segmentIds, plainIds } = idOrder(idOf);

    const sizes = new Array<number>(k).fill(0);
    for (let i = 0; i < r.labels.length; i++) sizes[r.labels[i]]++;
    const sampleSize = Math.min(job.silhouetteSample ?? 20000, nRows);
    // With --k auto the sweep scored this very fit on the same sample.
    const swept = sweep?.rows.find((row) => row.k === k);
    let quality: { silhouette: number | null; calinskiHarabasz: number | null; daviesBouldin: number | null };
    if (swept) quality = { silhouette: swept.silhouette, calinskiHarabasz: swept.calinski_harabasz, daviesBouldin: swept.davies_bouldin };
    else {
      const disp = dispersionChunked(x, r.labels, k);
      quality = {
        silhouette: await silhouette(be, x, r.labels, k, sampleRows(nRows, sampleSize, o.seed)),
        calinskiHarabasz: calinskiHarabasz(x, r.labels, k, disp),
        daviesBouldin: await daviesBouldinOn(be, x, r.labels, k, disp),
      };
    }
    const metrics: FitMetrics = {
      method,
      inertia: r.inertia,
      nIter: r.nIter,
      converged: r.converged,
      k,
      rows: nRows,
      features: d,
      sizes: order.map((j) => sizes[j]),
      segmentIds,
      silhouette: quality.silhouette,
      silhouetteSampleSize: sampleSize,
      calinskiHarabasz: quality.calinskiHarabasz,
      daviesBouldin: quality.daviesBouldin,
      runs: r.runs,
      emptyClustersRepaired: r.history.reduce((s, h) => s + h.emptyClusters, 0),
      outOfCore: { blockRows: BLOCK_ROWS, cacheBytes: nRows * d * 4 },
      backend: be.name,
      timingsMs: t,
      sweep,
      alignment,
    };
    lap('metrics');

    // The last passes: the profile's sums (numbers in input units, categories as shares: the
    // resident profile's additions, ./profile.ts ProfileSums), then the assignments batch by
    // batch. Names need the profile, and the assignments carry names, so the sums come first.
    const sums = new ProfileSums(pre, k);
    let at = 0;
    for await (const b of batches()) {
      const n = b.nRows;
      sums.add(b, pre.transform(b), r.labels.subarray(at, at + n));
      at += n;
      job.onBar?.('profile', at, nRows, 'rows');
    }
    const byLabel = sums.result();
    const profile: SegmentProfile = { columns: byLabel.columns, rows: order.map((j, p) => ({ ...byLabel.rows[j], segment: segmentIds[p] })) };
    const names = segmentNames(profile, job.names ? readNamesFile(job.names, profile.rows.map((p) => p.segment)) : {});
    if (job.names) run.input(job.names);
    if (alignment && !job.id) log('notice: --align-to without --id: customers cannot be followed between runs, so no transitions.csv');
    // transitions.csv: this run's (id, segment) pairs go to hash buckets as they are written, and
    // each bucket is joined with the previous run's on its own (./transitions-blocks.ts): about
    // 100 bytes per previous customer in a bucket, a quarter of the budget at most.
    const prevRows = prevRun?.model.input?.rows ?? nRows;
    const buckets =
      prevRun && alignment && job.id
        ? new TransitionBuckets(path.join(run.staging, '.transitions'), Math.max(1, Math.ceil((prevRows * 100) / ((job.memoryLimit ?? 2 ** 30) / 4))))
        : null;
    const out = new ArrowBatchWriter(run.file('assignments.arrow'));
    try {
      at = 0;
      for await (const b of batches()) {
        const n = b.nRows;
        pseudonymizeIds(b, job.id ?? null, pseudonymKey);
        const idCol = idColumn(b, job.id ?? null, false, at);
        const labels = r.labels.subarray(at, at + n);
        // Plain loops: a typed array's map with a function costs ~0.2 s per million rows.
        const segment = new Int32Array(n);
        const nameRow = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          segment[i] = idOf[labels[i]];
          nameRow[i] = rowOf[labels[i]];
        }
        const dist = new Float32Array(n);
        for (let i = 0; i < n; i++) dist[i] = Math.sqrt(r.distances[at + i]);
        out.write([idCol, { name: 'segment', values: segment }, { name: 'distance', values: dist }, { name: 'segment_name', values: nameRow, dictionary: names }]);
        buckets?.add(idCol.values, segment);
        at += n;
        job.onBar?.('write', at, nRows, 'rows');
      }
      await out.close();
    } catch (e) {
      await out.abort();
      await buckets?.abort();
      throw e;
    }
    if (buckets && prevRun && alignment) {
      const tr = await buckets.finish(prevRun.model, prevRun.run);
      alignment.transitions = tr.counts;
      atomicWrite(run.file('transitions.csv'), tr.csv);
      if (tr.counts.customersInBoth === 0) log(`warning: no customer id of this run appears in ${prevRun.run.dir}'s assignments; transitions.csv is empty`);
    }

    const centroids = plainIds ? r.centroids : Float32Array.from(order.flatMap((j) => Array.from(r.centroids.subarray(j * d, (j + 1) * d))));
    const rowsOf = (c: Float32Array) => Array.from({ length: k }, (_, j) => Array.from(c.subarray(j * d, (j + 1) * d)));
    const counts = centreCounts ? Array.from(centreCounts) : weights ? weightsOf(r.labels, weights, k) : sizes.slice();
    const model: ModelFile = {
      ...modelHead(job, pre, nRows, exclude, pseudonymKey),
      k,
      centroidsScaled: rowsOf(centroids),
      centroidsOriginal: pre.inverse(centroids, k),
      params: { nInit: o.nInit, maxIter: o.maxIter, tol: o.tol, seed: o.seed, init: r.init, method, ...params, ...(sweep ? { k: 'auto', kRange: sweep.rows.map((row) => row.k) } : {}) },
      backend: be.name,
      seed: o.seed,
      ...(plainIds && !alignment ? {} : { segmentIds }),
      nextSegmentId,
      centreCounts: order.map((j) => counts[j]),
    };
    atomicWrite(run.file('segments.csv'), profileCsv(profile, names));
    atomicWrite(run.file('metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    atomicWrite(run.file('model.json'), JSON.stringify(model, null, 2) + '\n');
    run.backend(be.name, be.fallback);
    run.count({ rowsRead: nRows, rowsAssigned: nRows, features: d, excluded: exclude, outOfCore: true, otherCategories, missing: Object.fromEntries(pre.state.numeric.filter((s) => s.missing > 0).map((s) => [s.name, s.missing])) });
    lap('write');
    return { model, metrics, profile, files: [], coercions: {} };
  } finally {
    x.close();
    fs.rmSync(cacheFile, { force: true });
  }
}
