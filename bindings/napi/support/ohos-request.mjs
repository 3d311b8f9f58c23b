// `node --import ./bindings/napi/support/ohos-request.mjs app.mjs` makes
// `import request from '@ohos.request'` work in app.mjs.
import { register } from 'node:module';

register('./ohos-request-hooks.mjs', import.meta.url);
