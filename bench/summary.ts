/**
 * The goal table for bench/RESULTS.md, made from like-for-like results files: every ratio names
 * the row it comes from (`lloyd:1Mx32:k16` …), the file that row is in, and the command that
 * made it. A goal is "met" only when the whole range of the ratio ([min A / max B, max A / min B]
 * over the alternating runs) meets it, "met at the median only" when the median does and the range
 * does not, else "not met"; a row that is not in the files is "not measured".
 *
 *   node dist/bench/summary.js bench/results/2026-12-07-vm.json [more.json …] [--out summary.md]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, arg, fmt, fmtRatio } from './bench-util.js';

interface Ratio {
  label: string;
  a: string;
  b: string;
  median: number;
  min: number;
  max: number;
}
interface Row {
  id: string;
  command: string;
  tools: { tool: string; inertia?: number | null; inertiaRel?: number | null; figure: { median: number; min: number; max: number } | null; extra?: Record<string, unknown> }[];
  ratios: Ratio[];
}

/** A goal as data: which row, which ratio (A over B), and the bound it must stay under. */
interface Goal {
  goal: string;
  row: string;
  a: string;
  b: string;
  /** Upper bound on A / B; null: reported, no goal. */
  max: number | null;
}

const GOALS: Goal[] = [
  { goal: 'Plain Lloyd step ≤ 0.8 × scikit-learn\'s Lloyd step (its own thread limits), 1M × 32, k = 16', row: 'lloyd:1Mx32:k16', a: 'native-nobounds', b: 'sklearn-lloyd', max: 0.8 },
  { goal: 'Plain Lloyd step ≤ 1.5 × the memory floor, 1M × 32, k = 16', row: 'lloyd:1Mx32:k16', a: 'native-nobounds', b: 'floor', max: 1.5 },
  { goal: 'Plain Lloyd step against scikit-learn\'s, 1M × 32, k = 64', row: 'lloyd:1Mx32:k64', a: 'native-nobounds', b: 'sklearn-lloyd', max: null },
  { goal: 'Plain Lloyd step against scikit-learn\'s, 100k × 128, k = 1024', row: 'lloyd:100kx128:k1024', a: 'native-nobounds', b: 'sklearn-lloyd', max: null },
  { goal: 'Bounded path to convergence faster than scikit-learn\'s elkan, 1M × 32, k = 16', row: 'converge:1Mx32:k16', a: 'native', b: 'sklearn-elkan', max: 1 },
  { goal: 'To convergence against scikit-learn\'s elkan, 1M × 32, k = 64 (no bounds at this k)', row: 'converge:1Mx32:k64', a: 'native', b: 'sklearn-elkan', max: null },
  { goal: 'Whole-process fit ≤ 0.4 × scikit-learn\'s whole process, 1M × 32, k = 16, 20 iterations', row: 'whole:1Mx32:k16:it20', a: 'segtensor', b: 'sklearn', max: 0.4 },
  { goal: 'Whole-process fit faster than scikit-learn, 200k × 128, k = 1024, 10 iterations', row: 'whole:200kx128:k1024:it10', a: 'segtensor', b: 'sklearn', max: 1 },
  { goal: 'Whole-process fit faster than FAISS, 200k × 128, k = 1024, 10 iterations', row: 'whole:200kx128:k1024:it10', a: 'segtensor', b: 'faiss', max: 1 },
  { goal: 'Whole process against scikit-learn, 200k × 128, k = 256', row: 'whole:200kx128:k256:it10', a: 'segtensor', b: 'sklearn', max: null },
  { goal: 'Whole process against FAISS, 200k × 128, k = 256', row: 'whole:200kx128:k256:it10', a: 'segtensor', b: 'faiss', max: null },
  { goal: 'Whole process against scikit-learn, 200k × 128, k = 4096 (recorded)', row: 'whole:200kx128:k4096:it10', a: 'segtensor', b: 'sklearn', max: null },
  { goal: 'Whole process against FAISS, 200k × 128, k = 4096 (recorded)', row: 'whole:200kx128:k4096:it10', a: 'segtensor', b: 'faiss', max: null },
];

/** Inertia goals: |segtensor / scikit-learn − 1| ≤ bound, from the float64 scoring of each tool's centroids. */
const INERTIA_GOALS = [
  { goal: 'Inertia within 1 % of scikit-learn\'s k-means++ result, 200k × 128, k = 1024', row: 'whole:200kx128:k1024:it10', max: 0.01 },
  { goal: 'Inertia against scikit-learn\'s k-means++ result, 200k × 128, k = 4096', row: 'whole:200kx128:k4096:it10', max: null as number | null },
];

function main(): void {
  const files = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--out');
  if (!files.length) throw new Error('usage: node dist/bench/summary.js RESULTS.json [...] [--out FILE.md]');
  const rows = new Map<string, { row: Row; file: string }>();
  for (const f of files) {
    const j = JSON.parse(fs.readFileSync(f, 'utf8')) as { bench: string; rows: Row[] };
    if (j.bench !== 'like-for-like') throw new Error(`${f}: not a like-for-like results file (bench: ${j.bench})`);
    for (const r of j.rows) rows.set(r.id, { row: r, file: path.relative(ROOT, path.resolve(f)) });
  }
  const L = ['| goal | ratio, median [range over runs] | target | status | row (file) |', '|---|---|---|---|---|'];
  for (const g of GOALS) {
    const hit = rows.get(g.row);
    const q = hit?.row.ratios.find((r) => r.a === g.a && r.b === g.b);
    if (!hit || !q) {
      L.push(`| ${g.goal} | — | ${g.max === null ? 'reported' : `≤ ${g.max}`} | not measured | \`${g.row}\` |`);
      continue;
    }
    const status = g.max === null ? 'reported' : q.max <= g.max ? 'met' : q.median <= g.max ? 'met at the median only' : 'not met';
    L.push(`| ${g.goal} | ${g.a} / ${g.b}: ${fmtRatio(q)} | ${g.max === null ? '—' : `≤ ${g.max}`} | ${status} | \`${g.row}\` (${hit.file}) |`);
  }
  for (const g of INERTIA_GOALS) {
    const hit = rows.get(g.row);
    const s = hit?.row.tools.find((t) => t.tool === 'segtensor')?.inertia;
    const k = hit?.row.tools.find((t) => t.tool === 'sklearn')?.inertia;
    if (!hit || typeof s !== 'number' || typeof k !== 'number') {
      L.push(`| ${g.goal} | — | ${g.max === null ? 'reported' : `within ${g.max * 100} %`} | not measured | \`${g.row}\` |`);
      continue;
    }
    const rel = s / k - 1;
    const status = g.max === null ? 'reported' : Math.abs(rel) <= g.max ? 'met' : 'not met';
    L.push(`| ${g.goal} | segtensor / scikit-learn inertia − 1: ${(rel * 100).toFixed(2)} % (${fmt(s)} against ${fmt(k)}) | ${g.max === null ? '—' : `within ${g.max * 100} %`} | ${status} | \`${g.row}\` (${hit.file}) |`);
  }
  L.push('', 'Every ratio in the files, with its row:', '', '| row | ratio | median [range] |', '|---|---|---|');
  for (const { row, file } of rows.values()) for (const q of row.ratios) L.push(`| \`${row.id}\` (${file}) | ${q.label} | ${fmtRatio(q)} |`);
  L.push('', 'Commands of the rows:', '');
  for (const { row } of rows.values()) L.push(`- \`${row.id}\`: \`${row.command}\``);
  const md = L.join('\n') + '\n';
  const out = arg('out');
  if (out) fs.writeFileSync(out, md);
  console.log(md);
}

main();
