/**
 * Issue 12: a bad-input suite generated from a small grammar of malformed tables.
 *
 *   case := base table × mutation × format × command
 *
 * - base tables: a customer table (id, spend, score, visits, plan; `churned` for churn) and a
 *   transaction log (customer_id, timestamp, amount) for `features`;
 * - mutations: stray text cells, NaN/Inf, empty cells, ragged, truncated and unterminated CSV,
 *   header only, empty and blank files, duplicate header names, truncated and garbage Arrow and
 *   Parquet, huge category counts, label columns among the default features, wrong `--dtypes`,
 *   duplicate ids, BOM and CRLF, and for the log bad timestamps and amounts beyond
 *   `--max-invalid`, an as-of outside the log and a churn window past it;
 * - formats: CSV, Parquet (written by DuckDB from the same cells, with declared types) and Arrow
 *   IPC (apache-arrow, the same cells and types);
 * - commands: `fit`, `predict` against a model fitted on the clean table, `churn train`
 *   (`--max-epochs 1 --backend cpu`) and `features`.
 *
 * Each mutation computes its own expectation from its parameters (the column and row it broke,
 * the format): either (a) exit 1 or 2 with exactly one `segtensor: error [CODE]: ` line on stderr
 * besides notices and warnings, naming the file's basename and, where the grammar knows them, the
 * column and the CSV line (or data row); or (b) a documented coercion: exit 0, the coercion
 * reported on a `notice:`/`warning:` line and/or counted in manifest.json's `counts` (or
 * model.json), and the result checked. Never a stack trace, exit 70, a hang (20 s) or a silent
 * exit 0. Every failing case runs against a copy of a directory where the clean table was
 * already processed with the same `--out`, and must leave those published bytes unchanged, with
 * no staging directory behind.
 *
 * Cases that cannot apply to a format (a ragged line in Parquet) are listed as skipped, with
 * the reason. The CLI runs three at a time; the whole file takes about two minutes on two cores.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Float64, Int64, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rng } from '../helpers/reference.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const bin = path.join(root, 'dist/src/cli/main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'segtensor-bad-input-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const TIMEOUT_MS = 20_000;
const POOL = 4;

// ---------------------------------------------------------------------------------------------
// Tables as cells: what the mutations edit, and what every format is written from.

type ColType = 'int' | 'float' | 'text';
interface Col {
  name: string;
  type: ColType;
  /** Cells as text; null is a missing cell (empty in CSV, null in Arrow and Parquet). */
  cells: (string | null)[];
}
interface Tbl {
  cols: Col[];
}

type Fmt = 'csv' | 'parquet' | 'arrow';
const FORMATS: readonly Fmt[] = ['csv', 'parquet', 'arrow'];
type Cmd = 'fit' | 'predict' | 'churn' | 'features';


const N = 200;
const PLANS = ['gold', 'silver', 'bronze'];

/** The customer table: id, spend (float), score (float), visits (int), plan (text); `churned` (int 0/1) when `label`. */
function baseCustomers(label: boolean, n = N, seed = 7): Tbl {
  const r = rng(seed);
  const id: string[] = [];
  const spend: string[] = [];
  const score: string[] = [];
  const visits: string[] = [];
  const plan: string[] = [];
  const churned: string[] = [];
  for (let i = 0; i < n; i++) {
    const g = i % 3;
    id.push(String(1000 + i));
    // Row 0's spend has decimals, so `--dtypes spend:integer` fails on data row 1.
    spend.push((20 + 30 * g + 10 * r() + 0.25).toFixed(3));
    score.push((g - 1 + r()).toFixed(3));
    visits.push(String(2 + 5 * g + Math.floor(4 * r())));
    plan.push(PLANS[Math.floor(3 * r())]);
    churned.push(r() < 0.3 + 0.2 * g ? '1' : '0');
  }
  const cols: Col[] = [
    { name: 'id', type: 'int', cells: id },
    { name: 'spend', type: 'float', cells: spend },
    { name: 'score', type: 'float', cells: score },
    { name: 'visits', type: 'int', cells: visits },
    { name: 'plan', type: 'text', cells: plan },
  ];
  if (label) cols.push({ name: 'churned', type: 'int', cells: churned });
  return { cols };
}

/** The transaction log: 60 customers, purchases from 2024-01-02 to 2024-06-29. */
function baseLog(): Tbl {
  const r = rng(11);
  const cid: string[] = [];
  const ts: string[] = [];
  const amt: string[] = [];
  const start = Date.UTC(2024, 0, 2);
  const end = Date.UTC(2024, 5, 29);
  for (let c = 0; c < 60; c++) {
    for (let j = 0; j < 8; j++) {
      cid.push(String(500 + c));
      const t = start + Math.floor(r() * (end - start));
      ts.push(new Date(t).toISOString().slice(0, 19).replace('T', ' '));
      amt.push((5 + 100 * r()).toFixed(2));
    }
  }
  // Pin the log's ends, so as-of and churn-window limits are known.
  ts[0] = '2024-01-02 09:00:00';
  ts[ts.length - 1] = '2024-06-29 18:00:00';
  return {
    cols: [
      { name: 'customer_id', type: 'int', cells: cid },
      { name: 'timestamp', type: 'text', cells: ts },
      { name: 'amount', type: 'float', cells: amt },
    ],
  };
}

const clone = (t: Tbl): Tbl => ({ cols: t.cols.map((c) => ({ ...c, cells: [...c.cells] })) });
const col = (t: Tbl, name: string): Col => t.cols.find((c) => c.name === name)!;
const nRows = (t: Tbl) => t.cols[0].cells.length;

function csvCell(v: string | null): string {
  if (v === null) return '';
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

function toCsv(t: Tbl, eol = '\n'): string {
  const lines = [t.cols.map((c) => csvCell(c.name)).join(',')];
  for (let i = 0; i < nRows(t); i++) lines.push(t.cols.map((c) => csvCell(c.cells[i])).join(','));
  return lines.join(eol) + eol;
}

function num(v: string): number {
  if (/^[+-]?inf(inity)?$/i.test(v)) return v.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(v)) return NaN;
  return Number(v);
}

function toArrow(t: Tbl): Uint8Array {
  const cols = Object.fromEntries(
    t.cols.map((c) => {
      if (c.type === 'int') return [c.name, vectorFromArray(c.cells.map((v) => (v === null ? null : BigInt(v))), new Int64())];
      if (c.type === 'float') return [c.name, vectorFromArray(c.cells.map((v) => (v === null ? null : num(v))), new Float64())];
      return [c.name, vectorFromArray(c.cells, new Utf8())];
    }),
  );
  return tableToIPC(new Table(cols), 'file');
}

let duckConn: Awaited<ReturnType<Awaited<ReturnType<typeof DuckDBInstance.create>>['connect']>> | null = null;
async function duckdb() {
  duckConn ??= await (await DuckDBInstance.create(':memory:')).connect();
  return duckConn;
}
const sq = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** Parquet with the declared types, from the same cells (DuckDB casts 'NaN', 'Inf', '-inf' to DOUBLE). */
async function writeParquet(t: Tbl, dest: string): Promise<void> {
  const tmp = `${dest}.src.csv`;
  fs.writeFileSync(tmp, toCsv(t));
  const types = `{${t.cols.map((c) => `${sq(c.name)}: ${sq(c.type === 'int' ? 'BIGINT' : c.type === 'float' ? 'DOUBLE' : 'VARCHAR')}`).join(', ')}}`;
  const conn = await duckdb();
  await conn.run(`COPY (SELECT * FROM read_csv(${sq(tmp)}, header=true, auto_detect=false, quote='"', escape='"', columns=${types})) TO ${sq(dest)} (FORMAT parquet)`);
  fs.rmSync(tmp);
}

async function writeFmt(t: Tbl, fmt: Fmt, dest: string): Promise<void> {
  if (fmt === 'csv') fs.writeFileSync(dest, toCsv(t));
  else if (fmt === 'arrow') fs.writeFileSync(dest, toArrow(t));
  else await writeParquet(t, dest);
}

// ---------------------------------------------------------------------------------------------
// Expectations.

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  ms: number;
}

interface Ctx {
  ran: Ran;
  /** Where the command published (or would have): run directory of fit/churn, file of predict/features. */
  outPath: string;
  /** manifest.json of the published run, when there is one. */
  manifest: () => { runId: string; counts: Record<string, any> };
  /** model.json of a fit or churn run. */
  model: () => any;
  /** stderr's notice and warning lines. */
  notes: string[];
}

type Expect =
  | {
      kind: 'error';
      /** Allowed error codes; exit 2 for BAD_OPTION, else 1. */
      codes: string[];
      /** Substrings the error line must contain (basename, `'column'`, option). */
      names: string[];
      /** Where the bad cell or line is. */
      at?: RegExp;
    }
  | {
      kind: 'ok';
      /** A control (valid input): nothing needs reporting. Else the check must find the report. */
      control?: boolean;
      check: (c: Ctx) => void;
    };

const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A bad cell at 0-based data row `row`: its file line for CSV (header is line 1) or `data row N`. */
function cellAt(fmt: Fmt, row: number): RegExp {
  return fmt === 'csv' ? new RegExp(`\\b(line ${row + 2}|data row ${row + 1})\\b`) : new RegExp(`\\bdata row ${row + 1}\\b`);
}

/** A structural CSV fault on file line `line`. */
const lineAt = (line: number) => new RegExp(`\\bline ${line}\\b`);

const err = (codes: string[], names: string[], at?: RegExp): Expect => ({ kind: 'error', codes, names, at });

/** Cells counted as missing/coerced for `name`: in manifest counts, in model.json, or on a notice line. */
function countedIn(c: Ctx, key: string, name: string, n: number): boolean {
  const counts = c.manifest().counts;
  const v = counts?.[key]?.[name];
  if (v === n) return true;
  const rx = new RegExp(`'${re(name)}'.*\\b${n}\\b`);
  return c.notes.some((l) => rx.test(l));
}

// ---------------------------------------------------------------------------------------------
// The grammar.

interface Case {
  name: string;
  cmd: Cmd;
  fmt: Fmt;
  /** Writes the input file(s) into `at` and returns the input path. */
  make: (at: string) => Promise<string>;
  args: string[];
  expect: Expect;
  skip?: string;
}

interface Mutation {
  name: string;
  cmds: Cmd[];
  /** Formats it applies to; the others are listed as skipped with `why`. */
  formats?: readonly Fmt[];
  why?: string;
  /** Edits the base table (cells) for this command. */
  table?: (t: Tbl, cmd: Cmd) => Tbl;
  /** Or the written file's bytes. */
  bytes?: (b: Buffer, fmt: Fmt) => Buffer;
  /** Or the whole CSV text (CSV-only mutations). */
  csv?: (t: Tbl) => string;
  args?: (cmd: Cmd) => string[];
  /**
   * Formats sampled per command, where not every one (the readers are shared by the commands, so
   * a file-level fault is run in every format for `fit` and in one for the others). Not a skip:
   * these cases are not generated.
   */
  sample?: Partial<Record<Cmd, readonly Fmt[]>>;
  /** Rows of the base table, when not N. */
  rows?: number;
  expect: (fmt: Fmt, cmd: Cmd, file: string) => Expect;
}

const CUSTOMER_CMDS: Cmd[] = ['fit', 'predict', 'churn'];

function setCell(t: Tbl, name: string, row: number, v: string | null, asText = false): Tbl {
  const c = col(t, name);
  c.cells[row] = v;
  // A text cell in a typed column can only be written as a text column in Arrow and Parquet.
  if (asText) c.type = 'text';
  return t;
}

const featureNames = (c: Ctx): string[] => c.model().featureNames;

const mutations: Mutation[] = [];

// Controls: the clean table passes, in every format, for every command.
mutations.push({
  name: 'clean (control)',
  cmds: CUSTOMER_CMDS,
  table: (t) => t,
  expect: (_f, cmd) => ({
    kind: 'ok',
    control: true,
    check: (c) => {
      if (cmd === 'fit') expect(featureNames(c)).toEqual(['spend', 'score', 'visits']);
      if (cmd === 'predict') expect(c.manifest().counts.rowsAssigned).toBe(N);
    },
  }),
});

// Stray text cells in numeric columns.
for (const [name, row, value] of [
  ['spend', 137, 'n/a'],
  ['visits', 0, '12%'],
] as const) {
  mutations.push({
    name: `stray text '${value}' in ${name} at data row ${row + 1}`,
    cmds: name === 'spend' ? CUSTOMER_CMDS : ['fit'],
    table: (t) => setCell(t, name, row, value, true),
    expect: (fmt, _cmd, file) => err(['MIXED_COLUMN'], [file, `'${name}'`, value], cellAt(fmt, row)),
  });
  if (name === 'spend') mutations.push({
    name: `stray text '${value}' in ${name} at data row ${row + 1}, --coerce-invalid`,
    cmds: CUSTOMER_CMDS,
    table: (t) => setCell(t, name, row, value, true),
    args: () => ['--coerce-invalid'],
    expect: (_f, cmd) => ({
      kind: 'ok',
      check: (c) => {
        expect(c.notes.some((l) => new RegExp(`^segtensor: notice: .*'${name}'.*\\b1 cell\\b.*--coerce-invalid`).test(l)), c.notes.join('\n')).toBe(true);
        // "nulls counted in the output's metadata" (issue 12), not only on stderr.
        expect(c.manifest().counts.coercedToNull?.[name], JSON.stringify(c.manifest().counts)).toBe(1);
        if (cmd === 'fit') expect(featureNames(c)).toContain(name);
      },
    }),
  });
}

// Non-finite cells: NaN is a missing value (imputed, counted); ±Inf is an error naming the cell.
for (const value of ['NaN', 'Inf', '-inf']) {
  const row = 55;
  mutations.push({
    name: `'${value}' in spend at data row ${row + 1}`,
    cmds: value === '-inf' ? ['fit'] : CUSTOMER_CMDS,
    sample: value === '-inf' ? { fit: ['csv'] } : undefined,
    table: (t) => setCell(t, 'spend', row, value),
    expect: (fmt, _cmd, file) =>
      value === 'NaN'
        ? {
            kind: 'ok',
            check: (c) => {
              expect(countedIn(c, 'missing', 'spend', 1), `missing spend not counted: ${JSON.stringify(c.manifest().counts)} ${c.notes.join('\n')}`).toBe(true);
            },
          }
        : err(['NON_FINITE'], [file, `'spend'`], cellAt(fmt, row)),
  });
}

// Empty cells: imputed (documented, --impute), counted.
mutations.push({
  name: 'empty cells (spend ×2, visits ×1)',
  cmds: CUSTOMER_CMDS,
  table: (t) => setCell(setCell(setCell(t, 'spend', 3, null), 'spend', 77, null), 'visits', 5, null),
  expect: () => ({
    kind: 'ok',
    check: (c) => {
      const detail = `${JSON.stringify(c.manifest().counts)} ${c.notes.join('\n')}`;
      expect(countedIn(c, 'missing', 'spend', 2), `missing spend not counted: ${detail}`).toBe(true);
      expect(countedIn(c, 'missing', 'visits', 1), `missing visits not counted: ${detail}`).toBe(true);
    },
  }),
});

// Structural CSV faults: they name the file line.
const CSV_ONLY = { formats: ['csv'] as const, why: 'a columnar file has no lines to get wrong' };
for (const [kind, row] of [
  ['too few fields', 99],
  ['too many fields', 150],
] as const) {
  mutations.push({
    name: `ragged line (${kind}) at data row ${row + 1}`,
    cmds: kind === 'too few fields' ? CUSTOMER_CMDS : ['fit'],
    ...CSV_ONLY,
    csv: (t) => {
      const lines = toCsv(t).split('\n');
      const f = lines[row + 1].split(',');
      lines[row + 1] = (kind === 'too few fields' ? f.slice(0, 3) : [...f, '42']).join(',');
      return lines.join('\n');
    },
    expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file], lineAt(row + 2)),
  });
}
mutations.push({
  name: 'truncated last line (cut inside its second field, no newline)',
  cmds: ['fit', 'predict'],
  ...CSV_ONLY,
  csv: (t) => {
    const text = toCsv(t);
    const lastStart = text.lastIndexOf('\n', text.length - 2) + 1;
    const firstComma = text.indexOf(',', lastStart);
    return text.slice(0, firstComma + 3);
  },
  expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file], lineAt(N + 1)),
});
mutations.push({
  name: 'unterminated quote in plan at data row 11',
  cmds: ['fit', 'predict'],
  ...CSV_ONLY,
  csv: (t) => {
    const lines = toCsv(t).split('\n');
    const f = lines[11].split(',');
    f[4] = `"${f[4]}`;
    lines[11] = f.join(',');
    return lines.join('\n');
  },
  expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file], lineAt(12)),
});
mutations.push({
  name: 'duplicate header name (score renamed spend)',
  cmds: ['fit', 'predict'],
  formats: ['csv'],
  why: "DuckDB's COPY and apache-arrow's Table builder cannot write two columns of one name",
  csv: (t) => toCsv(t).replace('id,spend,score,', 'id,spend,spend,'),
  expect: (_f, _c, file) => err(['BAD_INPUT', 'CORRUPT_FILE', 'DUPLICATE_COLUMN'], [file, `'spend'`]),
});
mutations.push({
  name: 'BOM before the header',
  cmds: CUSTOMER_CMDS,
  formats: ['csv'],
  why: 'a byte-order mark is a text-file thing',
  csv: (t) => '\uFEFF' + toCsv(t),
  expect: (_f, cmd) => sameAsClean(cmd),
});
mutations.push({
  name: 'CRLF line endings',
  cmds: CUSTOMER_CMDS,
  formats: ['csv'],
  why: 'line endings are a text-file thing',
  csv: (t) => toCsv(t, '\r\n'),
  expect: (_f, cmd) => sameAsClean(cmd),
});
mutations.push({
  name: 'BOM and CRLF line endings',
  cmds: ['fit'],
  formats: ['csv'],
  why: 'a text-file thing',
  csv: (t) => '\uFEFF' + toCsv(t, '\r\n'),
  expect: (_f, cmd) => sameAsClean(cmd),
});

// Empty tables and files.
mutations.push({
  name: 'header only (no rows)',
  cmds: CUSTOMER_CMDS,
  table: (t) => ({ cols: t.cols.map((c) => ({ ...c, cells: [] })) }),
  expect: (_f, _c, file) => err(['EMPTY_TABLE'], [file]),
});
mutations.push({
  name: 'empty file (0 bytes)',
  cmds: ['fit', 'predict'],
  bytes: () => Buffer.alloc(0),
  expect: (_f, _c, file) => err(['EMPTY_TABLE'], [file]),
});
mutations.push({
  name: 'whitespace only',
  cmds: ['fit', 'predict'],
  bytes: () => Buffer.from('  \n\n \t \r\n   \n'),
  expect: (fmt, _c, file) => err(fmt === 'csv' ? ['EMPTY_TABLE'] : ['CORRUPT_FILE'], [file]),
});

// Truncated and garbage binary files.
const BINARY = { formats: ['parquet', 'arrow'] as const, why: "CSV's truncations are the truncated-last-line and ragged cases" };
for (const cut of [8, 0.35, 0.7, -1] as const) {
  mutations.push({
    name: `truncated file (${cut === -1 ? 'last byte cut' : cut < 1 ? `${cut * 100}% kept` : `${cut} bytes kept`})`,
    cmds: cut === 0.35 ? CUSTOMER_CMDS : ['fit'],
    ...BINARY,
    bytes: (b) => b.subarray(0, cut === -1 ? b.length - 1 : cut < 1 ? Math.floor(b.length * cut) : cut),
    expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file]),
  });
}
mutations.push({
  name: 'garbage bytes under the extension',
  cmds: ['fit', 'predict'],
  ...BINARY,
  why: 'any bytes are CSV text; see the ragged and quote cases',
  bytes: () => {
    const r = rng(3);
    return Buffer.from(Array.from({ length: 3000 }, () => Math.floor(256 * r())));
  },
  expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file]),
});

// Huge category counts.
const BIG_DISTINCT = 50_000;
mutations.push({
  name: `text feature with ${BIG_DISTINCT} distinct values in ${BIG_DISTINCT} rows (an identifier)`,
  cmds: ['fit', 'churn'],
  sample: { fit: ['csv', 'parquet'], churn: ['arrow'] },
  rows: BIG_DISTINCT,
  table: (t) => {
    col(t, 'plan').cells = col(t, 'plan').cells.map((_, i) => `p${i}`);
    return t;
  },
  args: (cmd) => (cmd === 'fit' ? ['--features', 'spend,score,plan'] : []),
  expect: (_f, _c, file) => err(['NON_NUMERIC_COLUMN', 'BAD_INPUT'], [file, `'plan'`]),
});
// Fewer distinct values than half the rows: a category, capped (the 50,000-value one above is an
// identifier). Kept small enough to run in a few seconds.
const CAPPED_ROWS = 12_000;
const CAPPED_DISTINCT = 5_000;
mutations.push({
  name: `text feature with ${CAPPED_DISTINCT} distinct values in ${CAPPED_ROWS} rows, capped at --max-categories 20`,
  cmds: ['fit'],
  sample: { fit: ['csv', 'arrow'] },
  rows: CAPPED_ROWS,
  table: (t) => {
    // 20 frequent values (300 rows each), then 4,980 rarer ones.
    col(t, 'plan').cells = col(t, 'plan').cells.map((_, i) => (i < 6_000 ? `top${i % 20}` : `p${(i - 6_000) % (CAPPED_DISTINCT - 20)}`));
    return t;
  },
  args: () => ['--features', 'spend,score,plan', '--max-categories', '20'],
  expect: () => ({
    kind: 'ok',
    check: (c) => {
      const plan = featureNames(c).filter((f) => f.startsWith('plan='));
      expect(plan).toHaveLength(21);
      expect(plan).toContain('plan=__other__');
      const counts = JSON.stringify(c.manifest().counts);
      const reported = c.notes.some((l) => /'plan'/.test(l) && /__other__/.test(l)) || /plan/.test(counts);
      expect(reported, `capping not reported: notes ${JSON.stringify(c.notes)}, counts ${counts}`).toBe(true);
    },
  }),
});

// Label columns among the default features.
for (const label of ['churned', 'churn', 'target']) {
  mutations.push({
    name: `label column '${label}' (0/1) with default features`,
    cmds: ['fit'],
    sample: label === 'churned' ? {} : { fit: ['csv'] },
    table: (t) => {
      t.cols.push({ name: label, type: 'int', cells: col(baseCustomers(true), 'churned').cells });
      return t;
    },
    expect: () => ({
      kind: 'ok',
      check: (c) => {
        expect(c.notes.some((l) => /^segtensor: warning: /.test(l) && l.includes(`'${label}'`)), c.notes.join('\n')).toBe(true);
        expect(featureNames(c)).toEqual(['spend', 'score', 'visits']);
        expect(c.manifest().counts.excluded).toContain(label);
      },
    }),
  });
}
mutations.push({
  name: "label column 'churn' (Yes/No) with default features",
  cmds: ['fit'],
  table: (t) => {
    t.cols.push({ name: 'churn', type: 'text', cells: col(baseCustomers(true), 'churned').cells.map((v) => (v === '1' ? 'Yes' : 'No')) });
    return t;
  },
  expect: () => ({
    kind: 'ok',
    // Yes/No is text in every format (issue 12: no yes/no coercion in CSV), so never a default feature.
    control: true,
    check: (c) => {
      expect(featureNames(c)).toEqual(['spend', 'score', 'visits']);
      expect(c.model().preprocessing.inputs.map((i: { name: string }) => i.name)).not.toContain('churn');
    },
  }),
});

// Wrong types in --dtypes.
mutations.push({
  name: '--dtypes plan:number (text column)',
  cmds: CUSTOMER_CMDS,
  table: (t) => t,
  args: () => ['--dtypes', 'plan:number'],
  expect: (fmt, _c, file) => err(['MIXED_COLUMN'], [file, `'plan'`], cellAt(fmt, 0)),
});
mutations.push({
  name: '--dtypes spend:integer (decimals)',
  cmds: ['fit'],
  table: (t) => t,
  args: () => ['--dtypes', 'spend:integer'],
  expect: (fmt, _c, file) => err(['MIXED_COLUMN'], [file, `'spend'`], cellAt(fmt, 0)),
});
mutations.push({
  name: '--dtypes names a missing column',
  cmds: ['fit'],
  table: (t) => t,
  args: () => ['--dtypes', 'nosuch:number'],
  expect: (_f, _c, file) => err(['MISSING_COLUMN'], [file, `'nosuch'`]),
});
mutations.push({
  name: '--dtypes with an unknown type',
  cmds: CUSTOMER_CMDS,
  sample: { fit: ['csv'], predict: ['csv'], churn: ['csv'] },
  table: (t) => t,
  args: () => ['--dtypes', 'spend:float'],
  expect: () => err(['BAD_OPTION'], ['--dtypes', 'spend:float']),
});
mutations.push({
  name: '--dtypes spend:string against a model fitted on numbers',
  cmds: ['predict'],
  table: (t) => t,
  args: () => ['--dtypes', 'spend:string'],
  expect: (_f, _c, file) => err(['TYPE_MISMATCH'], [file, `'spend'`]),
});
mutations.push({
  name: "unseen plan values at predict (model fitted with plan)",
  cmds: ['predict'],
  table: (t) => setCell(setCell(setCell(t, 'plan', 4, 'platinum'), 'plan', 40, 'platinum'), 'plan', 90, 'tin'),
  args: () => ['--model', MODEL_WITH_PLAN],
  expect: () => ({
    kind: 'ok',
    check: (c) => {
      expect(c.notes.some((l) => /^segtensor: notice: column 'plan': 3 values unseen/.test(l)), c.notes.join('\n')).toBe(true);
      expect(c.manifest().counts.unseenCategories?.plan, JSON.stringify(c.manifest().counts)).toBe(3);
    },
  }),
});

// Duplicate ids.
mutations.push({
  name: 'duplicate id at data row 151 (repeats data row 21)',
  cmds: CUSTOMER_CMDS,
  table: (t) => setCell(t, 'id', 150, col(t, 'id').cells[20]),
  expect: (fmt, _c, file) => err(['DUPLICATE_ID'], [file, `'id'`, "'1020'"], cellAt(fmt, 150)),
});

// `features` with a malformed transaction log.
const LOG_ARGS = ['--as-of', '2024-04-01'];
function everyNth(t: Tbl, name: string, step: number, v: string, asText: boolean): Tbl {
  const c = col(t, name);
  for (let i = 3; i < c.cells.length; i += step) c.cells[i] = v;
  if (asText) c.type = 'text';
  return t;
}
mutations.push({
  name: 'transaction log (control), --churn-window 60',
  cmds: ['features'],
  table: (t) => t,
  args: () => [...LOG_ARGS, '--churn-window', '60'],
  expect: () => ({ kind: 'ok', control: true, check: (c) => expect(c.manifest().counts.customers).toBeGreaterThan(0) }),
});
for (const [what, name, v, asText] of [
  ['bad timestamps', 'timestamp', 'not-a-date', false],
  ['bad amounts', 'amount', 'abc', true],
  ['infinite amounts', 'amount', 'Inf', false],
] as const) {
  mutations.push({
    name: `${what} in 5% of rows (over --max-invalid 0.01)`,
    cmds: ['features'],
    table: (t) => everyNth(t, name, 20, v, asText),
    args: () => LOG_ARGS,
    expect: (_f, _c, file) => err(['TOO_MANY_INVALID'], [file, `'${name}'`]),
  });
}
mutations.push({
  name: 'bad timestamps in 5% of rows, within --max-invalid 0.1',
  cmds: ['features'],
  table: (t) => everyNth(t, 'timestamp', 20, 'not-a-date', false),
  args: () => [...LOG_ARGS, '--max-invalid', '0.1'],
  expect: () => ({
    kind: 'ok',
    check: (c) => {
      const n = Math.ceil((480 - 3) / 20);
      expect(c.notes.some((l) => /^segtensor: notice: /.test(l) && new RegExp(`\\b${n} null or unparseable 'timestamp'`).test(l)), c.notes.join('\n')).toBe(true);
      const meta = JSON.parse(fs.readFileSync(`${c.outPath}.meta.json`, 'utf8'));
      expect(meta.rows.invalidTimestamp).toBe(n);
      expect(c.manifest().counts.rows.invalidTimestamp).toBe(n);
    },
  }),
});
for (const [what, extra] of [
  ['--as-of before the log', ['--as-of', '2023-06-01']],
  ['--as-of after the log', ['--as-of', '2024-09-01']],
  ['--churn-window past the log', [...LOG_ARGS, '--churn-window', '120']],
] as const) {
  mutations.push({
    name: what,
    cmds: ['features'],

    table: (t) => t,
    args: () => [...extra],
    expect: (_f, _c, file) => err(['OUT_OF_RANGE'], [file, what.split(' ')[0]]),
  });
}
mutations.push({
  name: 'transaction log with a ragged line at data row 201',
  cmds: ['features'],
  ...CSV_ONLY,
  csv: (t) => {
    const lines = toCsv(t).split('\n');
    lines[201] = lines[201].split(',').slice(0, 2).join(',');
    return lines.join('\n');
  },
  args: () => LOG_ARGS,
  expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file], lineAt(202)),
});
mutations.push({
  name: 'transaction log: empty file',
  cmds: ['features'],
  bytes: () => Buffer.alloc(0),
  args: () => LOG_ARGS,
  expect: (_f, _c, file) => err(['EMPTY_TABLE'], [file]),
});
mutations.push({
  name: 'transaction log: truncated at 50%',
  cmds: ['features'],
  ...BINARY,
  bytes: (b) => b.subarray(0, b.length >> 1),
  args: () => LOG_ARGS,
  expect: (_f, _c, file) => err(['CORRUPT_FILE'], [file]),
});

// ---------------------------------------------------------------------------------------------
// Clean runs whose outputs every failing case must leave intact, and the result of valid inputs.

const PREV = path.join(dir, 'prev');
const MODEL = path.join(dir, 'model-clean');
const MODEL_WITH_PLAN = path.join(dir, 'model-plan');
const OUT_OF: Record<Cmd, string> = { fit: 'out', churn: 'churn-out', predict: 'pred.arrow', features: 'feat.parquet' };
const clean: Partial<Record<Cmd, Ctx>> = {};

/** Valid text variants (BOM, CRLF) give exactly the clean CSV's results. */
function sameAsClean(cmd: Cmd): Expect {
  return {
    kind: 'ok',
    control: true,
    check: (c) => {
      const base = clean[cmd]!;
      if (cmd === 'fit') {
        expect(featureNames(c)).toEqual(featureNames(base));
        expect(c.model().centroidsOriginal).toEqual(base.model().centroidsOriginal);
        expect(c.model().idColumn).toBe('id');
      } else if (cmd === 'predict') {
        expect(sha(c.outPath)).toBe(sha(base.outPath));
      } else {
        expect(featureNames(c)).toEqual(featureNames(base));
      }
    },
  };
}

function argsFor(cmd: Cmd, input: string, out: string): string[] {
  switch (cmd) {
    case 'fit':
      return ['fit', '--input', input, '--k', '3', '--id', 'id', '--out', out, '--n-init', '1'];
    case 'predict':
      return ['predict', '--model', MODEL, '--input', input, '--out', out];
    case 'churn':
      return ['churn', 'train', '--input', input, '--label', 'churned', '--id', 'id', '--out', out, '--max-epochs', '1', '--backend', 'cpu'];
    case 'features':
      return ['features', '--transactions', input, '--out', out];
  }
}

/** Later options win in commander, so a case's `--model` replaces the default one. */
function withArgs(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (let i = 0; i < extra.length; i++) {
    const j = extra[i].startsWith('--') ? out.indexOf(extra[i]) : -1;
    if (j >= 0 && i + 1 < extra.length && !extra[i + 1].startsWith('--')) {
      out[j + 1] = extra[++i];
    } else out.push(extra[i]);
  }
  return out;
}

function run(args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [bin, '--quiet', ...args], { cwd, env: { ...process.env, SEGTENSOR_DEBUG: '' }, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' });
    let out = '';
    let e = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (e += d));
    p.on('close', (code, signal) => resolve({ code, signal, out, err: e, ms: Date.now() - t0 }));
  });
}

async function pool<T>(items: T[], n: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await f(items[next++]);
  }));
}

function sha(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The published files of `out` (a run directory, or a file and its sidecars), by name, with their hashes. */
function published(out: string): Record<string, string> {
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) {
    return Object.fromEntries(fs.readdirSync(out).sort().map((f) => [f, sha(path.join(out, f))]));
  }
  const d = path.dirname(out);
  const b = path.basename(out);
  return Object.fromEntries(
    fs.readdirSync(d).filter((f) => f === b || f.startsWith(`${b}.`)).sort().map((f) => [f, sha(path.join(d, f))]),
  );
}

function manifestOf(out: string) {
  const m = fs.existsSync(out) && fs.statSync(out).isDirectory() ? path.join(out, 'manifest.json') : path.join(path.dirname(out), `.${path.basename(out)}.runs`, 'current', 'manifest.json');
  return JSON.parse(fs.readFileSync(m, 'utf8'));
}

function ctxOf(ran: Ran, outPath: string): Ctx {
  // A churn run's preprocessing and features are in churn.json; model.json is the network's.
  const modelFile = () => {
    const churn = path.join(outPath, 'churn.json');
    return JSON.parse(fs.readFileSync(fs.existsSync(churn) ? churn : path.join(outPath, 'model.json'), 'utf8'));
  };
  return {
    ran,
    outPath,
    manifest: () => manifestOf(outPath),
    model: modelFile,
    notes: ran.err.split('\n').filter((l) => /^segtensor: (notice|warning): /.test(l)),
  };
}

// ---------------------------------------------------------------------------------------------
// Cases.

const cases: Case[] = [];
/**
 * `fit` meets every mutation in every format; `predict`, `churn train` and `features` in one
 * format per mutation, taken in turn, so each format is met across the mutations (they share the
 * readers, and each CLI start costs a second or more on two busy cores). Controls run everywhere.
 */
function defaultSample(cmd: Cmd, mi: number, m: Mutation): readonly Fmt[] {
  if (cmd === 'fit' || m.name.includes('(control)')) return FORMATS;
  const fmts = m.formats ?? FORMATS;
  return [fmts[mi % fmts.length]];
}

for (const [mi, m] of mutations.entries()) {
  for (const cmd of m.cmds) {
    for (const fmt of m.sample?.[cmd] ?? defaultSample(cmd, mi, m)) {
      const file = `input.${fmt}`;
      const skip = m.formats && !m.formats.includes(fmt) ? `${fmt}: ${m.why}` : m.csv && fmt !== 'csv' ? `${fmt}: a CSV-text mutation` : undefined;
      cases.push({
        name: `${cmd} · ${fmt} · ${m.name}`,
        cmd,
        fmt,
        skip,
        args: m.args?.(cmd) ?? [],
        expect: m.expect(fmt, cmd, file),
        make: async (at) => {
          const dest = path.join(at, file);
          const base = cmd === 'features' ? baseLog() : baseCustomers(cmd === 'churn', m.rows ?? N);
          if (m.csv) fs.writeFileSync(dest, m.csv(base));
          else {
            await writeFmt(m.table ? m.table(clone(base), cmd) : base, fmt, dest);
            if (m.bytes) fs.writeFileSync(dest, m.bytes(fs.readFileSync(dest), fmt));
          }
          return dest;
        },
      });
    }
  }
}

const active = cases.filter((c) => !c.skip);
const results = new Map<Case, { ran: Ran; ctx: Ctx; before: Record<string, string>; after: Record<string, string>; leftovers: string[] }>();

beforeAll(async () => {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run 'npm test' (it builds first) or 'npm run build'`);
  // The clean runs: a model for predict, and for each command a directory where the clean table
  // was already processed (the "previous outputs" a failing case must not touch).
  fs.mkdirSync(PREV);
  const cleanCustomers = path.join(dir, 'clean.csv');
  const cleanLabelled = path.join(dir, 'clean-labelled.csv');
  const cleanLog = path.join(dir, 'clean-log.csv');
  fs.writeFileSync(cleanCustomers, toCsv(baseCustomers(false)));
  fs.writeFileSync(cleanLabelled, toCsv(baseCustomers(true)));
  fs.writeFileSync(cleanLog, toCsv(baseLog()));
  const setup = await Promise.all([
    run(argsFor('fit', cleanCustomers, MODEL), dir),
    run([...argsFor('fit', cleanCustomers, MODEL_WITH_PLAN), '--features', 'spend,score,visits,plan'], dir),
    run(argsFor('fit', cleanCustomers, path.join(PREV, OUT_OF.fit)), dir),
  ]);
  setup.push(
    ...(await Promise.all([
      run(argsFor('predict', cleanCustomers, path.join(PREV, OUT_OF.predict)), dir),
      run(argsFor('churn', cleanLabelled, path.join(PREV, OUT_OF.churn)), dir),
      run([...argsFor('features', cleanLog, path.join(PREV, OUT_OF.features)), ...LOG_ARGS], dir),
    ])),
  );
  for (const r of setup) if (r.code !== 0) throw new Error(`clean run failed (${r.code}): ${r.err}`);
  for (const cmd of ['fit', 'predict', 'churn'] as const) clean[cmd] = ctxOf(setup[0], path.join(PREV, OUT_OF[cmd]));

  let i = 0;
  await pool(active, POOL, async (c) => {
    const at = path.join(dir, `case-${String(i++).padStart(3, '0')}`);
    // A copy of the clean run store: published links, run directories and all.
    fs.cpSync(PREV, at, { recursive: true, verbatimSymlinks: true });
    const input = await c.make(at);
    const out = path.join(at, OUT_OF[c.cmd]);
    const before = published(out);
    const ran = await run(withArgs(argsFor(c.cmd, input, out), c.args), at);
    const store = path.join(at, `.${OUT_OF[c.cmd]}.runs`);
    const leftovers = fs.existsSync(store) ? fs.readdirSync(store).filter((f) => /staging|\.tmp/.test(f)) : [];
    results.set(c, { ran, ctx: ctxOf(ran, out), before, after: published(out), leftovers });
    if (process.env.BAD_INPUT_LOG) fs.appendFileSync(process.env.BAD_INPUT_LOG, `${Date.now()} ${ran.ms} ${ran.code} ${c.name}\n`);
  });
  const slow = [...results.entries()].sort((x, y) => y[1].ran.ms - x[1].ran.ms).slice(0, 5);
  console.log(`slowest: ${slow.map(([c, r]) => `${c.name} ${r.ran.ms} ms`).join('; ')}`);
  const bad = [...results.values()].filter((r) => r.ran.signal === 'SIGKILL').length;
  console.log(`bad-input grammar: ${cases.length} cases, ${active.length} ran, ${cases.length - active.length} skipped (not applicable to their format), ${bad} hung`);
}, 540_000);

describe(`bad-input grammar (issue 12): ${cases.length} cases, ${active.length} run, ${cases.length - active.length} not applicable`, () => {
  for (const c of cases) {
    if (c.skip) {
      it.skip(`${c.name} — not applicable: ${c.skip}`, () => {});
      continue;
    }
    it(c.name, () => {
      const r = results.get(c)!;
      const { ran } = r;
      const shown = `exit ${ran.code}${ran.signal ? ` (${ran.signal})` : ''} after ${ran.ms} ms\nstderr:\n${ran.err}\nstdout tail:\n${ran.out.slice(-400)}`;
      expect(ran.signal, `hung (killed after ${TIMEOUT_MS} ms)\n${shown}`).toBeNull();
      expect(ran.err, `stack trace\n${shown}`).not.toMatch(/\n\s+at /);
      expect(ran.code, `internal error\n${shown}`).not.toBe(70);
      const e = c.expect;
      if (e.kind === 'error') {
        const lines = ran.err.split('\n').filter((l) => l !== '' && !/^segtensor: (notice|warning): /.test(l));
        expect(lines, `expected one error line\n${shown}`).toHaveLength(1);
        const m = /^segtensor: error \[([A-Z_]+)\]: /.exec(lines[0]);
        expect(m, `not an error line\n${shown}`).not.toBeNull();
        expect(e.codes, `error code\n${shown}`).toContain(m![1]);
        expect(ran.code, shown).toBe(m![1] === 'BAD_OPTION' ? 2 : 1);
        for (const n of e.names) expect(lines[0], `the error must name ${n}\n${shown}`).toContain(n);
        if (e.at) expect(lines[0], `the error must say where\n${shown}`).toMatch(e.at);
        // A failed run leaves the previous outputs as they were, and no staging behind.
        expect(r.after, 'previous outputs changed').toEqual(r.before);
        expect(r.leftovers, 'staging left behind').toEqual([]);
      } else {
        expect(ran.code, shown).toBe(0);
        const other = ran.err.split('\n').filter((l) => l !== '' && !/^segtensor: (notice|warning): /.test(l));
        expect(other, shown).toEqual([]);
        expect(r.ctx.manifest().runId, 'a new run was published').not.toBe(manifestOf(path.join(PREV, OUT_OF[c.cmd])).runId);
        e.check(r.ctx);
      }
    });
  }
});
