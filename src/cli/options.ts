/** Option parsers that turn a bad value into a one-line error naming the option. @internal */
import { InvalidArgumentError } from 'commander';
import { DTYPES, type DType } from '../io/dtypes.js';

export function intOption(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^[+-]?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}]; got '${v}'`);
    }
    return n;
  };
}

export function floatOption(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number >= ${min}; got '${v}'`);
    return n;
  };
}

/** A number > 0. */
export function positiveOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0${name === '--eps' ? ' or auto' : ''}; got '${v}'`);
    return n;
  };
}

/** `--pca`: a component count (an integer >= 1) or a variance share in (0, 1). */
export function pcaOption(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || (n >= 1 && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`--pca must be a number of components (an integer >= 1) or a share of variance in (0, 1); got '${v}'`);
  }
  return n;
}

export function listOption(name: string) {
  return (v: string): string[] => {
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) throw new InvalidArgumentError(`${name} must be a comma-separated list of column names; got '${v}'`);
    return parts;
  };
}

export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (v: string): T => {
    if (!choices.includes(v as T)) throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}; got '${v}'`);
    return v as T;
  };
}

/** `--dtypes col:type,...` as a map; the type is one of {@link DTYPES}. */
export function dtypesOption(v: string): Record<string, DType> {
  const out: Record<string, DType> = {};
  for (const part of v.split(',')) {
    const at = part.lastIndexOf(':');
    const name = part.slice(0, at).trim();
    const type = part.slice(at + 1).trim() as DType;
    if (at < 0 || name === '' || !DTYPES.includes(type)) {
      throw new InvalidArgumentError(`--dtypes must be a comma-separated list of column:type with type one of ${DTYPES.join(', ')}; got '${part}'`);
    }
    if (name in out) throw new InvalidArgumentError(`--dtypes names '${name}' twice`);
    out[name] = type;
  }
  return out;
}

/**
 * `--pseudonymize-ids` and `--pseudonym-key-file` (src/util/pseudonym.ts), for every command
 * that writes customer ids.
 */
export function addPseudonymFlags<C extends { option(flags: string, description: string): C }>(cmd: C): C {
  return cmd
    .option(
      '--pseudonymize-ids',
      'replace customer ids by a keyed hash (HMAC-SHA-256, 32 hex digits) where they are read, so no output, manifest or log carries a raw id; the key comes from the SEGTENSOR_PSEUDONYM_KEY environment variable or --pseudonym-key-file (>= 16 bytes, never written anywhere); the same key gives the same pseudonyms every night',
    )
    .option('--pseudonym-key-file <file>', 'with --pseudonymize-ids: a file holding the key (one trailing newline ignored)');
}

/** `--memory-limit 4GB` (also 512MB, 1.5GiB, or bytes) as bytes; at least 1MB. */
export function parseMemoryLimitOption(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$/i.exec(v);
  const unit = (m?.[2] ?? 'B').toUpperCase().replace(/I?B$/, '');
  const scale = ({ '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 } as Record<string, number>)[unit];
  const bytes = m ? Number(m[1]) * scale : NaN;
  if (!(bytes >= 2 ** 20)) throw new InvalidArgumentError(`--memory-limit must be a size of at least 1MB, such as 512MB or 4GB; got '${v}'`);
  return bytes;
}
