// (a) Pass-through: no authentication, just forward to the origin. The baseline every other
// service's cost is measured against.
import { forward } from './forward.mjs';

export default {
  fetch(request, env) {
    return forward(request, env);
  },
};
