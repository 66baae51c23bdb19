/**
 * A strict well-formedness check for the XML subset our SVG charts use (elements, attributes in
 * double quotes, text, character and the five predefined entity references), so the report tests
 * need no XML library. It rejects anything outside that subset, which is the point: a chart must
 * also open as a standalone .svg file, where a browser parses it as XML.
 */
const NAME = /^[A-Za-z_][\w.:-]*/;
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/;

/** Throws (saying where) unless `xml` is one well-formed element, with only whitespace around it. */
export function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at ${i}: ${why}: ${JSON.stringify(xml.slice(Math.max(0, i - 40), i + 40))}`);
  };
  const text = (end: number, inAttr: boolean): void => {
    for (; i < end; i++) {
      const c = xml[i];
      if (c === '<') fail('raw < in text');
      if (inAttr && c === '"') fail('raw " in attribute');
      if (c === '&') {
        const m = ENTITY.exec(xml.slice(i, i + 12));
        if (!m) fail('bare &');
        i += m![0].length - 1;
      }
    }
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const end = lt < 0 ? xml.length : lt;
    if (!stack.length && xml.slice(i, end).trim()) fail('text outside the root element');
    text(end, false);
    if (lt < 0) break;
    i = lt + 1;
    if (xml[i] === '/') {
      i++;
      const name = NAME.exec(xml.slice(i))?.[0] ?? fail('bad closing tag name');
      if (stack.pop() !== name) fail(`</${name}> does not close the open element`);
      i += name.length;
      if (xml[i] !== '>') fail('expected > after closing tag name');
      i++;
      continue;
    }
    const name = NAME.exec(xml.slice(i))?.[0] ?? fail('bad tag name');
    i += name.length;
    const seen = new Set<string>();
    for (;;) {
      const ws = /^\s*/.exec(xml.slice(i))![0].length;
      i += ws;
      if (xml.startsWith('/>', i) || xml[i] === '>') break;
      if (!ws) fail('attributes must be separated by whitespace');
      const attr = NAME.exec(xml.slice(i))?.[0] ?? fail('bad attribute name');
      if (seen.has(attr)) fail(`duplicate attribute ${attr}`);
      seen.add(attr);
      i += attr.length;
      if (!xml.startsWith('="', i)) fail(`attribute ${attr} needs ="…"`);
      i += 2;
      const close = xml.indexOf('"', i);
      if (close < 0) fail('unterminated attribute');
      text(close, true);
      i = close + 1;
    }
    if (!stack.length) roots++;
    if (roots > 1) fail('more than one root element');
    if (xml[i] === '>') {
      stack.push(name);
      i++;
    } else i += 2;
  }
  if (stack.length) throw new Error(`not well-formed XML: unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error('not well-formed XML: no root element');
}
