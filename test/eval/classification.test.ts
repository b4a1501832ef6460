/**
 * Churn classification metrics (issue 5): hand-computed cases, then scikit-learn's values on
 * fixtures with many tied scores (test/fixtures/make-churn-metric-fixtures.py).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  averagePrecision,
  binaryMetrics,
  brier,
  calibrationTable,
  chooseThreshold,
  confusion,
  logLoss,
  prf,
  rocAuc,
  segmentRisk,
} from '../../src/eval/classification.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

describe('hand-computed cases', () => {
  it('ROC-AUC counts a tie between a positive and a negative as one half', () => {
    // Positives 0.8, 0.4; negatives 0.4, 0.1. Pairs: (0.8>0.4) 1, (0.8>0.1) 1, (0.4=0.4) ½, (0.4>0.1) 1 → 3.5/4.
    expect(rocAuc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1])).toBe(0.875);
    expect(rocAuc([1, 0], [0.3, 0.3])).toBe(0.5);
    expect(rocAuc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4])).toBe(0.75);
    expect(rocAuc([1, 1], [0.1, 0.2])).toBeNull();
  });

  it('average precision sums precision at each distinct threshold, weighted by the recall gained', () => {
    // Descending: 0.9(+) 0.8(−) 0.7(+) 0.1(−): recall ½ at precision 1, then recall 1 at precision 2/3.
    expect(averagePrecision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])).toBeCloseTo(0.5 * 1 + 0.5 * (2 / 3), 14);
    // A tie between a positive and a negative at the top counts as one threshold: P = ½, R = ½; then P = 2/3, R = 1.
    expect(averagePrecision([1, 0, 1], [0.9, 0.9, 0.5])).toBeCloseTo(0.5 * 0.5 + 0.5 * (2 / 3), 14);
  });

  it('log-loss and Brier', () => {
    expect(logLoss([1, 0], [0.8, 0.4])).toBeCloseTo(-(Math.log(0.8) + Math.log(0.6)) / 2, 14);
    expect(brier([1, 0], [0.8, 0.4])).toBeCloseTo((0.04 + 0.16) / 2, 14);
    expect(Number.isFinite(logLoss([1], [0]))).toBe(true); // clipped, as scikit-learn
  });

  it('confusion matrix, precision, recall and F1 at p ≥ threshold', () => {
    const c = confusion([1, 1, 0, 0, 1], [0.9, 0.5, 0.5, 0.2, 0.1], 0.5);
    expect(c).toEqual({ tn: 1, fp: 1, fn: 1, tp: 2 });
    const m = prf(c);
    expect(m.precision).toBeCloseTo(2 / 3, 14);
    expect(m.recall).toBeCloseTo(2 / 3, 14);
    expect(m.f1).toBeCloseTo(2 / 3, 14);
    expect(prf({ tn: 3, fp: 0, fn: 2, tp: 0 })).toEqual({ precision: 0, recall: 0, f1: 0 });
  });

  it('chooses the max-F1 threshold, or the highest threshold reaching a target recall', () => {
    const y = [1, 1, 0, 1, 0, 0];
    const p = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2];
    // t=0.9: F1 .5; t=0.8: 0.8; t=0.7: 2/3·... = 0.571·; t=0.6: P .75 R 1 → 0.857; t=0.3: 0.75; t=0.2: 0.667.
    expect(chooseThreshold(y, p).threshold).toBe(0.6);
    expect(chooseThreshold(y, p).f1).toBeCloseTo(6 / 7, 14);
    expect(chooseThreshold(y, p, 0.6).threshold).toBe(0.8);
    expect(chooseThreshold(y, p, 1).threshold).toBe(0.6);
  });

  it('calibration bins are [b/10, (b+1)/10) and the last includes 1', () => {
    const t = calibrationTable([0, 1, 1, 0, 1], [0.05, 0.1, 0.15, 0.95, 1]);
    expect(t).toHaveLength(10);
    expect(t[0]).toMatchObject({ count: 1, observedRate: 0 });
    expect(t[1]).toMatchObject({ count: 2, observedRate: 1 });
    expect(t[1].meanPredicted).toBeCloseTo(0.125, 14);
    expect(t[9]).toMatchObject({ count: 2, observedRate: 0.5 });
    expect(t[5]).toMatchObject({ count: 0, meanPredicted: null, observedRate: null });
  });

  it('per segment: size, churn rate and mean probability, segments in numeric order', () => {
    const r = segmentRisk([2, 0, 2, 10], [0.5, 0.1, 0.3, 0.9], [1, 0, 0, 1]);
    expect(r.map((s) => s.segment)).toEqual(['0', '2', '10']);
    expect(r[1]).toEqual({ segment: '2', size: 2, churnRate: 0.5, meanProbability: 0.4 });
    expect(segmentRisk(['b', 'a'], [0.2, 0.4], null)[0]).toEqual({ segment: 'a', size: 1, churnRate: null, meanProbability: 0.4 });
  });
});

describe('agreement with scikit-learn', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(root, 'test/fixtures/sklearn-churn-metrics.json'), 'utf8'));
  for (const c of fx.cases as any[]) {
    it(`${c.name} (${c.y.length} rows)`, () => {
      const y = Uint8Array.from(c.y);
      const p = Float64Array.from(c.p);
      const m = binaryMetrics(y, p, c.threshold);
      expect(m.rocAuc).toBeCloseTo(c.rocAuc, 12);
      expect(m.prAuc).toBeCloseTo(c.prAuc, 12);
      expect(m.logLoss).toBeCloseTo(c.logLoss, 10);
      expect(m.brier).toBeCloseTo(c.brier, 12);
      expect(m.precision).toBeCloseTo(c.precision, 12);
      expect(m.recall).toBeCloseTo(c.recall, 12);
      expect(m.f1).toBeCloseTo(c.f1, 12);
      expect(m.confusion).toEqual(c.confusion);
      const bins = m.calibration.filter((b) => b.count > 0);
      expect(bins.map((b) => b.observedRate)).toEqual(c.calibration.observedRate.map((v: number) => expect.closeTo(v, 12)));
      expect(bins.map((b) => b.meanPredicted)).toEqual(c.calibration.meanPredicted.map((v: number) => expect.closeTo(v, 12)));
    });
  }
});
