// Stops a dev process whose parent went away. A signal to `npm start` reaches npm, which forwards
// it to its `sh -c` child; sh dies of it without passing it on, so the process below it is
// re-parented instead of signalled. Polling the parent id (Node reads getppid() on every access,
// https://nodejs.org/api/process.html#processppid) notices that on every platform.
export function onParentExit(then: () => void, everyMs = 250): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    then();
  }, everyMs);
  timer.unref();
}
