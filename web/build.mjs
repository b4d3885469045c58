// Bundles the dashboard into web/dist (app.js, app.css, index.html), which the
// hearth binary embeds. One minified ES module: no inline script, so the
// strict Content-Security-Policy holds. Prints the compressed size.
import { build } from 'esbuild';
import { mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';

await mkdir('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110'],
  outfile: 'dist/app.js',
  legalComments: 'none',
  logLevel: 'warning',
});
const css = (await readFile('node_modules/uplot/dist/uPlot.min.css', 'utf8')) + '\n' + (await readFile('src/app.css', 'utf8'));
await writeFile('dist/app.css', css);
await copyFile('src/index.html', 'dist/index.html');
// The bundled libraries' licences, served beside the bundle.
await writeFile('dist/licenses.txt', 'Hearth dashboard: third-party code in app.js and app.css\n\n== uPlot 1.6.32 ==\n' + (await readFile('node_modules/uplot/LICENSE', 'utf8')));
const js = await readFile('dist/app.js');
console.log(`dashboard: app.js ${js.length} bytes, ${gzipSync(js, { level: 9 }).length} gzipped`);
