// Builds the web console: src/web/main.tsx and the CSS it imports, bundled by esbuild into
// dist/web/assets/ under content-hashed names (so the relay can cache them for a year), and
// dist/web/index.html, the one page every console path serves, naming those files.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
const assets = join(out, 'assets');

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/web/main.tsx'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  // Pages loaded with import() (the terminal, the recording player) get chunks of their own.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  tsconfig: 'tsconfig.web.json',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  // No source maps: with the sources inside they would be most of the tarball (megabytes of xterm.js).
  sourcemap: false,
  // Fonts and images that a stylesheet names become files of their own; the CSP allows only 'self'.
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.svg': 'file', '.png': 'file' },
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(assets, join(root, p)));
const [entry] = Object.entries(result.metafile.outputs).filter(([, o]) => o.entryPoint === 'src/web/main.tsx');
if (!entry) throw new Error('esbuild wrote no output for src/web/main.tsx: see its messages above');
const script = `/assets/${basename(entry[0])}`;
// The entry's stylesheet holds every style, those of lazily loaded pages too.
const styles = entry[1].cssBundle ? [`/assets/${basename(entry[1].cssBundle)}`] : [];

const tags = [...styles.map((href) => `<link rel="stylesheet" href="${href}">`), `<script type="module" src="${script}"></script>`].join('\n    ');
const template = readFileSync(join(root, 'src/web/index.html'), 'utf8');
if (!template.includes('<!-- assets -->')) throw new Error('src/web/index.html lost its <!-- assets --> marker, where the build puts the script and style tags');
writeFileSync(join(out, 'index.html'), template.replace('<!-- assets -->', tags));
console.log(`web console: dist/web/index.html, ${outputs.length} files in dist/web/assets/`);
