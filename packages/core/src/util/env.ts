/**
 * The runtime sorsajs finds itself in.
 * @module
 */

/**
 * Whether this runs under Node.js rather than in a browser. It decides how backends are reached:
 * WebGPU through the `webgpu` package (Dawn) and WebGL through headless-gl, where a browser brings
 * its own `navigator.gpu` and WebGL2.
 */
export const IN_NODE = typeof process !== 'undefined' && !!process.versions?.node;
