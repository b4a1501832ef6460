/**
 * A churn model directory, saved and loaded without @tensorflow/tfjs-node:
 *
 * | file | content |
 * |---|---|
 * | `model.json` | the tfjs layers topology and weights manifest (tfjs's own `layers-model` format) |
 * | `weights.bin` | the float32 weights, in manifest order |
 * | `churn.json` | segtensor's metadata: format version, label, id, fitted preprocessing, logit offset, threshold, risk bands, options |
 *
 * The tfjs IO handler below reads and writes the first two with `fs`; `churn.json` is written last,
 * so a directory whose `churn.json` exists is complete. Every file is written atomically.
 *
 * @example
 * await saveChurnModel('out/', net, meta);
 * const { net, meta } = await loadChurnModel('out/', tf);
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as TFL from '@tensorflow/tfjs';
import { SegtensorError } from '../../errors.js';
import { atomicWrite } from '../../io/atomic.js';
import type { PreprocessState } from '../../preprocess/preprocessor.js';
import { ChurnNet, type ChurnNetOptions } from './mlp.js';
import type { Tf } from './tfjs.js';

export const CHURN_FORMAT = 'segtensor-churn';
export const CHURN_FORMAT_VERSION = 1;
const TOPOLOGY_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';
const META_FILE = 'churn.json';

/** A risk band: P(churn) in [from, to). */
export interface RiskBand {
  name: string;
  from: number;
  to: number;
}

/** churn.json. */
export interface ChurnModelMeta {
  format: typeof CHURN_FORMAT;
  formatVersion: number;
  createdAt: string;
  segtensorVersion: string;
  input: { path: string; rows: number };
  label: { column: string; positive: string; negative: string | null };
  idColumn: string | null;
  featureNames: string[];
  preprocessing: PreprocessState;
  /** Added to the network's logit before the sigmoid (prior correction for class weights). */
  logitOffset: number;
  classWeights: [number, number];
  /** Churn rate of the training split. */
  baseRate: number;
  threshold: { value: number; rule: 'max-f1' | 'target-recall'; targetRecall: number | null; validation: { precision: number; recall: number; f1: number } };
  /** Bands by P(churn); `rule` says how the edges were set. */
  riskBands: { bands: RiskBand[]; rule: string };
  network: { topology: string; weights: string; options: ChurnNetOptions; bestEpoch: number; epochs: number };
  split: { fractions: [number, number, number]; train: number; validation: number; test: number; seed: number };
  backend: string;
  seed: number;
}

/** A tfjs IO handler over `<dir>/model.json` + `<dir>/weights.bin`. @internal */
export function dirHandler(tf: Tf, dir: string): TFL.io.IOHandler {
  const topo = path.join(dir, TOPOLOGY_FILE);
  const bin = path.join(dir, WEIGHTS_FILE);
  return {
    async save(a: TFL.io.ModelArtifacts): Promise<TFL.io.SaveResult> {
      if (!a.weightData || !a.weightSpecs) throw new Error('churn model: tfjs gave no weights to save');
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData));
      atomicWrite(bin, weights);
      const json = {
        format: a.format ?? 'layers-model',
        generatedBy: a.generatedBy,
        convertedBy: a.convertedBy ?? null,
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: a.weightSpecs }],
      };
      atomicWrite(topo, JSON.stringify(json) + '\n');
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    },
    async load(): Promise<TFL.io.ModelArtifacts> {
      const json = readJson(topo) as { format?: string; modelTopology?: object; weightsManifest?: { paths: string[]; weights: TFL.io.WeightsManifestEntry[] }[]; generatedBy?: string; convertedBy?: string };
      if (json.format !== 'layers-model' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new SegtensorError('CORRUPT_FILE', `${topo}: not a tfjs layers model (format '${String(json.format)}')`);
      }
      const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
      let buf: Buffer;
      try {
        buf = fs.readFileSync(bin);
      } catch {
        throw new SegtensorError('FILE_NOT_FOUND', `${bin}: missing; the model directory is incomplete`);
      }
      const expected = weightSpecs.reduce((s, w) => s + 4 * w.shape.reduce((p, k) => p * k, 1), 0);
      if (buf.byteLength !== expected) {
        throw new SegtensorError('CORRUPT_FILE', `${bin}: ${buf.byteLength} bytes, the manifest in ${topo} describes ${expected}`);
      }
      return {
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: new Uint8Array(buf).buffer as ArrayBuffer,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
      };
    },
  };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new SegtensorError('FILE_NOT_FOUND', `${file}: missing; the model directory is incomplete`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SegtensorError('CORRUPT_FILE', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Writes the network (model.json, weights.bin) and then churn.json into `dir`. */
export async function saveChurnModel(dir: string, net: ChurnNet, meta: ChurnModelMeta): Promise<string[]> {
  await net.model.save(dirHandler(net.tf, dir));
  const metaFile = path.join(dir, META_FILE);
  atomicWrite(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return [path.join(dir, TOPOLOGY_FILE), path.join(dir, WEIGHTS_FILE), metaFile];
}

/** Reads and checks `<dir>/churn.json` (format and version) without loading the network. */
export function readChurnMeta(dir: string, option = '--model'): ChurnModelMeta {
  const file = path.join(dir, META_FILE);
  if (!fs.existsSync(file)) {
    const hint = fs.existsSync(path.join(dir, 'model.json')) ? ' (is it a `segtensor fit` output? churn models come from `segtensor churn train`)' : '';
    throw new SegtensorError('FILE_NOT_FOUND', `${option} '${dir}': no churn model (${file} is missing)${hint}`);
  }
  const m = readJson(file) as ChurnModelMeta;
  if (m?.format !== CHURN_FORMAT) throw new SegtensorError('MODEL_VERSION', `${file}: not a segtensor churn model (format '${String(m?.format)}')`);
  if (m.formatVersion !== CHURN_FORMAT_VERSION) {
    throw new SegtensorError(
      'MODEL_VERSION',
      `${file}: churn model format version ${m.formatVersion}, this segtensor reads version ${CHURN_FORMAT_VERSION}; retrain the model`,
    );
  }
  return m;
}

/** Loads a churn model directory onto the active tfjs backend. */
export async function loadChurnModel(dir: string, tf: Tf, backend: string, option = '--model'): Promise<{ net: ChurnNet; meta: ChurnModelMeta }> {
  const meta = readChurnMeta(dir, option);
  let model: TFL.LayersModel;
  try {
    model = await tf.loadLayersModel(dirHandler(tf, dir));
  } catch (e) {
    if (e instanceof SegtensorError) throw e;
    throw new SegtensorError('CORRUPT_FILE', `${path.join(dir, TOPOLOGY_FILE)}: cannot load the network (${(e as Error).message.split('\n')[0]})`);
  }
  const net = new ChurnNet(tf, model, meta.logitOffset, backend);
  if (net.nFeatures !== meta.featureNames.length) {
    net.dispose();
    throw new SegtensorError('CORRUPT_FILE', `${dir}: the network takes ${net.nFeatures} features, churn.json lists ${meta.featureNames.length}`);
  }
  return { net, meta };
}
