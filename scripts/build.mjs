/**
 * Builds dist/: the CommonJS build by tsc (dist/cjs), then, for every subpath in package.json
 * "exports", a thin ES module (dist/esm/<name>.mjs + .d.mts) that re-exports the CommonJS build.
 * `import` and `require` therefore load the same module instances: one class identity for
 * `instanceof` checks and Nest injection tokens, whichever way an app loads the package.
 *
 *   node scripts/build.mjs        (make build, npm run build, and npm pack through prepack)
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, posix, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

rmSync(resolve(root, 'dist'), { recursive: true, force: true })
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
  {
    cwd: root,
    stdio: 'inherit',
  }
)

const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'))
const specifier = (from, to) => {
  const path = relative(dirname(from), to).split('\\').join(posix.sep)
  return path.startsWith('.') ? path : `./${path}`
}

for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object' || target.import === undefined) continue
  const cjs = resolve(root, target.require.default)
  const esm = resolve(root, target.import.default)
  const esmTypes = resolve(root, target.import.types)
  const names = Object.keys(require(cjs)).filter(
    name => name !== 'default' && name !== '__esModule'
  )
  if (names.length === 0) throw new Error(`${subpath}: ${cjs} exports nothing`)
  mkdirSync(dirname(esm), { recursive: true })
  writeFileSync(
    esm,
    `// ES module entry of "${pkg.name}${subpath.slice(1)}": re-exports the CommonJS build.\n` +
      `import cjs from '${specifier(esm, cjs)}'\n\n` +
      `export const {\n${names.map(name => `  ${name},`).join('\n')}\n} = cjs\n`
  )
  writeFileSync(esmTypes, `export * from '${specifier(esmTypes, cjs)}'\n`)
}
