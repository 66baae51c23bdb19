import type { KernelSource } from '../backend/engine.js';
import { divmod } from './index-math.js';

/**
 * Batched matrix products C[z] = A[z] @ B[z]. Operands are read through strides, so transposed and
 * batch-broadcast operands need no copy: A(z, i, k) is at `z * bsa + i * sa0 + k * sa1` and
 * B(z, k, j) at `z * bsb + k * sb0 + j * sb1`.
 */

/**
 * One thread per output cell of flat row-major `[batch, M, N]`: the portable kernel (cpu, webgpu,
 * webgl). Scalars: M, N, K, sa0, sa1, sb0, sb1, bsa, bsb.
 */
export const MATMUL: KernelSource = {
  key: 'matmul:cell',
  arrays: ['a', 'b'],
  scalars: ['M', 'N', 'K', 'sa0', 'sa1', 'sb0', 'sb1', 'bsa', 'bsb'],
  body: `const i = this.thread.x;
${divmod('bt', 'r0', 'i', 'M * N')}
${divmod('row', 'col', 'r0', 'N')}
const ao = bt * bsa + row * sa0;
const bo = bt * bsb + col * sb1;
let acc = 0;
for (let k = 0; k < K; k++) { acc += a[ao + k * sa1] * b[bo + k * sb0]; }
return acc;`,
};

/**
 * The sizes and strides of a batched product on wasm: C[z] = A[z] @ B[z] for z < nb, C[z] row-major
 * `[M, N]`, A(z, i, k) at `z * bsa + i * sa0 + k * sa1` and B(z, k, j) at `z * bsb + k * sb0 + j * sb1`
 * (a batch stride 0 broadcasts the operand).
 */
export interface WasmMatmulDims {
  M: number;
  N: number;
  K: number;
  sa0: number;
  sa1: number;
  sb0: number;
  sb1: number;
  bsa: number;
  bsb: number;
  nb: number;
  /**
   * With whole tiles only (M a multiple of 4, N of 16): the tile kernel takes a third array `c0`
   * (row-major like C) and stores c0 − A B, so a blocked update C − A B needs no pass of its own.
   */
  minus?: boolean;
}

/** One kernel launch of a wasm matmul plan: its source and gpu.js output dims `[x, y, z]`. */
export interface WasmMatmulStep {
  src: KernelSource;
  dims: [number, number, number];
}

/**
 * The kernels of one wasm matmul (see `wasmMatmulPlan`): an optional packing of B, the tiled
 * product, and the unpack of its tiles into row-major C (`flat`: a grid kernel with one value per
 * cell; otherwise `Array(4)` cells, whose flat buffer is row-major C). `unpack` is null when the
 * tiled product stores row-major C itself (M a multiple of 4 and N of 16).
 */
export interface WasmMatmulPlan {
  pack: WasmMatmulStep | null;
  main: WasmMatmulStep;
  unpack: (WasmMatmulStep & { flat: boolean }) | null;
}

/** Rows of C per SIMD quad of the wasm kernel (see wasmMatmulPlan). */
const TILE_ROWS = 4;
/** Columns of C per SIMD quad: 4 lanes x 4 column groups. */
const TILE_COLS = 16;
/** k-loop unroll of the wasm kernel: 2 measured as good as 4 at 512 and 1024, 1 10-20% slower. */
const UNROLL = 2;
/**
 * B is packed into column panels from this many elements (K * N) on, and whenever it is read
 * transposed: measured at 512 (K * N = 2^18) the packed product with its packing pass is ~as fast as
 * the strided read, at 1024 twice as fast (see wasmMatmulPlan).
 */
const PACK_FROM = 1 << 18;

/**
 * The wasm matmul: each SIMD quad (4 cells at consecutive `thread.x`, one per lane) computes a 4 x 16
 * tile of C, each lane 4 rows x 4 columns (columns 4g + lane), returned as `Array(16)`, so a quad
 * holds 16 f32x4 accumulators (gpu.js patch: wide `Array(n)` returns on webasm). Per k it loads 4
 * A values (lane-uniform: one scalar load each, splat once for its 4 uses) and 4 vectors of 16
 * consecutive B values (one v128.load each: the read is lane-uniform + `thread.x`), for 16 vector
 * multiply-adds, where the former 4 x 4 tile (one `Array(4)` per cell) made 5 loads for 4. The grid is `[4, Nb, Mb * nb]` (Nb = ceil(N /
 * 16), Mb = ceil(M / 4)): x is the lane, y the column panel, z the row block and the batch, so cells
 * run panel by panel along a row block, whose 4 rows of A stay in L1.
 *
 * B is packed first (`packB`) when it is large or read transposed: into panels `[nbB, Nb, K, 16]`,
 * zero-padded past N, so that a quad reads its panel's 64 bytes per k sequentially. Read in place,
 * each k is a new row of B (N * 4 bytes apart), a cache line and often a page per k once B
 * outgrows L2. Measured single-threaded, kernel alone (min over interleaved rounds; the old 4 x 4
 * `Array(4)` kernel with its k-loop unrolled 8 for reference): 512: 4 x 4 24.6 ms, 4 x 16 in place
 * 13.8-14.6 ms, packed 13.3-13.5 ms; 1024: 4 x 4 396-418 ms, 4 x 16 in place 154-188 ms, packed
 * 104-106 ms (~20 GFLOP/s). Other tiles were slower by their medians: 4 x 12 ~1x at 512 but 1.2x
 * at 1024, 3 x 16, 4 x 8 and 6 x 8 1.05-1.3x, 8 x 8 1.3x (V8 keeps 16 xmm registers, so the 4 x 16
 * tile already spills some accumulators; the fewer loads still win). Blocking the columns into
 * L2-sized super-panels without packing gained nothing at 1024 (the stride per k stays).
 *
 * Every value is written into the sources as literals (webasm compiles a module per shape anyway,
 * and V8 folds the constant index arithmetic); the sources are cached by their dims. Indices are
 * i32 throughout (locals initialized from integer expressions, `thread.*`, shifts): the only
 * division is the batch's, once per quad, through divmod. Rows past M read row M - 1 (scalar reads
 * are not bounds-checked) and columns past N compute values the unpack drops.
 *
 * @example
 * ```ts
 * const plan = wasmMatmulPlan({ M: 64, N: 48, K: 32, sa0: 32, sa1: 1, sb0: 48, sb1: 1, bsa: 0, bsb: 0, nb: 1 });
 * plan.main.dims; // [4, 3, 16]
 * ```
 */
export function wasmMatmulPlan(d: WasmMatmulDims): WasmMatmulPlan {
  const key = [d.M, d.N, d.K, d.sa0, d.sa1, d.sb0, d.sb1, d.bsa, d.bsb, d.nb, d.minus ? 1 : 0].join(',');
  let plan = plans.get(key);
  if (!plan) {
    if (plans.size >= PLANS_MAX) plans.clear();
    plan = makePlan(d);
    plans.set(key, plan);
  }
  return plan;
}

/** Plans by their dims (see wasmMatmulPlan); cleared when it reaches PLANS_MAX. */
const plans = new Map<string, WasmMatmulPlan>();
const PLANS_MAX = 1024;

function makePlan(d: WasmMatmulDims): WasmMatmulPlan {
  const { M, N, K, nb } = d;
  const Nb = Math.ceil(N / TILE_COLS);
  const Mb = Math.ceil(M / TILE_ROWS);
  const packed = d.sb1 !== 1 || (K * N >= PACK_FROM && Mb > 1);
  // Packed B's own batch: one panel set when B is broadcast over the batch.
  const nbB = d.bsb === 0 ? 1 : nb;
  const pack: WasmMatmulStep | null = packed ? { src: packB(d, Nb, nbB), dims: [TILE_COLS, K, Nb * nbB] } : null;
  // Whole tiles only: every tile's 64 values then land inside C, and C is exactly the tiles.
  const direct = M % TILE_ROWS === 0 && N % TILE_COLS === 0;
  if (d.minus && !direct) throw new Error(`wasmMatmulPlan: minus needs whole tiles (M a multiple of ${TILE_ROWS}, N of ${TILE_COLS}), got M ${M}, N ${N}`);
  const main: WasmMatmulStep = { src: tileKernel(d, Nb, Mb, packed, nbB, direct), dims: [4, Nb, Mb * nb] };
  const unpack = direct
    ? null
    : N % 4 === 0
      ? { src: unpackRows(Mb, Nb), dims: [N / 4, M, nb] as [number, number, number], flat: false }
      : { src: unpackCells(Mb, Nb), dims: [N, M, nb] as [number, number, number], flat: true };
  return { pack, main, unpack };
}

/**
 * `q = floor(z / den)`, `r = z - q * den` as kernel lines; with one batch only `r = z` (q is 0, and
 * a local from the literal 0 would be a float: callers leave q's terms out instead).
 */
function batchOf(q: string, r: string, z: string, den: number, batches: number): string {
  return batches > 1 ? divmod(q, r, z, String(den)) : `const ${r} = ${z};`;
}

/**
 * B into column panels: `Bp[((zb * Nb + cb) * K + k) * 16 + c] = B(zb, k, 16 cb + c)`, 0 past N.
 * Over the grid `[16, K, Nb * nbB]` its flat result is that layout. A row-major B is read as
 * lane-uniform + `thread.x` (one v128 load per quad), a transposed one gathered.
 */
function packB(d: WasmMatmulDims, Nb: number, nbB: number): KernelSource {
  const { N, sb0, sb1, bsb } = d;
  const lines = [
    batchOf('zb', 'cb', 'this.thread.z', Nb, nbB),
    `const c0 = cb * ${TILE_COLS};`,
    `const base = ${nbB > 1 ? `zb * ${bsb} + ` : ''}this.thread.y * ${sb0} + c0 * ${sb1};`,
  ];
  const read = `b[base + this.thread.x * ${sb1}]`;
  lines.push(N % TILE_COLS === 0 ? `return ${read};` : `return c0 + this.thread.x < ${N} ? ${read} : 0;`);
  return { key: `matmul:pack16:${N},${d.K},${sb0},${sb1},${bsb},${nbB}`, arrays: ['b'], scalars: [], flat: true, body: lines.join('\n') };
}

function tileKernel(d: WasmMatmulDims, Nb: number, Mb: number, packed: boolean, nbB: number, direct: boolean): KernelSource {
  const { M, K, sa0, sa1, sb0, bsa, nb } = d;
  const G = TILE_COLS / 4;
  // B's row step and the start of this quad's panel.
  const rowStep = packed ? TILE_COLS : sb0;
  const zbB = nb > 1 && nbB > 1;
  const panel = packed ? `(${zbB ? `zb * ${Nb} + ` : ''}this.thread.y) * ${K * TILE_COLS}` : `${nb > 1 ? `zb * ${d.bsb} + ` : ''}this.thread.y * ${TILE_COLS}`;
  const lines = [batchOf('zb', 'rb', 'this.thread.z', Mb, nb), `const i0 = rb * ${TILE_ROWS};`];
  for (let r = 0; r < TILE_ROWS; r++) {
    const row = r === 0 ? 'i0' : `(i0 + ${r} < ${M} ? i0 + ${r} : ${M - 1})`;
    lines.push(`let p${r} = ${nb > 1 ? `zb * ${bsa} + ` : ''}${row} * ${sa0};`);
  }
  lines.push(`let pb = ${panel};`);
  for (let r = 0; r < TILE_ROWS; r++) for (let g = 0; g < G; g++) lines.push(`let s${r}${g} = 0.0;`);
  const step = (t: number): void => {
    for (let g = 0; g < G; g++) {
      const off = t * rowStep + 4 * g;
      lines.push(`  const v${t}${g} = b[pb${off ? ` + ${off}` : ''} + this.thread.x];`);
    }
    for (let r = 0; r < TILE_ROWS; r++) {
      lines.push(`  const a${t}${r} = a[p${r}${t ? ` + ${t * sa1}` : ''}];`);
      for (let g = 0; g < G; g++) lines.push(`  s${r}${g} += a${t}${r} * v${t}${g};`);
    }
  };
  const advance = (u: number): void => {
    for (let r = 0; r < TILE_ROWS; r++) lines.push(`  p${r} += ${u * sa1};`);
    lines.push(`  pb += ${u * rowStep};`);
  };
  const KU = Math.floor(K / UNROLL);
  if (KU > 0) {
    lines.push(`for (let kk = 0; kk < ${KU}; kk++) {`);
    for (let t = 0; t < UNROLL; t++) step(t);
    advance(UNROLL);
    lines.push('}');
  }
  if (K % UNROLL) {
    lines.push(`for (let kk = 0; kk < ${K % UNROLL}; kk++) {`);
    step(0);
    advance(1);
    lines.push('}');
  }
  const comps: string[] = [];
  // minus (direct store only): accumulator (r, g) of lane x is C(4 z + r, 16 y + 4 g + x) (see
  // directStore), so c0's value there is one vector load a quad.
  if (d.minus) lines.push(`const ci = (this.thread.z * ${TILE_ROWS * d.N} + this.thread.y * ${TILE_COLS}) | 0;`);
  for (let r = 0; r < TILE_ROWS; r++) for (let g = 0; g < G; g++) comps.push(d.minus ? `c0[(ci + ${r * d.N + 4 * g}) + this.thread.x] - s${r}${g}` : `s${r}${g}`);
  lines.push(`return [${comps.join(', ')}];`);
  const key = `matmul:t4x16u${UNROLL}${packed ? 'p' : ''}${direct ? 'd' : ''}${d.minus ? 'm' : ''}:${[M, d.N, K, sa0, sa1, sb0, d.sb1, bsa, d.bsb, nb].join(',')}`;
  const src: KernelSource = { key, arrays: d.minus ? ['a', 'b', 'c0'] : ['a', 'b'], scalars: [], threaded: true, threadFrom: threadFrom(K, Mb), components: 16, body: lines.join('\n') };
  return direct ? { ...src, store: directStore(d.N) } : src;
}

/**
 * Multiply-adds from which a product of few cells runs on worker threads: ~0.8 ms of one thread's
 * work, where the claim-based dispatch (the calling thread computes alongside) costs tens of µs.
 * At 2^22, [8, 768] @ [768, 768] (4.7 M) measured slower threaded (0.45-0.52 ms against 0.41-0.46).
 */
const THREAD_WORK = 1 << 23;
/** Row blocks of 4 from which a product of few cells may be threaded (see threadFrom). */
const THREAD_ROW_BLOCKS = 2;

/**
 * The cells from which a tile kernel runs on worker threads. Each cell is 16 K multiply-adds, so a
 * product with a small output but a long k, such as the randomized SVD's [768, 3072] @ [3072, 32]
 * (1536 cells), runs threaded from THREAD_WORK multiply-adds instead of gpu.js's 4096 cells, which
 * left it on one thread (measured 6.5-10.8 ms, threaded 3.8-5.0); so do products of a few rows by a
 * weight, [8, 768] @ [768, 3072] 2.3-2.5 -> 1.6-1.9 ms. Products of one row block (M <= 4: a
 * decode step's [1, 768] @ [3072, 768]ᵀ) keep the 4096-cell gate: their weight, packed or not, is
 * copied into the kernel's memory at every call, and threads measured mixed there (-10% to +30%;
 * docs/guides/performance.md, "Threads for few, long matmul cells").
 */
function threadFrom(K: number, Mb: number): number {
  if (Mb < THREAD_ROW_BLOCKS) return 4096;
  return Math.min(4096, Math.max(64, 4 * Math.ceil(THREAD_WORK / (16 * K) / 4)));
}

/**
 * Where a tile's values go in row-major C when M and N are whole tiles (the gpu.js patch's
 * `outputStore`): accumulator (r, g) of lane x in cell (x, y, z) is C(4z + r, 16y + 4g + x)
 * (z runs over the row blocks of every batch, and M = 4 Mb keeps the batches contiguous), so each
 * accumulator's 4 lanes are 4 consecutive floats of a row, one vector store, and no unpack pass
 * runs. Cell-major storage took 64 lane extracts and scalar stores a quad and then the unpack, a
 * gather of the whole result (1/4 of all kernel time in a GPT-2-small training step).
 */
function directStore(N: number): NonNullable<KernelSource['store']> {
  const offsets: number[] = [];
  for (let r = 0; r < TILE_ROWS; r++) for (let g = 0; g < TILE_COLS / 4; g++) offsets.push(r * N + 4 * g);
  return { strides: [1, TILE_COLS, TILE_ROWS * N], offsets };
}

/**
 * The tile kernel's buffer holds C(z, i, j) at `((((z * Mb + (i >> 2)) * Nb + (j >> 4)) * 4 + (j &
 * 3)) * 16 + (i & 3) * 4 + ((j >> 2) & 3)`: cell, then row in the tile, then column group.
 */
function tileIndex(Mb: number, Nb: number, z: string, i: string, j: string): string {
  return `((((${z} * ${Mb} + (${i} >> 2)) * ${Nb} + (${j} >> 4)) * 4 + (${j} & 3)) * 16 + (${i} & 3) * 4 + ((${j} >> 2) & 3))`;
}

/**
 * Row-major C from the tile buffer for N a multiple of 4: over the grid `[N / 4, M, nb]` each cell
 * returns the 4 columns 4x..4x+3 of row y as `Array(4)` (16 apart in the tile buffer), so its flat
 * result is row-major C. Not threaded: a copy, for which the worker dispatch (~170 us) costs more
 * than it saves.
 */
function unpackRows(Mb: number, Nb: number): KernelSource {
  const base = tileIndex(Mb, Nb, 'this.thread.z', 'this.thread.y', '(this.thread.x << 2)');
  const reads = [0, 1, 2, 3].map((l) => `d[base${l ? ` + ${16 * l}` : ''}]`);
  return { key: `matmul:unpack16rows:${Mb},${Nb}`, arrays: ['d'], scalars: [], components: 4, body: `const base = ${base};\nreturn [${reads.join(', ')}];` };
}

/**
 * Row-major C from the tile buffer for any N: one value per cell over the grid `[N, M, nb]` (a flat
 * result). Threaded: a gather of M * N cells, where worker threads paid off from 4096 cells (the
 * former unpack: 2.1 -> 1.5 ms at 512 x 512).
 */
function unpackCells(Mb: number, Nb: number): KernelSource {
  const at = tileIndex(Mb, Nb, 'this.thread.z', 'this.thread.y', 'this.thread.x');
  return { key: `matmul:unpack16cells:${Mb},${Nb}`, arrays: ['d'], scalars: [], threaded: true, flat: true, body: `return d[${at}];` };
}
