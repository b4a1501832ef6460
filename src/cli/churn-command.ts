/** `segtensor churn train | evaluate | predict`: parse, call the library, print. @internal */
import { Command, Option } from 'commander';
import { BACKEND_NAMES } from '../engine/registry.js';
import type { BinaryMetrics, SegmentRisk } from '../eval/classification.js';
import { CHURN_NET_DEFAULTS } from '../models/churn/mlp.js';
import { DTYPES, type DType } from '../io/dtypes.js';
import { addPseudonymFlags, dtypesOption, floatOption, intOption, listOption, parseMemoryLimitOption } from './options.js';
import { progress } from './progress.js';

const notice = (p: ReturnType<typeof progress>) => (l: string) => p.message(l);

const f4 = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));

function metricsLines(name: string, m: BinaryMetrics): string {
  return `${name.padEnd(9)} ROC-AUC ${f4(m.rocAuc)}  PR-AUC ${f4(m.prAuc)}  log-loss ${f4(m.logLoss)}  Brier ${f4(m.brier)}  ` +
    `at p ≥ ${m.threshold.toFixed(4)}: precision ${f4(m.precision)} recall ${f4(m.recall)} F1 ${f4(m.f1)}`;
}

function confusionLines(m: BinaryMetrics): string {
  const c = m.confusion;
  return `confusion (rows actual, columns predicted):\n           stay   churn\n  stay  ${String(c.tn).padStart(7)} ${String(c.fp).padStart(7)}\n  churn ${String(c.fn).padStart(7)} ${String(c.tp).padStart(7)}`;
}

function calibrationLines(m: BinaryMetrics): string {
  const rows = m.calibration.filter((b) => b.count > 0).map((b) => `  [${b.lo.toFixed(1)}, ${b.hi.toFixed(1)}${b.hi >= 1 ? ']' : ')'}  ${String(b.count).padStart(8)}  ${b.meanPredicted!.toFixed(4)}  ${b.observedRate!.toFixed(4)}`);
  return ['calibration:  bin        rows  mean_p  actual', ...rows].join('\n');
}

function segmentLines(s: SegmentRisk[]): string {
  const w = Math.max(7, ...s.map((r) => r.segment.length));
  return [`${'segment'.padEnd(w)}      size  churn_rate  mean_p`, ...s.map((r) => `${r.segment.padEnd(w)}  ${String(r.size).padStart(8)}  ${f4(r.churnRate).padStart(10)}  ${r.meanProbability.toFixed(4)}`)].join('\n');
}

const backendOption = () =>
  new Option('--backend <name>', 'tfjs backend for the MLP; auto, native and cuda use the best tfjs backend available (tensorflow, else wasm, else cpu)').choices(BACKEND_NAMES).default('auto');

interface TrainFlags {
  input: string;
  label: string;
  out: string;
  positive?: string;
  id?: string;
  features?: string[];
  sensitive?: string[];
  seed: number;
  backend: string;
  hidden: number[];
  dropout: number;
  l2: number;
  learningRate: number;
  batchSize: number | 'auto';
  linearSkip: boolean;
  maxEpochs: number;
  patience: number;
  classWeight: 'balanced' | 'none';
  targetRecall?: number;
  segments?: string;
  segmentColumn?: string;
  dtypes?: Record<string, DType>;
  coerceInvalid?: boolean;
}

function hiddenOption(v: string): number[] {
  if (v.trim() === '' || v.trim() === 'none') return [];
  return listOption('--hidden')(v).map((s) => intOption('--hidden', 1, 4096)(s));
}

export function registerChurn(program: Command): void {
  const churn = program.command('churn').description('neural churn classifier: train, evaluate and score customers, joined with their segments');

  churn
    .command('train')
    .description('train the churn MLP and a logistic baseline; writes model.json, weights.bin, churn.json and metrics.json to --out')
    .requiredOption('-i, --input <table>', 'labelled customer table (.arrow/.arrows/.feather, .parquet, .csv)')
    .requiredOption('--label <col>', 'label column (two values)')
    .requiredOption('-o, --out <dir>', 'model directory (created if missing)')
    .option('--positive <value>', 'label value meaning churned (default: 1, true or yes, case-insensitive)')
    .option('--id <col>', 'customer id column (never a feature; checked for duplicates)')
    .option('--features <a,b,...>', 'feature columns (default: every column but --id, --label and --segment-column); text columns are one-hot encoded', listOption('--features'))
    .option('--sensitive <a,b,...>', 'columns never used as features (e.g. age,gender)', listOption('--sensitive'))
    .option('--seed <n>', 'seed of the split, initialisers, shuffling and dropout', intOption('--seed', 0, 2 ** 32 - 1), 0)
    .addOption(backendOption())
    .option('--hidden <a,b,...>', `hidden layer sizes ('none': logistic regression)`, hiddenOption, [...CHURN_NET_DEFAULTS.hiddenSizes])
    .option('--dropout <x>', 'dropout rate after each hidden layer, in [0, 1)', floatOption('--dropout', 0), CHURN_NET_DEFAULTS.dropout)
    .option('--l2 <x>', 'L2 penalty on the kernels', floatOption('--l2', 0), CHURN_NET_DEFAULTS.l2)
    .option('--learning-rate <x>', 'Adam learning rate', floatOption('--learning-rate', 0), CHURN_NET_DEFAULTS.learningRate)
    .option('--batch-size <n>', "rows per mini-batch, or 'auto' (training rows / 100 as a power of two in [64, 1024])", (v: string) => (v === 'auto' ? 'auto' : intOption('--batch-size', 1)(v)), CHURN_NET_DEFAULTS.batchSize)
    .option('--no-linear-skip', 'no linear term from the inputs added to the MLP logit (plain MLP)')
    .option('--max-epochs <n>', 'epochs at most', intOption('--max-epochs', 1), CHURN_NET_DEFAULTS.maxEpochs)
    .option('--patience <n>', 'early stopping: epochs without a validation-loss improvement', intOption('--patience', 1), CHURN_NET_DEFAULTS.patience)
    .addOption(new Option('--class-weight <kind>', 'balanced: weigh classes by n / (2·n_class); probabilities are prior-corrected back').choices(['balanced', 'none']).default('balanced'))
    .option('--target-recall <x>', 'pick the decision threshold reaching this validation recall (default: max F1)', floatOption('--target-recall', 0))
    .option('--segments <dir>', 'a `segtensor fit` output directory: report per-segment churn on the test split')
    .option('--segment-column <col>', 'or an input column holding the segment')
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')}), applied after reading whatever the format`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type as null, counted, instead of failing")
    .addHelpText('after', '\nExample:\n  segtensor churn train --input features.parquet --label churned --id customer_id --out churn/ --segments seg/')
    .action(async (f: TrainFlags, c: Command) => {
      const p = progress(Boolean(c.optsWithGlobals().quiet));
      const { trainChurn } = await import('../pipeline/churn.js');
      const r = await trainChurn({
        input: f.input,
        label: f.label,
        out: f.out,
        positive: f.positive ?? null,
        id: f.id ?? null,
        features: f.features ?? null,
        sensitive: f.sensitive ?? null,
        seed: f.seed,
        backend: f.backend,
        net: { hiddenSizes: f.hidden, dropout: f.dropout, l2: f.l2, learningRate: f.learningRate, batchSize: f.batchSize, linearSkip: f.linearSkip, maxEpochs: f.maxEpochs, patience: f.patience, classWeight: f.classWeight },
        targetRecall: f.targetRecall ?? null,
        segments: f.segments ?? null,
        segmentColumn: f.segmentColumn ?? null,
        dtypes: f.dtypes ?? null,
        coerceInvalid: f.coerceInvalid ?? false,
        log: notice(p),
        onEpoch: (m, s) => p.live(`${m} epoch ${s.epoch}: train loss ${s.trainLoss.toFixed(4)}, validation loss ${s.valLoss.toFixed(4)}, ${(s.ms / 1000).toFixed(1)} s`),
      });
      p.done();
      const m = r.metrics;
      console.log(`test split (${m.split.test} rows, ${m.split.positives[2]} churned):`);
      console.log(metricsLines('mlp', m.mlp));
      console.log(metricsLines('baseline', m.baseline));
      console.log(confusionLines(m.mlp));
      console.log(calibrationLines(m.mlp));
      if (m.segments) console.log(segmentLines(m.segments));
      console.log(`\nmlp ${m.mlp.epochs} epochs (best ${m.mlp.bestEpoch}), baseline ${m.baseline.epochs} (best ${m.baseline.bestEpoch}); backend tfjs ${m.backend}, train ${((m.timingsMs.train ?? 0) / 1000).toFixed(1)} s`);
      console.log(`wrote ${r.files.join(', ')}`);
      p.event('done', { outputs: r.files });
    });

  churn
    .command('evaluate')
    .description("metrics of a churn model on a labelled table, at the model's threshold")
    .requiredOption('-m, --model <dir>', 'directory written by `segtensor churn train`')
    .requiredOption('-i, --input <table>', 'labelled customer table')
    .requiredOption('--label <col>', 'label column')
    .option('--positive <value>', "label value meaning churned (default: the model's)")
    .option('--id <col>', "id column for joining --segments (default: the model's)")
    .option('--segments <dir>', 'a `segtensor fit` output directory: per-segment churn')
    .option('--segment-column <col>', 'or an input column holding the segment')
    .option('-o, --out <file.json>', 'also write the metrics as JSON')
    .addOption(backendOption())
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')}), applied after reading whatever the format`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type as null, counted, instead of failing")
    .action(async (f: { model: string; input: string; label: string; positive?: string; id?: string; segments?: string; segmentColumn?: string; out?: string; backend: string; dtypes?: Record<string, DType>; coerceInvalid?: boolean }, c: Command) => {
      const p = progress(Boolean(c.optsWithGlobals().quiet));
      const { evaluateChurn } = await import('../pipeline/churn.js');
      const r = await evaluateChurn({ ...f, log: notice(p) });
      const m = r.metrics;
      console.log(`${f.input} (${m.rows} rows, ${m.positives} churned):`);
      console.log(metricsLines('mlp', m));
      console.log(confusionLines(m));
      console.log(calibrationLines(m));
      if (m.segments) console.log(segmentLines(m.segments));
      if (f.out) console.log(`wrote ${f.out}`);
    });

  const predict = churn
    .command('predict')
    .description('score every customer: id, churn_probability, risk_band (and segment); with --segments, the per-segment risk table too')
    .requiredOption('-m, --model <dir>', 'directory written by `segtensor churn train`')
    .requiredOption('-i, --input <table>', 'customer table with the model\'s feature columns')
    .requiredOption('-o, --out <file>', 'scores table; format by extension (.arrow, .parquet, .csv)')
    .option('--id <col>', "id column (default: the model's, when present in the input)")
    .option('--segments <dir>', 'a `segtensor fit` run (assigned with its model.json unless its assignments come from this very file) or a `segtensor predict` output of this file')
    .addOption(backendOption())
    .option('--dtypes <col:type,...>', `declared column types (${DTYPES.join(', ')}), applied after reading whatever the format`, dtypesOption)
    .option('--coerce-invalid', "read cells that do not convert to their column's type as null, counted, instead of failing");
  predict.option('--memory-limit <size>', 'memory budget, e.g. 4GB: a table that would not fit in it in memory is read, scored and written in batches (output .arrow; not with --segments)', (v: string) => parseMemoryLimitOption(v));
  addPseudonymFlags(predict)
    .action(async (f: { model: string; input: string; out: string; id?: string; segments?: string; backend: string; dtypes?: Record<string, DType>; coerceInvalid?: boolean; memoryLimit?: number; pseudonymizeIds?: boolean; pseudonymKeyFile?: string }, c: Command) => {
      const p = progress(Boolean(c.optsWithGlobals().quiet));
      const { predictChurn, RISK_BAND_NAMES, segmentRiskTable } = await import('../pipeline/churn.js');
      const r = await predictChurn({ ...f, log: notice(p) });
      if (r.segments) console.log(segmentRiskTable(r.segments, [...RISK_BAND_NAMES]));
      console.log(`scored ${r.rows} customers; ${RISK_BAND_NAMES.map((b, i) => `${b} ${r.bands[i]}`).join(', ')}; wrote ${r.files.join(', ')}`);
      p.event('done', { outputs: r.files, rows: r.rows });
    });
}
