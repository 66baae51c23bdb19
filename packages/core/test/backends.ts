/**
 * Backend-parametrized suites, from the testing kit (where they are written once):
 * `forEachBackend('ops', (name) => { ... })` runs the body once per backend that works on this
 * machine; SORSA_BACKENDS=wasm,cpu restricts the list. Kept here for the tests that import it by path.
 */
export { forEachBackend } from '@sorsajs/testing/backends';
