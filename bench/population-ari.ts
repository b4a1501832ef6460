/**
 * Segment recovery on a generated population (issue 4): the adjusted Rand index between a fit's
 * assignments and the generator's true segments, joined by customer id.
 *
 *   node dist/bench/population-ari.js --assignments bench/data/pop1m/fit/assignments.parquet \
 *     --truth bench/data/pop1m/truth.parquet [--id customer_id] [--segment segment]
 *
 * Reads .parquet, .csv or .arrow through src/io/read-table.ts. Every assignment must find its
 * customer in the truth table (an unmatched id is an error); truth rows without an assignment
 * (customers the feature table left out) are counted and printed, not scored. Prints one line
 * of text and one of JSON: `{ ari, rows, truthRows, unassigned, kFit, kTrue }`.
 */
import { parseArgs } from 'node:util';
import { adjustedRandIndex } from '../src/eval/agreement.js';
import { readTable } from '../src/io/read-table.js';
import type { Column, ColumnTable } from '../src/io/table.js';

/** The column's values as join keys or labels (ids and labels compare as text; null → null). */
function keys(t: ColumnTable, name: string, file: string): (string | null)[] {
  const c: Column | undefined = t.columns.find((x) => x.name === name);
  if (!c) throw new Error(`${file}: no column '${name}'; columns are ${t.columns.map((x) => x.name).join(', ')}`);
  if (c.type === 'bigint') return Array.from(c.values, (v, i) => (c.nulls?.[i] ? null : String(v)));
  if (c.type === 'string') return c.values.slice();
  if (c.type === 'other') throw new Error(`${file}: column '${name}' has type ${c.typeName}; ids and segments must be integers or text`);
  return Array.from(c.values, (v) => (Number.isNaN(v) ? null : String(v)));
}

async function main(): Promise<void> {
  const { values: o } = parseArgs({
    options: {
      assignments: { type: 'string' },
      truth: { type: 'string' },
      id: { type: 'string', default: 'customer_id' },
      segment: { type: 'string', default: 'segment' },
    },
  });
  if (!o.assignments || !o.truth) throw new Error('usage: population-ari --assignments <fit>/assignments.parquet --truth <population>/truth.parquet [--id customer_id] [--segment segment]');
  const [fit, truth] = [await readTable(o.assignments, '--assignments'), await readTable(o.truth, '--truth')];
  const truthOf = new Map<string, string>();
  const tIds = keys(truth, o.id!, o.truth);
  const tSeg = keys(truth, o.segment!, o.truth);
  tIds.forEach((id, i) => {
    if (id !== null && tSeg[i] !== null) truthOf.set(id, tSeg[i]!);
  });
  const fIds = keys(fit, o.id!, o.assignments);
  const fSeg = keys(fit, o.segment!, o.assignments);
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < fIds.length; i++) {
    const t = fIds[i] === null ? undefined : truthOf.get(fIds[i]!);
    if (t === undefined) throw new Error(`${o.assignments}: row ${i}: ${o.id} '${fIds[i]}' is not in ${o.truth}`);
    if (fSeg[i] === null) throw new Error(`${o.assignments}: row ${i}: null ${o.segment}`);
    a.push(fSeg[i]!);
    b.push(t);
  }
  const ari = adjustedRandIndex(a, b);
  const r = { ari, rows: a.length, truthRows: truthOf.size, unassigned: truthOf.size - a.length, kFit: new Set(a).size, kTrue: new Set(b).size };
  console.log(`ARI ${ari.toFixed(4)} over ${r.rows} customers (${r.kFit} fitted × ${r.kTrue} true segments; ${r.unassigned} truth rows without an assignment)`);
  console.log(JSON.stringify(r));
}

main().catch((e) => {
  console.error(`population-ari: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
