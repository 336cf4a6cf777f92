// (a') Diagnostic: pass-through that also writes one JSON log line per request, as edgeguard does
// (its "decision" line), to show what that line costs in workerd.
import { forward } from './forward.mjs';

export default {
  fetch(request, env) {
    const url = new URL(request.url);
    console.log(JSON.stringify({ event: 'decision', reason: 'forwarded', status: null, method: request.method, path: url.pathname, sub: 'bench-user-1' }));
    return forward(request, env);
  },
};
