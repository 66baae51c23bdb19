/**
 * User errors of the command line: what the user can fix (a flag, a file, a mismatch). `main`
 * prints their message on one line, without a stack trace, and exits with status 2; any other Error
 * is printed the same way (with its stack under `SORSA_DEBUG=1`) and exits with status 1.
 * @module
 */

/**
 * An error the user can fix: a bad flag value, a missing file, a model/adapter mismatch.
 *
 * @example
 * ```ts
 * throw new UsageError(`--data ${file}: no such file`);
 * ```
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit statuses of `sorsa`. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** An unexpected error (a bug, or a failure of the machine). */
  failure: 1,
  /** A user error: bad flags, missing files, mismatches. */
  usage: 2,
  /** Training stopped after too many non-finite steps in a row; the last good checkpoint is kept. */
  diverged: 3,
  /** Interrupted by Ctrl-C (SIGINT) after writing a checkpoint: 128 + 2, as shells report it. */
  interrupted: 130,
} as const;
