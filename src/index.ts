/**
 * segtensor's typed library API.
 *
 * @example
 * import { fitSegmentation, predictSegments } from 'segtensor';
 * const r = await fitSegmentation({ input: 'customers.parquet', k: 6, id: 'customer_id', out: 'out/' });
 * console.log(r.metrics.inertia, r.metrics.silhouette);
 *
 * @example Lower level: your own matrix, any backend.
 * import { KMeans, resolveBackend } from 'segtensor';
 * const be = await resolveBackend('auto');
 * const km = await new KMeans({ k: 8, seed: 1 }).fit(be, { data, nRows, nFeatures });
 */
import './engine/backends/index.js';

export type { Assignment, Backend, BackendName, DeviceMatrix, Matrix, SegmentSums } from './engine/backend.js';
export { BackendUnavailableError } from './engine/backend.js';
export { AUTO_ORDER, BACKEND_NAMES, getBackend, probeBackends, registerBackend, resolveBackend } from './engine/registry.js';
export { SegtensorError, type ErrorCode } from './errors.js';
export { calinskiHarabasz, daviesBouldin, sampleRows, silhouette } from './eval/metrics.js';
export { adjustedRandIndex } from './eval/agreement.js';
export { readTable, DTYPES, type DType, type ReadOptions } from './io/read-table.js';
export { ColumnTable, type Column, type ColumnType } from './io/table.js';
export { writeTable, type OutColumn } from './io/write-table.js';
export { atomicWrite } from './io/atomic.js';
export { KMeans, KMEANS_DEFAULTS, kmeansPlusPlus, lloydStep, type IterationStats, type KMeansOptions, type KMeansResult } from './models/kmeans.js';
export { Preprocessor, PREPROCESS_DEFAULTS, type PreprocessOptions, type PreprocessState, type ScaleKind, type ImputeKind } from './preprocess/preprocessor.js';
export { fitSegmentation, type FitJob, type FitMetrics, type FitResult } from './pipeline/fit.js';
export { predictSegments, type PredictJob } from './pipeline/predict.js';
export { openModel, type ModelFile } from './pipeline/model-file.js';
export { beginRun, openRun, type RunManifest } from './io/run-dir.js';
export { Random } from './util/random.js';
export { VERSION } from './version.js';
export { averagePrecision, binaryMetrics, brier, calibrationTable, chooseThreshold, confusion, logLoss, prf, rocAuc, segmentRisk, type BinaryMetrics, type CalibrationBin, type Confusion, type SegmentRisk } from './eval/classification.js';
export { ChurnNet, CHURN_NET_DEFAULTS, trainChurnNet, type ChurnNetFit, type ChurnNetOptions, type EpochStats, type LabelledMatrix } from './models/churn/mlp.js';
export { loadChurnModel, readChurnMeta, saveChurnModel, CHURN_FORMAT_VERSION, type ChurnModelMeta, type RiskBand } from './models/churn/model-dir.js';
export { parseLabel, stratifiedSplit, type BinaryLabel, type Split } from './models/churn/data.js';
export { churnTfjs } from './models/churn/tfjs.js';
export { evaluateChurn, predictChurn, trainChurn, type ChurnEvaluateJob, type ChurnPredictJob, type ChurnTrainJob, type ChurnTrainMetrics, type ChurnTrainResult } from './pipeline/churn.js';
export { buildFeatures, FEATURE_DEFAULTS, type FeatureJob, type FeatureMeta, type FeatureResult } from './features/index.js';
export { generatePopulation, SEGMENTS as POPULATION_SEGMENTS, POPULATION_DEFAULTS, type GenerateJob, type GenerateResult, type PopulationManifest, type PopulationOptions } from './datasets/population/index.js';
