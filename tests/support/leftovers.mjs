// Whatever a test file started and did not stop is stopped when the file's tests are done.
//
// A `before` hook that times out (a busy machine) leaves the start it was waiting for running:
// the workerd process, the provider and the origin it brings up later keep the file's process
// alive, and the file hangs until the runner's outer timeout kills it, failing every file after
// it. Each server of tests/support registers here when it starts and unregisters when it is
// closed; a root-level `after` (one per test file, as each file runs in its own process) closes
// the rest, and anything that finishes starting after that is closed at once.
import { after } from 'node:test';

const open = new Set();
let finished = false;

after(async () => {
  finished = true;
  const rest = [...open];
  open.clear();
  await Promise.allSettled(rest.map((c) => c.close()));
});

/** Registers `closable` ({ close() }) until `untrack`; closes it at once if the file is done. */
export function track(closable) {
  if (finished) {
    Promise.resolve().then(() => closable.close()).catch(() => {});
    return closable;
  }
  open.add(closable);
  return closable;
}

export function untrack(closable) {
  open.delete(closable);
}
