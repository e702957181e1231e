// Builds the web app into dist/: content-hashed JS and CSS (and the images Leaflet's CSS
// names), and an index.html that references them. Prints the initial JS + CSS size.
//   node build.mjs            production build (minified)
//   node build.mjs --dev      unminified, with inline source maps
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync, rmSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
const dev = process.argv.includes('--dev');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  absWorkingDir: here,
  entryPoints: ['src/main.ts'],
  bundle: true,
  splitting: true, // the drawing tools load on first use
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: out,
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  publicPath: '/',
  assetNames: 'img/[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  minify: !dev,
  sourcemap: dev ? 'inline' : 'linked',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

// The entry's JS and CSS, as esbuild named them.
const outputs = result.metafile.outputs;
const entry = Object.entries(outputs).find(([, o]) => o.entryPoint === 'src/main.ts');
if (!entry) throw new Error('no entry output');
const [jsPath, jsMeta] = entry;
const cssPath = jsMeta.cssBundle;
const rel = (p) => relative(out, join(here, p));
const href = (p) => `/${rel(p)}`;

const template = readFileSync(join(here, 'src/index.html'), 'utf8');
const html = template
  .replace('<!-- styles -->', cssPath ? `<link rel="stylesheet" href="${href(cssPath)}">` : '')
  .replace('<!-- scripts -->', `<script type="module" src="${href(jsPath)}"></script>`);
writeFileSync(join(out, 'index.html'), html);

// The API reference (/planscape-backend/docs, served by the server under the API's
// prefix so that nginx forwards it with the API): Swagger UI, bundled apart from the app.
const docsOut = join(out, 'docs');
const docs = await build({
  absWorkingDir: here,
  entryPoints: ['src/docs/docs.ts'],
  bundle: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: docsOut,
  entryNames: '[name]-[hash]',
  publicPath: '/planscape-backend/docs/',
  assetNames: 'img/[name]-[hash]',
  loader: { '.png': 'file', '.svg': 'file' },
  minify: !dev,
  sourcemap: false,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'error',
});
const docsEntry = Object.entries(docs.metafile.outputs).find(([, o]) => o.entryPoint === 'src/docs/docs.ts');
if (!docsEntry) throw new Error('no docs output');
const docsHref = (p) => `/planscape-backend/docs/${relative(docsOut, join(here, p))}`;
writeFileSync(join(docsOut, 'index.html'), readFileSync(join(here, 'src/docs/index.html'), 'utf8')
  .replace('<!-- styles -->', `<link rel="stylesheet" href="${docsHref(docsEntry[1].cssBundle)}">`)
  .replace('<!-- scripts -->', `<script type="module" src="${docsHref(docsEntry[0])}"></script>`));

// Initial download: the entry JS, its static imports and its CSS (lazy chunks apart).
const gz = (p) => gzipSync(readFileSync(join(here, p)), { level: 9 }).length;
// Follows static imports from the entry (what the browser fetches before the app runs),
// and collects the dynamic ones apart (fetched on first use).
const initialSet = new Set();
const lazySet = new Set();
const visit = (path) => {
  if (initialSet.has(path)) return;
  initialSet.add(path);
  for (const i of outputs[path]?.imports ?? []) {
    if (i.kind === 'import-statement') visit(i.path);
    else if (i.kind === 'dynamic-import') lazySet.add(i.path);
  }
};
visit(jsPath);
if (cssPath) initialSet.add(cssPath);
const initial = [...initialSet];
const lazy = [...lazySet].filter((p) => !initialSet.has(p));
for (const p of [...lazy]) {
  for (const i of outputs[p]?.imports ?? []) if (!initialSet.has(i.path) && !lazy.includes(i.path)) lazy.push(i.path);
}
const size = (list) => list.reduce((a, p) => a + gz(p), 0);
const report = {
  initial: initial.map(rel),
  initial_gzip_bytes: size(initial),
  lazy: lazy.map(rel),
  lazy_gzip_bytes: size(lazy),
};
writeFileSync(join(out, 'build-report.json'), JSON.stringify(report, null, 2) + '\n');

// Precompressed twins for servers that send them as they are (nginx gzip_static, the
// server's static files): compressed once at build time, at the best level.
for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.(js|css|html|svg|json)$/.test(entry.name)) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  writeFileSync(`${file}.gz`, gzipSync(readFileSync(file), { level: 9 }));
}
console.log(`web/dist: initial JS+CSS ${(report.initial_gzip_bytes / 1024).toFixed(1)} KB gzip ` +
  `(${report.initial.join(', ')}); on demand ${(report.lazy_gzip_bytes / 1024).toFixed(1)} KB gzip`);
if (report.initial_gzip_bytes > 250 * 1024) {
  console.error('initial JS+CSS is over the 250 KB gzip budget');
  process.exit(1);
}
