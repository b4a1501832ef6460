/**
 * Registers every backend segtensor ships with the registry. Importing this module is enough.
 * @internal
 */
import { registerBackend } from '../registry.js';
import { createCudaBackend } from './cuda.js';
import { createNativeBackend } from './native.js';
import { createTfCpuBackend, createTfNodeBackend, createTfWasmBackend } from './tfjs.js';

registerBackend('cpu', createTfCpuBackend);
registerBackend('wasm', createTfWasmBackend);
registerBackend('tensorflow', createTfNodeBackend);
registerBackend('native', () => createNativeBackend());
registerBackend('cuda', createCudaBackend);
