/**
 * The churn classifier: a multilayer perceptron in tfjs layers (ReLU hidden layers, dropout, L2 on
 * the kernels, one logit out, plus by default a linear term from the inputs — "wide & deep" — so it
 * contains the logistic model), and the logistic-regression baseline as the same network with no
 * hidden layer. Both train by the same loop: Adam on mini-batches gathered from the preprocessed
 * float32 matrix in an order shuffled by our seeded RNG, class-weighted binary cross-entropy, early
 * stopping on the validation loss with the best weights restored.
 *
 * Class weights and probabilities. With `classWeight: 'balanced'` (w_c = n / (2·n_c), as
 * scikit-learn's) the network learns the odds of the reweighted population, odds·w₁/w₀. The
 * reported probability undoes that: p = σ(z + b) with b = ln(w₀/w₁) (prior correction, King & Zeng
 * 2001), so ranking metrics are untouched and probabilities, log-loss, Brier and calibration refer
 * to the real base rate.
 *
 * Reproducibility: every initialiser gets an explicit seed, dropout masks are seeded per step from
 * the same RNG that shuffles, and nothing reads Math.random, so a seed reproduces a run on a given
 * backend.
 *
 * @example
 * const { tf } = await churnTfjs('auto');
 * const fit = await trainChurnNet(tf, train, val, { hiddenSizes: [64, 32], seed: 1 });
 * const p = await fit.net.predictProba(test.x); // Float64Array of P(churn)
 */
import type * as TFL from '@tensorflow/tfjs';
import type { Matrix } from '../../core/matrix.js';
import { SegtensorError } from '../../errors.js';
import { Random } from '../../util/random.js';
import type { Tf } from './tfjs.js';

/** Training options of the churn networks. Constraints are checked once, in {@link trainChurnNet}. */
export interface ChurnNetOptions {
  /** Units of each hidden ReLU layer, input side first; `[]` is logistic regression. Default `[64, 32]`. */
  hiddenSizes: number[];
  /** Dropout rate after each hidden layer, in [0, 1). Default 0.2. */
  dropout: number;
  /**
   * Wide & deep: add a linear term straight from the inputs to the network's logit, so the MLP
   * contains the logistic model and spends no hidden units on linear effects. Default true.
   */
  linearSkip: boolean;
  /** L2 penalty λ: λ·Σ‖W‖² over the kernels (not biases) is added to the mean batch loss, as Keras' `l2(λ)`. Default 1e-3. */
  l2: number;
  /** Adam learning rate. Default 1e-3. */
  learningRate: number;
  /**
   * Rows per mini-batch, or `auto`: the training rows / 100 rounded to a power of two, within
   * [64, 1024] (about 100 steps per epoch on small tables; 1024 from ~70,000 training rows, where a
   * step costs about the same as a 256-row one because per-op overhead dominates). Default `auto`.
   */
  batchSize: number | 'auto';
  /** Epochs at most. Default 100. */
  maxEpochs: number;
  /** Stop after this many epochs without a validation-loss improvement larger than `minDelta`. Default 8. */
  patience: number;
  /** Smallest decrease of the validation loss that counts as an improvement (absolute, nats). Default 1e-4. */
  minDelta: number;
  /** `balanced`: w_c = n / (2·n_c) on the training split; `none`: every row weighs 1. Default `balanced`. */
  classWeight: 'balanced' | 'none';
  /** Seed of initialisers, shuffling and dropout. Default 0. */
  seed: number;
}

export const CHURN_NET_DEFAULTS: Readonly<ChurnNetOptions> = Object.freeze({
  hiddenSizes: Object.freeze([64, 32]) as unknown as number[],
  dropout: 0.2,
  linearSkip: true,
  l2: 1e-3,
  learningRate: 1e-3,
  batchSize: 'auto' as const,
  maxEpochs: 100,
  patience: 8,
  minDelta: 1e-4,
  classWeight: 'balanced' as const,
  seed: 0,
});

/** A split: the preprocessed matrix and 0/1 labels, row for row. */
export interface LabelledMatrix {
  x: Matrix;
  y: Uint8Array;
}

/** One epoch: mean training loss (weighted BCE + L2), validation loss (weighted BCE), time. */
export interface EpochStats {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  ms: number;
}

export interface ChurnNetFit {
  net: ChurnNet;
  history: EpochStats[];
  /** 1-based epoch whose weights were kept. */
  bestEpoch: number;
  stoppedEarly: boolean;
  classWeights: [number, number];
  options: ChurnNetOptions;
}

/** Rows per inference chunk: bounds the widest activation (chunk × 64 floats) to a few MiB. */
const PREDICT_CHUNK = 32768;

/** A trained network plus the logit offset that turns its output into P(churn). */
export class ChurnNet {
  constructor(
    readonly tf: Tf,
    readonly model: TFL.LayersModel,
    /** Added to the logit before the sigmoid: ln(w₀/w₁), 0 without class weights. */
    readonly logitOffset: number,
    /** The tfjs backend it runs on; re-activated before inference (segmentation may have switched it). */
    readonly backend: string,
  ) {}

  get nFeatures(): number {
    return this.model.inputs[0].shape[1] as number;
  }

  /** Raw logits z (before the offset), batched. */
  async logits(x: Matrix): Promise<Float32Array> {
    const { tf } = this;
    if (x.nFeatures !== this.nFeatures) {
      throw new SegtensorError('BAD_INPUT', `churn model: expects ${this.nFeatures} features; got a matrix of ${x.nFeatures}`);
    }
    if (tf.getBackend() !== this.backend) await tf.setBackend(this.backend);
    const out = new Float32Array(x.nRows);
    const d = x.nFeatures;
    for (let s = 0; s < x.nRows; s += PREDICT_CHUNK) {
      const m = Math.min(PREDICT_CHUNK, x.nRows - s);
      const z = tf.tidy(() => this.model.predictOnBatch(tf.tensor2d(x.data.subarray(s * d, (s + m) * d), [m, d])) as TFL.Tensor);
      out.set((await z.data()) as Float32Array, s);
      z.dispose();
    }
    return out;
  }

  /** P(churn) per row, σ(z + logitOffset), in float64. */
  async predictProba(x: Matrix): Promise<Float64Array> {
    const z = await this.logits(x);
    const p = new Float64Array(z.length);
    for (let i = 0; i < z.length; i++) p[i] = sigmoid(z[i] + this.logitOffset);
    return p;
  }

  dispose(): void {
    this.model.dispose();
  }
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * Builds the (untrained) network with seeded initialisers: input → [Dense(h, ReLU) → Dropout]… →
 * Dense(1) `logit`, plus, with `linearSkip` and hidden layers, a Dense(1, no bias) `linear` straight
 * from the input added to it (`logit_sum`). @internal
 */
export function buildChurnNet(tf: Tf, nFeatures: number, o: Pick<ChurnNetOptions, 'hiddenSizes' | 'dropout' | 'linearSkip'>, seeds: Random): TFL.LayersModel {
  const input = tf.input({ shape: [nFeatures], name: 'features' });
  let h: TFL.SymbolicTensor = input;
  o.hiddenSizes.forEach((units, i) => {
    h = tf.layers
      .dense({
        units,
        activation: 'relu',
        // He initialisation suits ReLU; explicit seeds make a run reproducible.
        kernelInitializer: tf.initializers.heNormal({ seed: seeds.fork() }),
        biasInitializer: 'zeros',
        name: `hidden_${i + 1}`,
      })
      .apply(h) as TFL.SymbolicTensor;
    // Kept in the topology so model.json documents it; training applies its own seeded masks.
    if (o.dropout > 0) h = tf.layers.dropout({ rate: o.dropout, name: `dropout_${i + 1}` }).apply(h) as TFL.SymbolicTensor;
  });
  let z = tf.layers
    .dense({ units: 1, activation: 'linear', kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.fork() }), biasInitializer: 'zeros', name: 'logit' })
    .apply(h) as TFL.SymbolicTensor;
  if (o.linearSkip && o.hiddenSizes.length > 0) {
    const lin = tf.layers
      .dense({ units: 1, useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: seeds.fork() }), name: 'linear' })
      .apply(input) as TFL.SymbolicTensor;
    z = tf.layers.add({ name: 'logit_sum' }).apply([z, lin]) as TFL.SymbolicTensor;
  }
  return tf.model({ inputs: input, outputs: z, name: o.hiddenSizes.length ? 'churn_mlp' : 'churn_logistic' });
}

/**
 * The training-mode forward pass of {@link buildChurnNet}'s network: the same layers, with dropout
 * masks drawn from `seeds` (one per dropout layer) instead of tfjs's per-layer fixed seed, which
 * would repeat the same mask every step.
 */
function forwardTrain(tf: Tf, model: TFL.LayersModel, x: TFL.Tensor, rate: number, seeds: number[]): TFL.Tensor {
  let h = x;
  let k = 0;
  for (const layer of model.layers) {
    if (layer.name.startsWith('hidden_')) h = layer.apply(h) as TFL.Tensor;
    else if (layer.name.startsWith('dropout_')) h = tf.dropout(h, rate, undefined, seeds[k++]);
  }
  let z = model.getLayer('logit').apply(h) as TFL.Tensor;
  if (model.layers.some((l) => l.name === 'linear')) z = tf.add(z, model.getLayer('linear').apply(x) as TFL.Tensor);
  return z;
}

function checkOptions(o: ChurnNetOptions): void {
  const bad = (name: string, allowed: string, got: unknown): never => {
    throw new SegtensorError('BAD_OPTION', `churn model: '${name}' must be ${allowed}; got ${JSON.stringify(got)}`);
  };
  if (!Array.isArray(o.hiddenSizes) || o.hiddenSizes.some((h) => !Number.isInteger(h) || h < 1 || h > 4096)) {
    bad('hiddenSizes', 'a list of integers in [1, 4096]', o.hiddenSizes);
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) bad('dropout', 'in [0, 1)', o.dropout);
  if (!(o.l2 >= 0 && Number.isFinite(o.l2))) bad('l2', 'a finite number >= 0', o.l2);
  if (!(o.learningRate > 0 && Number.isFinite(o.learningRate))) bad('learningRate', 'a finite number > 0', o.learningRate);
  if (o.batchSize !== 'auto' && (!Number.isInteger(o.batchSize) || o.batchSize < 1)) bad('batchSize', "an integer >= 1 or 'auto'", o.batchSize);
  if (!Number.isInteger(o.maxEpochs) || o.maxEpochs < 1) bad('maxEpochs', 'an integer >= 1', o.maxEpochs);
  if (!Number.isInteger(o.patience) || o.patience < 1) bad('patience', 'an integer >= 1', o.patience);
  if (!(o.minDelta >= 0)) bad('minDelta', 'a number >= 0', o.minDelta);
  if (typeof o.linearSkip !== 'boolean') bad('linearSkip', 'true or false', o.linearSkip);
  if (o.classWeight !== 'balanced' && o.classWeight !== 'none') bad('classWeight', "'balanced' or 'none'", o.classWeight);
  if (!Number.isInteger(o.seed) || o.seed < 0) bad('seed', 'an integer >= 0', o.seed);
}

/** The `auto` batch size for `nTrain` training rows (see {@link ChurnNetOptions.batchSize}). */
export function autoBatchSize(nTrain: number): number {
  return Math.min(1024, Math.max(64, 2 ** Math.round(Math.log2(Math.max(1, nTrain / 100)))));
}

/** [w₀, w₁]: scikit-learn's `balanced` weights n / (2·n_c), or [1, 1]. */
export function classWeights(y: Uint8Array, kind: 'balanced' | 'none'): [number, number] {
  if (kind === 'none') return [1, 1];
  let n1 = 0;
  for (let i = 0; i < y.length; i++) n1 += y[i];
  const n0 = y.length - n1;
  return [y.length / (2 * n0), y.length / (2 * n1)];
}

/** State of one training run, allocated once by {@link trainChurnNet}. @internal */
export interface TrainState {
  tf: Tf;
  model: TFL.LayersModel;
  optimizer: TFL.Optimizer;
  /** Trainable variables, passed explicitly so no other model's variables are touched. */
  vars: TFL.Variable[];
  /** Options with the batch size resolved. */
  o: ChurnNetOptions & { batchSize: number };
  /** Kernels (not biases) for the L2 term. */
  kernels: TFL.Variable[];
  train: LabelledMatrix;
  weights: [number, number];
  rng: Random;
  /** in/out: the row order, reshuffled in place each epoch. */
  order: Int32Array;
  /** scratch: one batch of rows, labels and row weights, reused every step. */
  xBuf: Float32Array;
  yBuf: Float32Array;
  wBuf: Float32Array;
}

/**
 * Binary cross-entropy from logits, per row: softplus(z) − z·y = −[y ln σ(z) + (1−y) ln(1−σ(z))].
 * tfjs's softplus is the stable form (no overflow for large |z|), and it is three ops forward and
 * back, where the textbook max(z,0) − z·y + ln(1+e^(−|z|)) costs a third more time per step:
 * at these layer sizes a step is bound by per-op overhead, not arithmetic.
 */
function bceFromLogits(tf: Tf, z: TFL.Tensor, y: TFL.Tensor): TFL.Tensor {
  return tf.sub(tf.softplus(z), tf.mul(z, y));
}

/**
 * One epoch: a fresh seeded shuffle, then one Adam step per mini-batch gathered from the float32
 * matrix. Returns the mean training loss (read once per epoch, so no step waits on the device).
 * @internal
 */
export async function trainEpoch(s: TrainState): Promise<number> {
  const { tf, model, optimizer, train, o, rng, order, xBuf, yBuf, wBuf } = s;
  const n = train.x.nRows;
  const d = train.x.nFeatures;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  let total: TFL.Scalar = tf.scalar(0);
  let steps = 0;
  for (let start = 0; start < n; start += o.batchSize) {
    const m = Math.min(o.batchSize, n - start);
    for (let r = 0; r < m; r++) {
      const row = order[start + r];
      xBuf.set(train.x.data.subarray(row * d, row * d + d), r * d);
      const label = train.y[row];
      yBuf[r] = label;
      wBuf[r] = s.weights[label];
    }
    const dropSeeds = o.hiddenSizes.map(() => rng.nextUint32());
    const xb = tf.tensor2d(xBuf.subarray(0, m * d), [m, d]);
    const yb = tf.tensor1d(yBuf.subarray(0, m));
    const wb = tf.tensor1d(wBuf.subarray(0, m));
    const cost = optimizer.minimize(
      () => {
        const z = tf.reshape(forwardTrain(tf, model, xb, o.dropout, dropSeeds), [m]);
        let loss = tf.div(tf.sum(tf.mul(bceFromLogits(tf, z, yb), wb)), m) as TFL.Scalar;
        if (o.l2 > 0) for (const k of s.kernels) loss = tf.add(loss, tf.mul(o.l2, tf.sum(tf.square(k)))) as TFL.Scalar;
        return loss;
      },
      true,
      s.vars,
    )!;
    const next = tf.add(total, cost) as TFL.Scalar;
    total.dispose();
    cost.dispose();
    total = next;
    xb.dispose();
    yb.dispose();
    wb.dispose();
    steps++;
  }
  const mean = (await total.data())[0] / steps;
  total.dispose();
  return mean;
}

/** Mean weighted BCE of `net`'s raw logits on a split (the early-stopping criterion), in float64. */
async function weightedLoss(net: ChurnNet, split: LabelledMatrix, w: [number, number]): Promise<number> {
  const z = await net.logits(split.x);
  let s = 0;
  for (let i = 0; i < z.length; i++) {
    const zi = z[i];
    const y = split.y[i];
    s += w[y] * (Math.max(zi, 0) - zi * y + Math.log1p(Math.exp(-Math.abs(zi))));
  }
  return s / z.length;
}

/**
 * Builds the network, the optimiser and the batch buffers for {@link trainEpoch} (seeded from
 * `o.seed`). Exported for the epoch benchmark. @internal
 */
export function prepareTraining(tf: Tf, train: LabelledMatrix, options: ChurnNetOptions): TrainState {
  const o = { ...options, batchSize: options.batchSize === 'auto' ? autoBatchSize(train.x.nRows) : options.batchSize };
  const d = train.x.nFeatures;
  const rng = new Random(o.seed);
  const model = buildChurnNet(tf, d, o, new Random(rng.fork()));
  const vars = model.trainableWeights.map((w) => w.read() as TFL.Variable);
  // originalName: a second model in the process gets uniquified names ('hidden_1/kernel_1').
  const kernels = model.trainableWeights.filter((w) => w.originalName.endsWith('/kernel')).map((w) => w.read() as TFL.Variable);
  const bs = Math.min(o.batchSize, train.x.nRows);
  return {
    tf,
    model,
    optimizer: tf.train.adam(o.learningRate),
    vars,
    kernels,
    train,
    weights: classWeights(train.y, o.classWeight),
    o,
    rng,
    order: Int32Array.from({ length: train.x.nRows }, (_, i) => i),
    xBuf: new Float32Array(bs * d),
    yBuf: new Float32Array(bs),
    wBuf: new Float32Array(bs),
  };
}

/**
 * Trains a churn network on `train`, early-stopped on `val`, and returns it with the best
 * validation epoch's weights restored.
 */
export async function trainChurnNet(
  tf: Tf,
  train: LabelledMatrix,
  val: LabelledMatrix,
  options: Partial<ChurnNetOptions> = {},
  onEpoch?: (s: EpochStats) => void,
): Promise<ChurnNetFit> {
  const o: ChurnNetOptions = { ...CHURN_NET_DEFAULTS, ...options, hiddenSizes: [...(options.hiddenSizes ?? CHURN_NET_DEFAULTS.hiddenSizes)] };
  checkOptions(o);
  const d = train.x.nFeatures;
  if (val.x.nFeatures !== d) throw new SegtensorError('BAD_INPUT', `churn model: validation has ${val.x.nFeatures} features, training ${d}`);
  for (const [name, split] of [['training', train], ['validation', val]] as const) {
    let pos = 0;
    for (let i = 0; i < split.y.length; i++) pos += split.y[i];
    if (pos === 0 || pos === split.y.length) {
      throw new SegtensorError('BAD_INPUT', `churn model: the ${name} split has ${pos === 0 ? 'no positives' : 'no negatives'} (${split.y.length} rows)`);
    }
  }
  const state = prepareTraining(tf, train, o);
  const { model, optimizer, weights } = state;
  o.batchSize = state.o.batchSize; // recorded resolved
  const net = new ChurnNet(tf, model, Math.log(weights[0] / weights[1]), tf.getBackend());
  const history: EpochStats[] = [];
  let best = Infinity;
  let bestEpoch = 0;
  let bestWeights: { shape: number[]; data: Float32Array }[] = [];
  let stoppedEarly = false;
  try {
    for (let epoch = 1; epoch <= o.maxEpochs; epoch++) {
      const t0 = performance.now();
      const trainLoss = await trainEpoch(state);
      const valLoss = await weightedLoss(net, val, weights);
      const stats = { epoch, trainLoss, valLoss, ms: performance.now() - t0 };
      history.push(stats);
      onEpoch?.(stats);
      if (!Number.isFinite(trainLoss) || !Number.isFinite(valLoss)) {
        throw new SegtensorError('NON_FINITE', `churn model: the loss diverged at epoch ${epoch} (train ${trainLoss}, validation ${valLoss}); lower the learning rate`);
      }
      if (valLoss < best - o.minDelta) {
        best = valLoss;
        bestEpoch = epoch;
        // Host copies: the variables are updated in place by the next steps.
        bestWeights = await Promise.all(model.getWeights().map(async (w) => ({ shape: w.shape, data: (await w.data()) as Float32Array })));
      } else if (epoch - bestEpoch >= o.patience) {
        stoppedEarly = true;
        break;
      }
    }
    const restored = bestWeights.map((w) => tf.tensor(w.data, w.shape));
    model.setWeights(restored);
    restored.forEach((t) => t.dispose());
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
  return { net, history, bestEpoch, stoppedEarly, classWeights: weights, options: o };
}
