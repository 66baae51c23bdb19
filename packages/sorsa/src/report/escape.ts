/**
 * Escaping of untrusted text (method names, layer paths, titles) for SVG and HTML.
 * @module
 */

// XML 1.0 forbids these code points even as character references: a layer name holding one would
// make a standalone .svg unparseable, so they become U+FFFD. Lone surrogates are included (a
// broken UTF-16 string cannot be encoded as UTF-8 either).
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * `text` made safe as XML/HTML text content and as a quoted attribute value: `& < > " '` become
 * entities and characters XML cannot hold become U+FFFD. Every string the report builders put in a
 * page goes through it.
 *
 * @example
 * ```ts
 * escapeXml('<script>&"') // '&lt;script&gt;&amp;&quot;'
 * ```
 */
export function escapeXml(text: string): string {
  return String(text).replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"']/g, (c) => ENTITY[c]);
}
