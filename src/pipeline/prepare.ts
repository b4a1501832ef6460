/**
 * The input of `fit` and `sweep`, read and preprocessed: labels kept out of the default
 * features, the preprocessing fitted, the matrix built, ids and weights checked.
 */
import type { Matrix } from '../core/matrix.js';
import { dataRow, SegtensorError } from '../errors.js';
import { coercionNotices, readTable } from '../io/read-table.js';
import type { ColumnTable } from '../io/table.js';
import { readLabelColumns } from '../io/table-meta.js';
import type { OutColumn } from '../io/write-table.js';
import { PREPROCESS_DEFAULTS, Preprocessor } from '../preprocess/preprocessor.js';
import type { FitJob } from './fit.js';
import type { PseudonymKey } from '../util/pseudonym.js';
import { idColumn, pseudonymizeIds } from './ids.js';

/** Names that usually hold a label: kept out of default features (with a warning). */
export const LABEL_LIKE = /^(is_?)?(churn|churned|label|target)(_?(flag|label))?$/i;

/** The input read and preprocessed as `fit` does it, for `fit` and `sweep`. */
export interface PreparedFeatures {
  table: ColumnTable;
  pre: Preprocessor;
  x: Matrix;
  ids: OutColumn;
  /** Columns kept out of the features: the id, the weight, --exclude, marked and label-like columns. */
  exclude: string[];
  weights: Float32Array | null;
  otherCategories: Record<string, { distinct: number; kept: number; rows: number }>;
}

/** What {@link prepareFeatures} needs of a job: the input and preprocessing options of `fit`. */
export type FeatureJob = Pick<FitJob, 'input' | 'features' | 'exclude' | 'id' | 'dtypes' | 'coerceInvalid' | 'weight' | 'scale' | 'impute' | 'maxCategories' | 'categoricalColumns' | 'sensitive'>;

/**
 * `--sensitive` columns: they must exist, and never be asked for as features, categories, the id
 * or the weight (a conflict is a BAD_OPTION rather than a silent choice). Returns them.
 */
function checkSensitive(job: FeatureJob, table: ColumnTable): string[] {
  const sensitive = job.sensitive ?? [];
  for (const c of sensitive) {
    table.column(c); // MISSING_COLUMN naming the file
    const clash = job.features?.includes(c) ? '--features' : job.categoricalColumns?.includes(c) ? '--categorical' : c === job.id ? '--id' : c === job.weight ? '--weight' : null;
    if (clash === '--id') throw new SegtensorError('BAD_OPTION', `--sensitive ${c} is the --id column; ids pass through to the outputs: replace them with --pseudonymize-ids instead`);
    if (clash) throw new SegtensorError('BAD_OPTION', `--sensitive ${c} is also named in ${clash}; sensitive columns are kept out of the features: drop it from one of them`);
  }
  return sensitive;
}

/**
 * Reads `job.input` (recorded in `run`'s manifest), leaves labels out of the default features
 * (with notices), fits the preprocessing and builds the matrix; checks the ids and weights.
 */
export async function prepareFeatures(
  job: FeatureJob,
  run: { input(file: string): void },
  log: (l: string) => void,
  onRead: () => void = () => {},
  { withText = false, pseudonymKey = null }: { withText?: boolean; pseudonymKey?: PseudonymKey | null } = {},
): Promise<PreparedFeatures> {
  log(`reading ${job.input}`);
  // --categorical reads its columns as text, so they are categories whatever their storage.
  const dtypes = { ...(job.dtypes ?? {}) };
  for (const c of job.categoricalColumns ?? []) {
    if (dtypes[c] && dtypes[c] !== 'string') throw new SegtensorError('BAD_OPTION', `--categorical ${c} and --dtypes ${c}:${dtypes[c]} disagree`);
    dtypes[c] = 'string';
  }
  const table = await readTable(job.input, '--input', { dtypes: Object.keys(dtypes).length ? dtypes : undefined, coerceInvalid: job.coerceInvalid });
  for (const c of job.categoricalColumns ?? []) table.column(c); // MISSING_COLUMN naming the file
  for (const l of coercionNotices(table)) log(l);
  if (table.nRows === 0) throw new SegtensorError('EMPTY_TABLE', `${job.input}: the table has no rows`);
  onRead();
  run.input(job.input);
  pseudonymizeIds(table, job.id ?? null, pseudonymKey);
  const ids = idColumn(table, job.id ?? null, true);
  for (const c of job.exclude ?? []) table.column(c); // MISSING_COLUMN naming the file
  const sensitive = checkSensitive(job, table);
  const labels = await readLabelColumns(job.input);
  const exclude = [job.id, job.weight, ...(job.exclude ?? []), ...sensitive].filter((c): c is string => !!c);
  if (job.features) {
    for (const f of job.features) {
      if (labels.includes(f)) log(`warning: feature '${f}' is marked as a label in ${job.input}'s metadata; clustering on it as --features asks`);
    }
  } else {
    // Marked labels are recorded whatever their type; label-like names matter where they would be
    // default features (numbers).
    const candidates = table.columns.filter((c) => !exclude.includes(c.name) && (labels.includes(c.name) || c.type === 'number' || c.type === 'bigint'));
    for (const name of candidates.map((c) => c.name)) {
      if (labels.includes(name)) {
        exclude.push(name);
        log(`notice: column '${name}' is marked as a label in ${job.input}'s metadata; left out of the features`);
      } else if (LABEL_LIKE.test(name)) {
        exclude.push(name);
        log(`warning: column '${name}' looks like a label; left out of the features (name it in --features to cluster on it, or --exclude to silence this)`);
      }
    }
  }
  // Default features are the numeric columns; --categorical adds its columns, and a method that
  // matches categories (withText: kprototypes) adds the text columns that look like categories.
  let features = job.features ?? null;
  const named = job.categoricalColumns ?? [];
  if (!features && (named.length || withText)) {
    const text: string[] = [];
    if (withText) {
      for (const c of table.columns) {
        if (c.type !== 'string' || exclude.includes(c.name) || named.includes(c.name)) continue;
        if (LABEL_LIKE.test(c.name) || labels.includes(c.name)) {
          exclude.push(c.name);
          log(`warning: column '${c.name}' looks like a label; left out of the features (name it in --features to cluster on it, or --exclude to silence this)`);
          continue;
        }
        const distinct = new Set(c.values).size;
        if (distinct > Math.max(1000, c.values.length / 2)) {
          log(`notice: text column '${c.name}' has ${distinct} distinct values: an identifier, not a category; left out of the features`);
          continue;
        }
        text.push(c.name);
      }
    }
    const numeric = table.columns.filter((c) => (c.type === 'number' || c.type === 'bigint') && !exclude.includes(c.name) && !named.includes(c.name)).map((c) => c.name);
    features = [...numeric, ...named, ...text];
  }
  const { pre, matrix: x } = Preprocessor.fitTransform(table, {
    features,
    exclude,
    scale: job.scale ?? PREPROCESS_DEFAULTS.scale,
    impute: job.impute ?? PREPROCESS_DEFAULTS.impute,
    maxCategories: job.maxCategories ?? PREPROCESS_DEFAULTS.maxCategories,
  });
  // Values beyond --max-categories share one column: say how many, and count them in the manifest.
  const otherCategories: Record<string, { distinct: number; kept: number; rows: number }> = {};
  for (const s of pre.state.categorical) {
    if (!s.rare?.length) continue;
    const kept = new Set(s.categories);
    const c = table.column(s.name);
    if (c.type !== 'string') continue;
    const values = c.values;
    const distinct = new Set(values).size - (values.includes(null) ? 1 : 0);
    let rows = 0;
    for (const v of values) if (v !== null && !kept.has(v)) rows++;
    otherCategories[s.name] = { distinct, kept: s.categories.length, rows };
    log(`notice: column '${s.name}': ${distinct} distinct values; the ${s.categories.length} most frequent are one-hot columns, the other ${distinct - s.categories.length} (${rows} rows) go to ${s.name}=__other__ (--max-categories ${s.categories.length})`);
  }
  if (!job.features) {
    // Legal but almost always a mistake: an identifier clustered as if it were a measurement.
    for (const name of pre.state.numeric.map((n) => n.name)) {
      if (/(^|[_\s-])id$/i.test(name) || /[a-z]Id$/.test(name)) {
        log(`warning: feature column '${name}' looks like an identifier; pass --id ${name} to pass it through, or list --features`);
      }
    }
  }
  const weights = job.weight ? weightColumn(table, job.weight, 0, job.input) : null;
  return { table, pre, x, ids, exclude, weights, otherCategories };
}

/**
 * The weight column `name` of `t` (a whole table, or a batch whose first row is data row
 * `firstRow` + 1) as float32: every weight finite and >= 0, else a BAD_INPUT naming the file,
 * column and row. Nulls are NaN, so refused too.
 */
export function weightColumn(t: ColumnTable, name: string, firstRow: number, file: string): Float32Array {
  const w = t.numeric(name);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    if (!(w[i] >= 0) || !Number.isFinite(w[i])) throw new SegtensorError('BAD_INPUT', `${file}: weight column '${name}' ${dataRow(firstRow + i)} is ${w[i]}; weights must be finite and >= 0`);
    out[i] = w[i];
  }
  return out;
}
