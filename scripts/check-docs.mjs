/* global console, process, performance */
// Type-checks every ```ts block of README.md and docs/**/*.md against the built packages (run after
// `npm run build`; `npm run lint` runs it), under the repository's strict compiler options, then
// runs the blocks that are complete programs.
//
// Each block is its own ES module, checked as a reader would paste it into a file of their own.
// HTML comments (invisible on GitHub and in the typedoc site) right before a block say what it takes
// for granted:
//
//   <!-- ts-context
//   declare const params: { w: Tensor; b: Tensor };
//   -->                 code put in front of the block, stating the values a fragment uses (the data,
//                       a model) and their types, so that it is checked, not skipped.
//   <!-- ts-continue --> the block continues the previous block of the same file (one program told
//                       in parts, as in docs/guides/testing.md).
//   <!-- ts-no-run: why --> the program type-checks but is not run here (it needs a checkpoint, a GPU).
//
// A program with no context is complete: it is compiled to JavaScript and run with node (each must
// exit with status 0 within two minutes). A block whose info string is `ts fragment` is not checked:
// keep that for pseudo-code. Errors are reported at their line in the markdown file; exit status 1
// on any error. `--no-run` only type-checks.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** README.md and every markdown file under docs/ except the generated site (docs/api). */
function markdownFiles() {
  const out = [join(root, 'README.md')];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== join(root, 'docs', 'api')) walk(p);
      } else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk(join(root, 'docs'));
  return out.sort();
}

/**
 * The programs of one markdown file: each has its virtual .mts path (beside the markdown file, so
 * that `@sorsajs/*` resolve through the root node_modules as a user's would) and its text, with a
 * map from program line to markdown line (a context line maps to its line inside the comment).
 * `noRun` holds why a program is not run: it has context, or a ts-no-run marker says why.
 */
function programsOf(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const programs = [];
  let context = null; // pending ts-context lines with their markdown line numbers
  let cont = false;
  let noRun = null; // a pending ts-no-run reason
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '<!-- ts-continue -->') {
      cont = true;
      continue;
    }
    const skip = /^<!-- ts-no-run: (.+) -->$/.exec(line.trim());
    if (skip) {
      noRun = skip[1];
      continue;
    }
    if (line.trim() === '<!-- ts-context') {
      context = [];
      for (i++; i < lines.length && lines[i].trim() !== '-->'; i++) context.push([lines[i], i]);
      continue;
    }
    const fence = /^```(\S*)\s*(.*)$/.exec(line);
    if (!fence) {
      if (line.trim() !== '') {
        // A marker applies to the very next block only.
        context = null;
        cont = false;
        noRun = null;
      }
      continue;
    }
    const body = [];
    const start = i;
    for (i++; i < lines.length && !lines[i].startsWith('```'); i++) body.push([lines[i], i]);
    const checked = fence[1] === 'ts' && fence[2].trim() !== 'fragment';
    if (fence[1] === 'ts' && !checked && fence[2].trim() !== 'fragment') {
      throw new Error(`${relative(root, file)}:${start + 1}: unknown info string "${line}" (ts or ts fragment)`);
    }
    if (checked) {
      const prev = programs[programs.length - 1];
      if (cont && !prev) throw new Error(`${relative(root, file)}:${start + 1}: ts-continue with no block before it`);
      const target = cont ? prev : { path: `${file}.${start + 1}.mts`, lines: [], noRun: null };
      if (context) target.noRun ??= 'a fragment (it has a ts-context)';
      if (noRun) target.noRun ??= noRun;
      for (const [text, at] of context ?? []) target.lines.push([text, at]);
      for (const entry of body) target.lines.push(entry);
      if (!cont) programs.push(target);
    }
    context = null;
    cont = false;
    noRun = null;
  }
  return programs;
}

const base = JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')).compilerOptions;
const { options, errors } = ts.convertCompilerOptionsFromJson(
  { ...base, composite: false, declaration: false, declarationMap: false, sourceMap: false, noEmit: true, types: ['node'] },
  root,
);
if (errors.length) throw new Error(ts.flattenDiagnosticMessageText(errors[0].messageText, '\n'));

const programs = markdownFiles().flatMap(programsOf);
const virtual = new Map(programs.map((p) => [p.path, p]));
const host = ts.createCompilerHost(options);
const getSourceFile = host.getSourceFile.bind(host);
host.getSourceFile = (name, lang, ...rest) => {
  const p = virtual.get(name);
  if (p) return ts.createSourceFile(name, p.lines.map(([t]) => t).join('\n'), lang);
  return getSourceFile(name, lang, ...rest);
};
const fileExists = host.fileExists.bind(host);
host.fileExists = (name) => virtual.has(name) || fileExists(name);
const readFile = host.readFile.bind(host);
host.readFile = (name) => {
  const p = virtual.get(name);
  return p ? p.lines.map(([t]) => t).join('\n') : readFile(name);
};

for (const pkg of ['core', 'linalg', 'testing', 'models', 'sorsa']) {
  if (!existsSync(join(root, 'packages', pkg, 'dist', 'index.d.ts'))) {
    console.error(`check-docs: packages/${pkg}/dist is missing: run npm run build first`);
    process.exit(1);
  }
}

const program = ts.createProgram([...virtual.keys()], options, host);
const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || virtual.has(d.file.fileName));
for (const d of diagnostics) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) {
    console.error(`error TS${d.code}: ${message}`);
    continue;
  }
  const p = virtual.get(d.file.fileName);
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const md = p.path.replace(/\.\d+\.mts$/, '');
  console.error(`${relative(root, md)}:${p.lines[line][1] + 1}:${character + 1} - error TS${d.code}: ${message}`);
}
if (diagnostics.length) {
  console.error(`check-docs: ${diagnostics.length} error(s) in the code blocks of the docs`);
  process.exit(1);
}
console.log(`check-docs: ${programs.length} programs from the ts blocks of README.md and docs/ type-check`);
if (process.argv.includes('--no-run')) process.exit(0);

// Run the complete programs from a folder inside the repository (node_modules/.cache, ignored by
// git), so that `@sorsajs/*` resolve to the built packages as they do for a user.
const runDir = join(root, 'node_modules', '.cache', 'check-docs');
mkdirSync(runDir, { recursive: true });
let failed = 0;
for (const p of programs) {
  const where = relative(root, p.path.replace(/\.(\d+)\.mts$/, ':$1'));
  if (p.noRun) continue;
  const js = ts.transpileModule(p.lines.map(([t]) => t).join('\n'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  }).outputText;
  const file = join(runDir, `${where.replace(/[^A-Za-z0-9]+/g, '-')}.mjs`);
  writeFileSync(file, js);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [file], { cwd: runDir, encoding: 'utf8', timeout: 120_000 });
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  if (r.status === 0) {
    console.log(`check-docs: ran ${where} (${s} s)`);
    continue;
  }
  failed++;
  const why = r.error ? r.error.message : `exit status ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
  console.error(`check-docs: ${where} failed when run: ${why}\n${(r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n')}`);
}
const skipped = programs.filter((p) => p.noRun).map((p) => `${relative(root, p.path.replace(/\.(\d+)\.mts$/, ':$1'))} (${p.noRun})`);
console.log(`check-docs: not run: ${skipped.join('; ')}`);
if (failed) {
  console.error(`check-docs: ${failed} program(s) of the docs failed when run`);
  process.exit(1);
}
