// Structure figures of the production code (src/, activities/, workflows/, bin/): lines, the
// longest functions, SQL written inline in activities/, strategy tests in workflows/. Printed by
// `npx tsx scripts/structure.ts`; test/structure.test.ts holds the rules over the same figures.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const ROOT = join(__dirname, '..');
export const PRODUCTION = ['src', 'activities', 'workflows', 'bin'];

export function productionFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push(relative(ROOT, p));
    }
  };
  for (const d of PRODUCTION) walk(join(ROOT, d));
  return out.sort();
}

export interface FunctionLength {
  file: string;
  name: string;
  lines: number;
}

/** Every function, method and arrow function of a file with its length in lines. */
export function functionLengths(file: string): FunctionLength[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionLength[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node)) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, name: nameOf(node, sf), lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function nameOf(node: ts.Node, sf: ts.SourceFile): string {
  const n = (node as { name?: ts.Node }).name;
  if (n) return n.getText(sf);
  const p = node.parent;
  if (p && ts.isVariableDeclaration(p)) return p.name.getText(sf);
  if (p && ts.isPropertyAssignment(p)) return p.name.getText(sf);
  return `(anonymous at line ${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1})`;
}

const SQL =
  /^\s*(select|insert|update|delete|with|create|alter|drop|set|reset|lock|analyze|vacuum|begin|commit|rollback|savepoint|truncate|refresh|comment|grant|revoke|explain|copy|do|notify|listen|show)(?=[\s(;]|$)(?!\s+(of|or|and|it|its|them|the|a|an|to|this|that|is|was|then|before|after|back|again|stuck|failed|incomplete|test|on)\b)/i;

/** String and template literals in a file that read as SQL statements. */
export function sqlLiterals(file: string): { line: number; text: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { line: number; text: string }[] = [];
  const visit = (node: ts.Node) => {
    let s: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) s = node.text;
    else if (ts.isTemplateExpression(node)) s = node.head.text;
    if (s !== undefined && SQL.test(s) && /\s/.test(s.trim()) && !isImportOrMessage(node)) {
      out.push({ line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, text: s.slice(0, 60) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function isImportOrMessage(node: ts.Node): boolean {
  return ts.isImportDeclaration(node.parent) || ts.isExportDeclaration(node.parent);
}

export function figures() {
  const files = productionFiles();
  const lines = Object.fromEntries(files.map((f) => [f, readFileSync(join(ROOT, f), 'utf8').split('\n').length]));
  const fns = files.flatMap(functionLengths).sort((a, b) => b.lines - a.lines);
  const sql = files.filter((f) => f.startsWith('activities/')).flatMap((f) => sqlLiterals(f).map((s) => ({ file: f, ...s })));
  const wf = files.filter((f) => f.startsWith('workflows/'));
  const strategyTests = wf.flatMap((f) => (readFileSync(join(ROOT, f), 'utf8').match(/strategy\s*[!=]==/g) ?? []).map(() => f));
  const bangs = files.flatMap((f) => (readFileSync(join(ROOT, f), 'utf8').match(/\.attach!/g) ?? []).map(() => f));
  return { files, lines, fns, sql, strategyTests, bangs };
}

if (require.main === module) {
  const f = figures();
  const total = Object.values(f.lines).reduce((a, b) => a + b, 0);
  console.log(`production files: ${f.files.length}, lines: ${total}`);
  console.log(
    `files over 400 lines: ${
      Object.entries(f.lines)
        .filter(([, n]) => n > 400)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
  );
  console.log(`functions over 80 lines: ${f.fns.filter((x) => x.lines > 80).length}`);
  for (const x of f.fns.slice(0, 12)) console.log(`  ${x.lines}\t${x.file} ${x.name}`);
  console.log(`SQL literals in activities/: ${f.sql.length}`);
  const by = new Map<string, number>();
  for (const s of f.sql) by.set(s.file, (by.get(s.file) ?? 0) + 1);
  console.log(`  ${[...by].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  console.log(`strategy tests in workflows/: ${f.strategyTests.length}; .attach! assertions: ${f.bangs.length}`);
}
