// Module resolution hook: `import request from '@ohos.request'` loads this binding.
// ('@ohos.request' is not a valid npm package name, so Node cannot resolve it on its own.)
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const target = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'index.js')).href;

export async function resolve(specifier, context, next) {
  if (specifier === '@ohos.request') return { url: target, shortCircuit: true };
  return next(specifier, context);
}
