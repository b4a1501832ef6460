/** The id column: passed through to outputs unchanged, checked for duplicates. @internal */
import { SegtensorError } from '../errors.js';
import type { ColumnTable } from '../io/table.js';
import type { OutColumn } from '../io/write-table.js';

/** The id column's values as an output column; with no id column, the 0-based row number as `row`. */
export function idColumn(table: ColumnTable, name: string | null, checkUnique: boolean): OutColumn {
  if (!name) return { name: 'row', values: BigInt64Array.from({ length: table.nRows }, (_, i) => BigInt(i)) };
  const c = table.column(name);
  let values: OutColumn['values'];
  if (c.type === 'string' || c.type === 'bigint' || c.type === 'number') values = c.values;
  else throw new SegtensorError('BAD_INPUT', `${table.path}: id column '${name}' has unsupported type ${c.type === 'other' ? c.typeName : c.type}`);
  if (checkUnique) {
    const seen = new Set<unknown>();
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || (typeof v === 'number' && Number.isNaN(v))) {
        throw new SegtensorError('BAD_INPUT', `${table.path}: id column '${name}' is null at row ${i}`);
      }
      if (seen.has(v)) {
        throw new SegtensorError('DUPLICATE_ID', `${table.path}: id column '${name}' repeats '${String(v)}' at row ${i}`);
      }
      seen.add(v);
    }
  }
  return { name, values };
}
