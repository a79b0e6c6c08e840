/**
 * `better-auth-protocol/client` bundles for the browser with esbuild, without shims: no node:
 * import, no Buffer, and at most 30 KB minified + gzipped with the browser stores.
 */
import { build } from 'esbuild'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

const BUDGET = 30 * 1024

it('bundles src/client/index.ts for platform browser within the size budget', async () => {
  const result = await build({
    entryPoints: [join(__dirname, '../src/client/index.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
  })
  expect(result.errors).toEqual([])
  expect(result.warnings).toEqual([])
  const imports = Object.values(result.metafile.inputs).flatMap(input =>
    input.imports.map(i => i.path)
  )
  expect(imports.filter(path => path.startsWith('node:') || !/[/\\]/.test(path))).toEqual([])
  const outputs = Object.values(result.metafile.outputs)
  expect(outputs.flatMap(output => output.imports)).toEqual([])
  const code = result.outputFiles[0]?.text as string
  expect(code).not.toMatch(/\bBuffer\b/)
  expect(code).not.toMatch(/\brequire\(/)
  expect(code).not.toMatch(/node:/)
  // What the client holds: the browser stores and WebCrypto keys are in it.
  expect(code).toMatch(/indexedDB/)
  expect(code).toMatch(/navigator/)
  const gzipped = gzipSync(code, { level: 9 }).length
  console.warn(
    `better-auth-protocol/client: ${(code.length / 1024).toFixed(1)} KB minified, ` +
      `${(gzipped / 1024).toFixed(1)} KB minified + gzipped (budget ${BUDGET / 1024} KB)`
  )
  expect(gzipped).toBeLessThanOrEqual(BUDGET)
})
