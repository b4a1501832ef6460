/**
 * Registers every backend segtensor ships with the registry. Importing this module is enough.
 * @internal
 */
import { registerBackend } from '../registry.js';
import { createTfCpuBackend, createTfNodeBackend, createTfWasmBackend } from './tfjs.js';

registerBackend('cpu', createTfCpuBackend);
registerBackend('wasm', createTfWasmBackend);
registerBackend('tensorflow', createTfNodeBackend);
