/**
 * The tape: every differentiable op calls `op(...)`, which runs the forward kernel and, when a
 * gradient is being taken through one of its inputs, records the op's VJP. Tapes nest (grad of
 * grad): a VJP is written with public ops, so while an inner gradient is computed its ops are
 * recorded on the outer tapes.
 * @module
 */
import { Tensor } from '../tensor/tensor.js';
import { setHeldPredicate } from '../tensor/scope.js';

/**
 * A VJP: from the cotangent of the output to one cotangent per input (null: no gradient). `needs`
 * says which inputs the running backward pass wants, so a VJP may skip the others' work.
 */
export type Vjp = (g: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

interface Node {
  inputs: readonly (Tensor | null)[];
  output: Tensor;
  vjp: Vjp;
  /** Every tensor the VJP may read: inputs, output and any extra it saved. */
  saved: Tensor[];
}

/** How many nodes on live tapes save each tensor: scopes must not dispose those. */
const holds = new Map<Tensor, number>();
setHeldPredicate((t) => holds.has(t));

function hold(node: Node): void {
  for (const t of node.saved) holds.set(t, (holds.get(t) ?? 0) + 1);
}

function unhold(node: Node): void {
  for (const t of node.saved) {
    const n = (holds.get(t) ?? 1) - 1;
    if (n > 0) holds.set(t, n);
    else holds.delete(t);
  }
}

/** @internal One gradient computation's record of the ops that depend on its variables. */
export class Tape {
  readonly nodes: Node[] = [];
  readonly tracked = new Set<Tensor>();
}

const tapes: Tape[] = [];
let paused = 0;

/** @internal Whether any tape would record an op with these inputs. */
export function recording(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (paused > 0 || tapes.length === 0) return false;
  return tapes.some((t) => inputs.some((x) => x && t.tracked.has(x)));
}

/**
 * @internal Refuses a kernel launch that would silently cut a gradient: one whose float32 inputs
 * include a tensor a live tape tracks, made outside any recorded op (inside `op`'s forward and
 * `untracked`, recording is paused). Its output would be a constant to the tape, so every gradient
 * through it would come out zero or wrong with no error. A launch with an int32 output (indices,
 * counts) has no gradient to lose. Called by every way of launching kernels over tensors.
 */
export function checkLaunch(opName: string, inputs: readonly Tensor[], outDtype: string = 'float32'): void {
  if (outDtype !== 'float32' || !recording(inputs)) return;
  const t = inputs.find((x) => x.dtype === 'float32' && tapes.some((tape) => tape.tracked.has(x)));
  if (!t) return;
  throw new Error(
    `${opName}: no gradient: a kernel of ${opName} reads a tensor of shape [${t.shape.join(',')}] that is being differentiated, but ${opName} records no VJP, so the gradient through it would be silently wrong. ` +
      `Differentiate through an op that has one, or, if ${opName}'s output is truly constant (a comparison, an index), run it inside untracked(...) from @sorsajs/core/internal`,
  );
}

/**
 * @internal Runs a differentiable op: `forward` computes the output with recording paused (an op's
 * own internals are not differentiated piecewise), then the op's `vjp` is recorded on every tape
 * that tracks one of its inputs. `vjp` receives the output cotangent and must use public ops only.
 */
export function op(
  inputs: readonly (Tensor | null | undefined)[],
  forward: () => Tensor,
  vjp: (g: Tensor, out: Tensor, needs: readonly boolean[]) => (Tensor | null)[],
  extra?: () => Iterable<Tensor>,
): Tensor {
  if (!recording(inputs)) return forward();
  paused++;
  let out: Tensor;
  try {
    out = forward();
  } finally {
    paused--;
  }
  const ins = inputs.map((x) => x ?? null);
  const saved = [...ins.filter((x): x is Tensor => x !== null), out, ...(extra ? extra() : [])];
  const node: Node = { inputs: ins, output: out, vjp: (g, needs) => vjp(g, out, needs), saved };
  for (const t of tapes) {
    if (inputs.some((x) => x && t.tracked.has(x))) {
      t.nodes.push(node);
      t.tracked.add(out);
      hold(node);
    }
  }
  return out;
}

/**
 * @internal Disposes an intermediate a composite op made, unless a tape recorded an op that reads it
 * (then the gradient's scope disposes it later).
 */
export function disposeIntermediate(t: Tensor): void {
  if (!holds.has(t)) t.dispose();
}

/**
 * @internal Runs `fn` with no op recorded: its outputs are constants to every gradient. This is how
 * a computation is declared non-differentiable (stopGradient, comparisons, argmax, random bits), and
 * what lets its kernels read tensors that are being differentiated (see `checkLaunch`).
 *
 * @example
 * ```ts
 * const keep = untracked(() => launch('mask', MASK_KERNEL, x.shape, 'float32', [x], [])); // a constant
 * ```
 */
export function untracked<R>(fn: () => R): R {
  paused++;
  try {
    return fn();
  } finally {
    paused--;
  }
}

/** @internal Pushes a tape tracking `vars` while `fn` runs; returns fn's result and the tape. */
export function withTape<R>(vars: readonly Tensor[], fn: () => R): [R, Tape] {
  const tape = new Tape();
  for (const v of vars) tape.tracked.add(v);
  tapes.push(tape);
  try {
    return [fn(), tape];
  } finally {
    const i = tapes.lastIndexOf(tape);
    if (i >= 0) tapes.splice(i, 1);
    // The caller runs backward right away; from here only outer tapes keep tensors alive.
    for (const node of tape.nodes) unhold(node);
  }
}

/**
 * @internal Backpropagates `seed` from `output` through `tape` and returns the cotangent of each of
 * `vars` (undefined where the output does not depend on it). Runs with outer tapes active, so the
 * gradient is itself differentiable by them. `add` accumulates cotangents.
 */
export function backward(tape: Tape, output: Tensor, seed: Tensor, vars: readonly Tensor[], add: (a: Tensor, b: Tensor) => Tensor): (Tensor | undefined)[] {
  const grads = new Map<Tensor, Tensor>();
  grads.set(output, seed);
  for (let i = tape.nodes.length - 1; i >= 0; i--) {
    const node = tape.nodes[i];
    const g = grads.get(node.output);
    if (!g) continue;
    const gin = node.vjp(
      g,
      node.inputs.map((x) => !!x && tape.tracked.has(x)),
    );
    node.inputs.forEach((x, k) => {
      const gk = gin[k];
      if (!x || !gk || !tape.tracked.has(x)) return;
      const prev = grads.get(x);
      grads.set(x, prev ? add(prev, gk) : gk);
    });
  }
  return vars.map((v) => grads.get(v));
}

/** @internal A new tensor object on the same storage: an identity for the tape, free at run time. */
export function alias(x: Tensor): Tensor {
  return new Tensor(x.use('alias').retain(), x.shape, x.dtype);
}
