/**
 * apache-arrow, loaded from the single-file build the package ships (`Arrow.esnext.min.js`)
 * instead of its ES module tree: the same library and version, but importing the tree's ~200
 * files costs 170–210 ms per process on the development VM against 38 ms for the one file,
 * which is most of a short command's start-up. Every module of segtensor takes Arrow from here,
 * so all share one set of classes (`instanceof` holds across them); types still come from the
 * package's declarations.
 *
 * The single-file build leaves out only Node's stream adapters (`toNodeStream`,
 * `throughNode`), which segtensor does not use; `RecordBatchReader.from` still reads Node
 * readable streams and file handles.
 *
 * @example
 * import { RecordBatchReader } from './arrow.js';
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as A from 'apache-arrow';

const require = createRequire(import.meta.url);
const arrow = require(path.join(path.dirname(require.resolve('apache-arrow')), 'Arrow.esnext.min.js')) as typeof A;

export type { DataType, Float, Vector } from 'apache-arrow';
export const {
  Bool,
  DateDay,
  Dictionary,
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  Precision,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  TimestampMicrosecond,
  Type,
  Utf8,
  makeData,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} = arrow;
