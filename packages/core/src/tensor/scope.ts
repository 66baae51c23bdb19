/**
 * Scopes collect the tensors made while a function runs, so that transformations (grad, tidy) can
 * dispose the intermediates and keep only what the function returns.
 * @module
 */
import { frames as stack, type Tensor } from './tensor.js';

/** Whether a tensor is still needed by a pending backward pass (set by autodiff/tape.ts). */
let held: (t: Tensor) => boolean = () => false;

/** @internal Lets the tape tell scopes which tensors its recorded ops still need. */
export function setHeldPredicate(f: (t: Tensor) => boolean): void {
  held = f;
}

/**
 * Runs `fn` and disposes every tensor made while it ran except those in `keep(result)` (found by
 * walking arrays and plain objects). Kept tensors move to the enclosing scope, if any.
 */
export function runScoped<R>(fn: () => R, keep: (r: R) => Iterable<Tensor> = (r) => tensorsIn(r)): R {
  const [result, made] = frame(fn);
  // Tensors an enclosing gradient still needs (a grad of grad records the inner one's ops) survive
  // too, and move to the enclosing scope with what the function returned.
  const kept = new Set(keep(result));
  const parent = stack[stack.length - 1];
  for (const t of made) {
    if (kept.has(t) || held(t)) parent?.push(t);
    else t.dispose();
  }
  return result;
}

/** Runs `fn` in a new scope frame; if it throws, everything it made is disposed. */
function frame<R>(fn: () => R): [R, Tensor[]] {
  const made: Tensor[] = [];
  stack.push(made);
  try {
    return [fn(), made];
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  } finally {
    stack.pop();
  }
}

/**
 * Runs `fn` and returns its result with the tensors made while it ran, disposing none. The made
 * tensors stay registered with the enclosing scope, which disposes them if it is not told to keep them.
 */
export function collect<R>(fn: () => R): [R, Tensor[]] {
  const [result, made] = frame(fn);
  stack[stack.length - 1]?.push(...made);
  return [result, made];
}

/** Every tensor reachable in arrays and plain objects. */
export function* tensorsIn(x: unknown, seen = new Set<unknown>()): Generator<Tensor> {
  if (x === null || typeof x !== 'object' || seen.has(x)) return;
  seen.add(x);
  if (isTensor(x)) {
    yield x;
    return;
  }
  if (Array.isArray(x)) {
    for (const v of x) yield* tensorsIn(v, seen);
    return;
  }
  if (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null) {
    for (const v of Object.values(x)) yield* tensorsIn(v, seen);
  }
}

function isTensor(x: object): x is Tensor {
  return typeof (x as Tensor).dispose === 'function' && Array.isArray((x as Tensor).shape) && typeof (x as Tensor).dtype === 'string';
}
