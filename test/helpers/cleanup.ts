/**
 * Cleanup that runs last-registered-first, like `defer`: clients registered after their server
 * are closed before it, so none is left retrying against a server that is already gone.
 */
type Hookable = { after(fn: () => unknown): void };

const stacks = new WeakMap<Hookable, (() => unknown)[]>();

export function onCleanup(t: Hookable, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const created: (() => unknown)[] = [];
    stack = created;
    stacks.set(t, created);
    t.after(async () => {
      while (created.length > 0) await created.pop()!();
    });
  }
  stack.push(fn);
}
