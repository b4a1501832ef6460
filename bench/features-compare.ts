/**
 * Compares two `segtensor features` outputs row by row (issue 17: "output identical to today's").
 *
 *   node dist/bench/features-compare.js --a ref.parquet --b new.parquet [--max-rel 0]
 *
 * Both tables must have the same columns, types and row order (features are written ORDER BY id).
 * Every non-DOUBLE column (ids, counts, days, text, booleans) must be equal, nulls included;
 * a DOUBLE column must have the same nulls, and each value must be equal or within `--max-abs`
 * absolute or `--max-rel` relative (|a − b| / max(|a|, |b|)); both default to 0: bit-equal
 * values, NaN equal to NaN. (A sum of amounts that cancels, a purchase and its return, is
 * near 0 and can differ by 100% relative after a change of summation order, hence `--max-abs`.) With `--meta-a` and
 * `--meta-b`, the cleaning counts, output counts, categories and valid range of the two
 * metadata sidecars must be equal too. Prints one line per column that differs and a JSON
 * summary; exits 1 on any difference beyond the tolerance.
 */
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { duck, sqlString } from '../src/io/duckdb-reader.js';

export interface ColumnDiff {
  column: string;
  type: string;
  /** Rows whose values differ (for DOUBLE: differ at all, before the tolerance). */
  differing: number;
  /** Rows where one side is null and the other not. */
  nullMismatch: number;
  /** DOUBLE only: the largest relative difference. */
  maxRel?: number;
  /** DOUBLE only: the largest absolute difference. */
  maxAbs?: number;
  /** DOUBLE only: rows beyond both tolerances. */
  beyond?: number;
}

/** What {@link compareFeatures} found: `identical` when every column is within the tolerances. */
export interface FeatureComparison {
  rows: number;
  columns: number;
  identical: boolean;
  maxRel: number;
  maxAbs: number;
  /** Columns with any differing row (DOUBLE columns within the tolerances included). */
  diffs: ColumnDiff[];
  /** Why `identical` is false, one line each. */
  problems: string[];
}

/**
 * Compares feature table `b` with reference `a` (Parquet), and their metadata sidecars when given.
 * @example
 * const r = await compareFeatures('ref.parquet', 'new.parquet', { maxRel: 4e-15, maxAbs: 1e-11 });
 * r.identical;
 */
export async function compareFeatures(
  a: string,
  b: string,
  opts: { maxRel?: number; maxAbs?: number; metaA?: string; metaB?: string; log?: (line: string) => void } = {},
): Promise<FeatureComparison> {
  const maxRel = opts.maxRel ?? 0;
  const maxAbs = opts.maxAbs ?? 0;
  const log = opts.log ?? (() => {});
  const conn = await duck();
  const describe = async (f: string) =>
    (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(f)})`)).getRows().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  const [ca, cb] = [await describe(a), await describe(b)];
  const problems: string[] = [];
  if (JSON.stringify(ca) !== JSON.stringify(cb)) problems.push(`schemas differ: ${JSON.stringify(ca)} vs ${JSON.stringify(cb)}`);
  const [[na, nb]] = (
    await conn.runAndReadAll(`SELECT (SELECT count(*) FROM read_parquet(${sqlString(a)})), (SELECT count(*) FROM read_parquet(${sqlString(b)}))`)
  ).getRows();
  if (na !== nb) problems.push(`row counts differ: ${na} vs ${nb}`);
  const diffs: ColumnDiff[] = [];
  if (problems.length === 0) {
    // Row i of one file against row i of the other: same order is part of "identical".
    const rel = (f: string) => `(SELECT * FROM read_parquet(${sqlString(f)}, file_row_number = true))`;
    const q = (n: string) => `"${n.replaceAll('"', '""')}"`;
    const parts = ca.map(({ name, type }) => {
      const x = `A.${q(name)}`;
      const y = `B.${q(name)}`;
      const base = `count(*) FILTER (${x} IS DISTINCT FROM ${y}), count(*) FILTER ((${x} IS NULL) <> (${y} IS NULL))`;
      const unequal = `NOT (${x} = ${y}) AND (isnan(${x}) OR isnan(${y}) OR NOT isfinite(${x}) OR NOT isfinite(${y}))`;
      const absd = `CASE WHEN ${x} = ${y} THEN 0 WHEN ${unequal} THEN 'inf'::DOUBLE ELSE abs(${x} - ${y}) END`;
      const reld = `CASE WHEN ${x} = ${y} THEN 0 WHEN ${unequal} THEN 'inf'::DOUBLE ELSE abs(${x} - ${y}) / greatest(abs(${x}), abs(${y})) END`;
      return type === 'DOUBLE'
        ? `${base}, coalesce(max(${reld}), 0), coalesce(max(${absd}), 0), count(*) FILTER (${absd} > ${maxAbs} AND ${reld} > ${maxRel})`
        : `${base}, NULL, NULL, NULL`;
    });
    const [row] = (
      await conn.runAndReadAll(`SELECT ${parts.join(', ')} FROM ${rel(a)} A JOIN ${rel(b)} B ON A.file_row_number = B.file_row_number`)
    ).getRows();
    ca.forEach(({ name, type }, i) => {
      const d: ColumnDiff = { column: name, type, differing: Number(row[5 * i]), nullMismatch: Number(row[5 * i + 1]) };
      if (type === 'DOUBLE') Object.assign(d, { maxRel: Number(row[5 * i + 2]), maxAbs: Number(row[5 * i + 3]), beyond: Number(row[5 * i + 4]) });
      const bad = d.nullMismatch > 0 || (type === 'DOUBLE' ? d.beyond! > 0 : d.differing > 0);
      if (d.differing > 0 || d.nullMismatch > 0) {
        diffs.push(d);
        const dbl = type === 'DOUBLE' ? `, max relative difference ${d.maxRel}, max absolute difference ${d.maxAbs}, ${d.beyond} rows beyond both tolerances` : '';
        log(`${bad ? 'DIFFERS' : 'within tolerance'}: ${name} (${type}): ${d.differing} rows differ, ${d.nullMismatch} null mismatches${dbl}`);
      }
      if (bad) problems.push(`column ${name}`);
    });
  }
  if (opts.metaA && opts.metaB) {
    const [ma, mb] = [JSON.parse(fs.readFileSync(opts.metaA, 'utf8')), JSON.parse(fs.readFileSync(opts.metaB, 'utf8'))];
    for (const k of ['rows', 'output', 'categories', 'validRange', 'labels', 'features', 'cleaning', 'winsorize']) {
      if (JSON.stringify(ma[k]) !== JSON.stringify(mb[k])) problems.push(`metadata '${k}' differs: ${JSON.stringify(ma[k])} vs ${JSON.stringify(mb[k])}`);
    }
  }
  return { rows: Number(na), columns: ca.length, identical: problems.length === 0, maxRel, maxAbs, diffs, problems };
}

async function main(): Promise<void> {
  const { values: o } = parseArgs({
    options: {
      a: { type: 'string' },
      b: { type: 'string' },
      'max-rel': { type: 'string', default: '0' },
      'max-abs': { type: 'string', default: '0' },
      'meta-a': { type: 'string' },
      'meta-b': { type: 'string' },
    },
  });
  if (!o.a || !o.b) throw new Error('usage: features-compare --a <reference.parquet> --b <candidate.parquet> [--max-rel 0] [--max-abs 0] [--meta-a a.meta.json --meta-b b.meta.json]');
  const r = await compareFeatures(o.a, o.b, { maxRel: Number(o['max-rel']), maxAbs: Number(o['max-abs']), metaA: o['meta-a'], metaB: o['meta-b'], log: (l) => console.log(l) });
  for (const p of r.problems) console.log(`problem: ${p}`);
  const { problems: _, ...summary } = r;
  console.log(JSON.stringify(summary));
  process.exitCode = r.identical ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 2;
  });
}
