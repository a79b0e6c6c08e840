/** The benchmark's servers, compiled (see compiledChild). */
import { join } from 'node:path'
import { buildSync } from 'esbuild'

/**
 * The targets run as JavaScript, compiled once per run (bench/child.ts and this project's code it
 * imports, bundled by esbuild; packages stay external), as a deployment runs the compiled
 * package: not under tsx, whose loader names every function at its creation (`keepNames`: an
 * `Object.defineProperty` per closure made per request), a cost the published code does not
 * have. Written under node_modules/.cache so that the packages resolve from it.
 */
let compiled: string | undefined
export function compiledChild(): string {
  if (compiled !== undefined) return compiled
  const outfile = join(__dirname, '..', 'node_modules', '.cache', 'better-auth-bench', 'child.js')
  buildSync({
    entryPoints: [join(__dirname, 'child.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    keepNames: false,
    logLevel: 'warning',
  })
  compiled = outfile
  return outfile
}
