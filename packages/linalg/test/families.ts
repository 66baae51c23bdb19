/**
 * Test matrices (float32 values, float64 twins) for the decompositions: the families the linalg
 * issue names. Deterministic from a seed. The generator, Gaussian draws, orthonormal bases and
 * U diag(s) Vᵀ come from the testing kit (which also draws these spectra as fast-check arbitraries).
 */
import { gaussian, rng, withSpectrum as spectrumMatrix } from '@sorsajs/testing';

export interface Matrix {
  name: string;
  m: number;
  n: number;
  /** Row-major float32 values. */
  data: Float32Array;
}

export function randomGaussian(m: number, n: number, seed: number): Matrix {
  const r = rng(seed);
  return { name: `gaussian ${m}x${n}`, m, n, data: Float32Array.from({ length: m * n }, () => gaussian(r)) };
}

/** U diag(s) Vᵀ with random orthonormal U, V and the given singular values. */
export function withSpectrum(name: string, m: number, n: number, s: number[], seed: number): Matrix {
  return { name, m, n, data: Float32Array.from(spectrumMatrix(m, n, s, seed)) };
}

/** Kahan's matrix: upper triangular, rows scaled by s^i, off-diagonal -c (ill-conditioned). */
export function kahan(n: number, theta = 1.2): Matrix {
  const s = Math.sin(theta);
  const c = Math.cos(theta);
  const data = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    const si = s ** i;
    data[i * n + i] = si;
    for (let j = i + 1; j < n; j++) data[i * n + j] = -c * si;
  }
  return { name: `kahan ${n}`, m: n, n, data };
}

/** Gaussian columns scaled from 1 to 1e-6 (geometrically), then permuted. */
export function graded(m: number, n: number, seed: number): Matrix {
  const g = randomGaussian(m, n, seed);
  const r = rng(seed + 7);
  const perm = Array.from({ length: n }, (_, j) => j).sort(() => r() - 0.5);
  const data = new Float32Array(m * n);
  for (let j = 0; j < n; j++) {
    const scale = 10 ** ((-6 * perm[j]) / Math.max(1, n - 1));
    for (let i = 0; i < m; i++) data[i * n + j] = g.data[i * n + j] * scale;
  }
  return { name: `graded ${m}x${n}`, m, n, data };
}

export function families(size = 24): Matrix[] {
  const n = size;
  return [
    randomGaussian(n, n, 1),
    randomGaussian(2 * n, n, 2),
    randomGaussian(n, 2 * n, 3),
    kahan(n),
    graded(n + 8, n, 4),
    withSpectrum('clustered', n, n, Array.from({ length: n }, (_, i) => 1 + 1e-3 * i), 5),
    withSpectrum('repeated', n, n, Array.from({ length: n }, (_, i) => (i < n / 2 ? 2 : 1)), 6),
    withSpectrum('rank-deficient', n + 4, n, Array.from({ length: n }, (_, i) => (i < n / 3 ? 3 - i * 0.1 : 0)), 7),
    { name: 'zero', m: n, n, data: new Float32Array(n * n) },
    randomGaussian(1, n, 8),
    randomGaussian(n, 1, 9),
  ];
}

/** Gaussian values times `scale`, rounded to float32 (which keeps subnormals: 1e-40 is one). */
function scaledGaussian(name: string, m: number, n: number, seed: number, scale: number): Matrix {
  const g = randomGaussian(m, n, seed);
  return { name: `${name} ${m}x${n}`, m, n, data: Float32Array.from(g.data, (v) => v * scale) };
}

/**
 * Matrices of huge values, iterated by randomizedSvd scaled by a power of two (the two largest would
 * overflow float32 in products by A Aᵀ unscaled): Gaussian times 2^17 (just past the range iterated
 * unscaled, 2^±16: the scale and scale-back path on its own), times 1e30 and
 * times 1e36 (σ₁ near 1e37, within float32's 3.4e38 only once scaled back).
 */
export function hugeValued(m: number, n: number, seed = 1): Matrix[] {
  return [
    scaledGaussian('gaussian x 2^17', m, n, seed, 2 ** 17),
    scaledGaussian('gaussian x 1e30', m, n, seed + 1, 1e30),
    scaledGaussian('gaussian x 1e36', m, n, seed + 2, 1e36),
  ];
}

/**
 * Zero and nearly-zero m x n matrices, the cases where a decomposition must still return full
 * orthonormal factors: exactly zero; Gaussian scaled to 1e-30 (squares underflow float32 unless
 * scaled first); scaled to 1e-40 (subnormal float32: GPUs may flush such values to zero); a single
 * nonzero entry (rank 1: every other column zero from the start); and a single entry over 1e-20
 * noise (rank 1 numerically, the other columns under any zero threshold relative to it).
 * `flushSubnormals`: the subnormal matrix as a backend that flushes subnormals to zero sees it (all
 * zero), for webgl, whose GLSL arithmetic does (measured under headless-gl: S came back 0).
 */
export function nearlyZero(m: number, n: number, seed = 1, flushSubnormals = false): Matrix[] {
  const single = new Float32Array(m * n);
  const at = Math.floor(m / 2) * n + Math.floor((n - 1) / 3);
  single[at] = 3;
  const over = scaledGaussian('', m, n, seed + 3, 1e-20).data;
  over[at] = 3;
  return [
    { name: `zero ${m}x${n}`, m, n, data: new Float32Array(m * n) },
    scaledGaussian('gaussian x 1e-30', m, n, seed, 1e-30),
    flushSubnormals
      ? { name: `gaussian x 1e-40 (subnormal, flushed to zero) ${m}x${n}`, m, n, data: new Float32Array(m * n) }
      : scaledGaussian('gaussian x 1e-40 (subnormal)', m, n, seed + 1, 1e-40),
    { name: `single entry ${m}x${n}`, m, n, data: single },
    { name: `single entry over 1e-20 noise ${m}x${n}`, m, n, data: over },
  ];
}

/**
 * The shapes at which the Jacobi SVD's plan differs (jacobi-plan.ts; the work matrix is A, or Aᵀ
 * when wide, so its n is min(m, n)), with the block size that selects a class when the default does
 * not: a single block pair (n <= 32; b = 4 at n <= 8, 8 at n <= 16, 16 at n <= 32), tall and wide;
 * blocks of 8 with 3 block pairs (padded to the inner kernels' quads of 4) and with 4; two block
 * pairs (run unpadded); 5 pairs (padded to 8); blocks of 16 above 64 columns, tall and wide.
 */
export const sizeClasses: { label: string; m: number; n: number; blockSize?: number }[] = [
  { label: 'single pair, b 4, tall', m: 5, n: 2 },
  { label: 'single pair, b 4, tall', m: 10, n: 3 },
  { label: 'single pair, b 4, wide', m: 2, n: 5 },
  { label: 'single pair, b 8, square', m: 16, n: 16 },
  { label: 'single pair, b 16, square', m: 32, n: 32 },
  { label: 'b 8, 3 pairs padded to 4', m: 33, n: 33 },
  { label: 'b 8, 4 pairs', m: 64, n: 64 },
  { label: '2 pairs unpadded (blockSize 12)', m: 40, n: 40, blockSize: 12 },
  { label: '5 pairs padded to 8 (blockSize 4)', m: 40, n: 40, blockSize: 4 },
  { label: 'b 16, 3 pairs, tall', m: 100, n: 80 },
  { label: 'b 16, 3 pairs, wide', m: 70, n: 130 },
];
