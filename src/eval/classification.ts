/**
 * Binary-classification metrics with exact algorithms and scikit-learn's definitions: ROC-AUC as
 * the Mann-Whitney U statistic with average ranks for ties (`roc_auc_score`), PR-AUC as average
 * precision (`average_precision_score`: Σ (Rₖ − Rₖ₋₁)·Pₖ over distinct thresholds, no
 * interpolation), log-loss (`log_loss`), Brier score (`brier_score_loss`), precision/recall/F1 and
 * the confusion matrix at `p ≥ threshold`, and a uniform-bin calibration table
 * (`calibration_curve(strategy='uniform')` of scikit-learn ≥ 1.3: bins [b/10, (b+1)/10), the last closed).
 * Labels are 0/1 bytes; scores are probabilities.
 *
 * @example
 * const m = binaryMetrics(y, p, 0.5); // { rocAuc, prAuc, logLoss, brier, precision, ... }
 */
import { SegtensorError } from '../errors.js';

export type Scores = Float64Array | Float32Array | number[];
export type Labels = Uint8Array | number[];

function counts(y: Labels): { pos: number; neg: number } {
  let pos = 0;
  for (let i = 0; i < y.length; i++) pos += y[i] ? 1 : 0;
  return { pos, neg: y.length - pos };
}

function checkLengths(owner: string, y: Labels, p: Scores): void {
  if (y.length !== p.length) throw new SegtensorError('BAD_INPUT', `${owner}: ${y.length} labels but ${p.length} scores`);
  if (y.length === 0) throw new SegtensorError('BAD_INPUT', `${owner}: no rows`);
}

/** Row indices ordered by score, descending (stable for ties). */
function orderDesc(p: Scores): Uint32Array {
  const idx = new Uint32Array(p.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  return idx.sort((a, b) => p[b] - p[a] || a - b);
}

/**
 * ROC-AUC = P(score of a random positive > score of a random negative) + ½·P(tie), computed exactly
 * as (R₊ − n₊(n₊+1)/2) / (n₊·n₋) with R₊ the sum of the positives' average ranks. Null with one class.
 */
export function rocAuc(y: Labels, p: Scores): number | null {
  checkLengths('rocAuc', y, p);
  const { pos, neg } = counts(y);
  if (pos === 0 || neg === 0) return null;
  const idx = orderDesc(p);
  const n = idx.length;
  // Ascending ranks 1..n; a run of tied scores gets the mean of its ranks.
  let rankSumPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    let tiedPos = 0;
    while (j < n && p[idx[j]] === p[idx[i]]) {
      if (y[idx[j]]) tiedPos++;
      j++;
    }
    // Descending positions i..j−1 are ascending ranks n−j+1 .. n−i; their mean:
    const avgRank = (n - j + 1 + (n - i)) / 2;
    rankSumPos += tiedPos * avgRank;
    i = j;
  }
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * The precision-recall curve's points: for each distinct score, from the highest down, the
 * threshold and the true and false positives among the rows scored at or above it (ties enter
 * together, as scikit-learn's `precision_recall_curve`).
 */
function* thresholdSteps(y: Labels, p: Scores): Generator<{ threshold: number; tp: number; fp: number }> {
  const idx = orderDesc(p);
  let tp = 0;
  let fp = 0;
  let i = 0;
  while (i < idx.length) {
    const threshold = p[idx[i]];
    while (i < idx.length && p[idx[i]] === threshold) {
      if (y[idx[i]]) tp++;
      else fp++;
      i++;
    }
    yield { threshold, tp, fp };
  }
}

/** Average precision as scikit-learn's `average_precision_score`. Null without positives. */
export function averagePrecision(y: Labels, p: Scores): number | null {
  checkLengths('averagePrecision', y, p);
  const { pos } = counts(y);
  if (pos === 0) return null;
  let prevRecall = 0;
  let ap = 0;
  for (const { tp, fp } of thresholdSteps(y, p)) {
    const recall = tp / pos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

/** Mean negative log-likelihood; probabilities clipped to [ε, 1 − ε] with ε = 2⁻⁵² (scikit-learn's `eps='auto'` for float64). */
export function logLoss(y: Labels, p: Scores): number {
  checkLengths('logLoss', y, p);
  const eps = Number.EPSILON;
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    const q = Math.min(1 - eps, Math.max(eps, p[i]));
    s -= y[i] ? Math.log(q) : Math.log(1 - q);
  }
  return s / y.length;
}

/** Mean squared error of the probabilities. */
export function brier(y: Labels, p: Scores): number {
  checkLengths('brier', y, p);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += (p[i] - (y[i] ? 1 : 0)) ** 2;
  return s / y.length;
}

/** Confusion matrix at `p ≥ threshold`, as scikit-learn lays it out: [[tn, fp], [fn, tp]]. */
export interface Confusion {
  tn: number;
  fp: number;
  fn: number;
  tp: number;
}

export function confusion(y: Labels, p: Scores, threshold: number): Confusion {
  checkLengths('confusion', y, p);
  const c = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (let i = 0; i < y.length; i++) {
    const hit = p[i] >= threshold;
    if (y[i]) hit ? c.tp++ : c.fn++;
    else hit ? c.fp++ : c.tn++;
  }
  return c;
}

/** Precision, recall and F1 of a confusion matrix; 0 where undefined (scikit-learn's `zero_division=0`). */
export function prf(c: Confusion): { precision: number; recall: number; f1: number } {
  const precision = c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : 0;
  const recall = c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/**
 * The decision threshold chosen on a validation split: the score maximising F1 (`max-f1`;
 * the highest such score on ties), or the highest score whose recall reaches `targetRecall`.
 * Candidates are the distinct scores (predict positive when p ≥ threshold).
 */
export function chooseThreshold(y: Labels, p: Scores, targetRecall: number | null = null): { threshold: number; precision: number; recall: number; f1: number } {
  checkLengths('chooseThreshold', y, p);
  if (targetRecall !== null && !(targetRecall > 0 && targetRecall <= 1)) {
    throw new SegtensorError('BAD_OPTION', `--target-recall must be in (0, 1]; got ${targetRecall}`);
  }
  const { pos } = counts(y);
  if (pos === 0) throw new SegtensorError('BAD_INPUT', 'chooseThreshold: the validation split has no positives');
  let best = { threshold: NaN, precision: 0, recall: 0, f1: -1 };
  for (const { threshold: s, tp, fp } of thresholdSteps(y, p)) {
    const precision = tp / (tp + fp);
    const recall = tp / pos;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    if (targetRecall !== null) {
      // Thresholds fall as we go, recall rises: the first that reaches the target is the highest.
      if (recall >= targetRecall - 1e-12) return { threshold: s, precision, recall, f1 };
    } else if (f1 > best.f1) best = { threshold: s, precision, recall, f1 };
  }
  return best;
}

/** One bin of the calibration table: probabilities in [lo, hi) (the last bin includes 1). */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean predicted probability in the bin; null when empty. */
  meanPredicted: number | null;
  /** Observed positive rate in the bin; null when empty. */
  observedRate: number | null;
}

/** `nBins` equal-width bins over [0, 1], as `calibration_curve(strategy='uniform')` (which drops the empty ones). */
export function calibrationTable(y: Labels, p: Scores, nBins = 10): CalibrationBin[] {
  checkLengths('calibrationTable', y, p);
  const n = new Float64Array(nBins);
  const sp = new Float64Array(nBins);
  const sy = new Float64Array(nBins);
  const step = 1 / nBins;
  for (let i = 0; i < y.length; i++) {
    // np.searchsorted(edges[1:-1], p, side='right') with numpy's linspace edges b·(1/nBins), so a
    // probability on an edge lands in the same bin as scikit-learn puts it.
    let bin = Math.min(nBins - 1, Math.max(0, Math.floor(p[i] * nBins)));
    while (bin + 1 < nBins && p[i] >= (bin + 1) * step) bin++;
    while (bin > 0 && p[i] < bin * step) bin--;
    n[bin]++;
    sp[bin] += p[i];
    sy[bin] += y[i] ? 1 : 0;
  }
  return Array.from({ length: nBins }, (_, b) => ({
    lo: b * step,
    hi: (b + 1) * step,
    count: n[b],
    meanPredicted: n[b] ? sp[b] / n[b] : null,
    observedRate: n[b] ? sy[b] / n[b] : null,
  }));
}

/** Every test-split metric, as written to metrics.json. */
export interface BinaryMetrics {
  rows: number;
  positives: number;
  rocAuc: number | null;
  prAuc: number | null;
  logLoss: number;
  brier: number;
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
  confusion: Confusion;
  calibration: CalibrationBin[];
}

export function binaryMetrics(y: Labels, p: Scores, threshold: number): BinaryMetrics {
  const c = confusion(y, p, threshold);
  return {
    rows: y.length,
    positives: c.tp + c.fn,
    rocAuc: rocAuc(y, p),
    prAuc: averagePrecision(y, p),
    logLoss: logLoss(y, p),
    brier: brier(y, p),
    threshold,
    ...prf(c),
    confusion: c,
    calibration: calibrationTable(y, p),
  };
}

/** Per segment: size, actual churn rate (when labels are known) and mean predicted probability. */
export interface SegmentRisk {
  segment: string;
  size: number;
  /** Observed positive rate; null without labels. */
  churnRate: number | null;
  meanProbability: number;
}

/**
 * Groups rows by `segment` (numbers or strings; the order is numeric where every key is a number).
 * `y` may be null (scoring new customers).
 */
export function segmentRisk(segment: ArrayLike<number | string | null>, p: Scores, y: Labels | null): SegmentRisk[] {
  const acc = new Map<string, { n: number; sp: number; sy: number }>();
  for (let i = 0; i < p.length; i++) {
    const key = String(segment[i] ?? 'null');
    let a = acc.get(key);
    if (!a) acc.set(key, (a = { n: 0, sp: 0, sy: 0 }));
    a.n++;
    a.sp += p[i];
    if (y) a.sy += y[i] ? 1 : 0;
  }
  const keys = [...acc.keys()];
  const numeric = keys.every((k) => k !== '' && Number.isFinite(Number(k)));
  keys.sort((a, b) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0));
  return keys.map((k) => {
    const a = acc.get(k)!;
    return { segment: k, size: a.n, churnRate: y ? a.sy / a.n : null, meanProbability: a.sp / a.n };
  });
}
