/**
 * Builds dist/ from the same sources twice, at the same time:
 *
 *   dist/cjs  CommonJS (tsconfig.build.json): `require`, and the command line.
 *   dist/esm  ES modules (tsconfig.build.esm.json), in a `"type": "module"` scope: `import`.
 *            tsc leaves relative specifiers as written (`'../errors'`), which Node's ES module
 *            loader does not complete, so they are rewritten here to the emitted files
 *            (`'../errors.js'`, `'./dir/index.js'`), in the code and in the declarations.
 *            A module whose source calls `require('literal')` at run time (lazy, synchronous
 *            loading of optional drivers) keeps that call for bundlers, and gets a fallback
 *            from scripts/shims/esm-require.js where no `require` exists.
 *
 * The two builds are separate module instances; the classes users test with `instanceof`
 * (BetterAuthError and its subclasses, BetterAuthServer) recognize instances of either build by a
 * brand under a `Symbol.for` key.
 *
 *   node scripts/build.mjs        (make build, npm run build, and npm pack through prepack)
 */
import { execFile } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const esmDir = resolve(root, 'dist/esm')
const started = performance.now()

const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'))

// The OpenAPI document's info.version is the package version, written in the source.
const openapi = readFileSync(resolve(root, 'src/server/openapi.ts'), 'utf8')
const documented = /const PACKAGE_VERSION = '([^']*)'/.exec(openapi)?.[1]
if (documented !== pkg.version) {
  throw new Error(
    `src/server/openapi.ts: PACKAGE_VERSION is ${documented}, package.json says ${pkg.version}`
  )
}

rmSync(resolve(root, 'dist'), { recursive: true, force: true })

const tsc = project =>
  promisify(execFile)(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project], {
    cwd: root,
  }).catch(error => {
    process.stdout.write(error.stdout ?? '')
    process.stderr.write(error.stderr ?? '')
    throw new Error(`tsc -p ${project} failed`)
  })
const results = await Promise.allSettled([
  tsc('tsconfig.build.json'),
  tsc('tsconfig.build.esm.json'),
])
for (const result of results) if (result.status === 'rejected') throw result.reason

const posixPath = path => path.split('\\').join(posix.sep)
const specifier = (fromFile, toFile) => {
  const path = posixPath(relative(dirname(fromFile), toFile))
  return path.startsWith('.') ? path : `./${path}`
}

function* files(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* files(path)
    else yield path
  }
}

/** `'../errors'` → `'../errors.js'` (or `'./dir/index.js'`), as emitted next to `file`. */
function complete(file, spec, declaration) {
  if (/\.(m?js|json)$/.test(spec)) return spec
  const target = resolve(dirname(file), spec)
  const emitted = ext => existsSync(target + ext) && statSync(target + ext).isFile()
  if (emitted(declaration ? '.d.ts' : '.js')) return `${spec}.js`
  if (existsSync(join(target, declaration ? 'index.d.ts' : 'index.js'))) {
    return `${spec.replace(/\/$/, '')}/index.js`
  }
  throw new Error(`${relative(root, file)}: cannot resolve '${spec}' in the ES module build`)
}

const RELATIVE = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"\n]*|\.{1,2})\2/g
/** A call of a free `require` (not in a comment, not a property such as `module.require`). */
const FREE_REQUIRE = /^(?!\s*(?:\/\/|\/?\*)).*(?<![\w$.])require\s*[(.]/m
/** A literal call of the free `require`: `require('./sqlite')`. */
const LITERAL_REQUIRE = /(?<![\w$.])(require\(\s*((['"])[^'"\n]+\3)\s*\))/g
/** The form LITERAL_REQUIRE calls take in the ES module build. */
const GUARDED_REQUIRE =
  /__esmRequireHere\((['"])[^'"\n]+\1, typeof require === 'function' \? \(\) => require\(\1[^'"\n]+\1\) : undefined\)/g

const shim = join(esmDir, 'shims', 'esm-require.js')
mkdirSync(dirname(shim), { recursive: true })
copyFileSync(resolve(root, 'scripts/shims/esm-require.js'), shim)
writeFileSync(
  join(esmDir, 'package.json'),
  `${JSON.stringify({ type: 'module', sideEffects: false }, null, 2)}\n`
)

for (const file of files(esmDir)) {
  const declaration = file.endsWith('.d.ts')
  if (file === shim || (!declaration && !file.endsWith('.js'))) continue
  const source = readFileSync(file, 'utf8')
  let text = source.replace(
    RELATIVE,
    (_, keyword, quote, spec) => `${keyword}${quote}${complete(file, spec, declaration)}${quote}`
  )
  if (!declaration && FREE_REQUIRE.test(text)) {
    // Each `require('x')` stays a literal call of the free `require`, which bundlers (esbuild,
    // webpack) see and include; where no `require` exists (Node's ES module loader) the shim's
    // loads it instead.
    text = text.replace(
      LITERAL_REQUIRE,
      (_, call, spec) =>
        `__esmRequireHere(${spec}, typeof require === 'function' ? () => ${call} : undefined)`
    )
    if (FREE_REQUIRE.test(text.replace(GUARDED_REQUIRE, ''))) {
      throw new Error(
        `${relative(root, file)}: call require only as require('literal') (the ES module build needs it)`
      )
    }
    text =
      `import { esmRequire as __esmRequire } from '${specifier(file, shim)}';\n` +
      `const __esmRequireHere = __esmRequire(import.meta.url);\n` +
      text
  }
  if (text !== source) writeFileSync(file, text)
}

// Every entry point of package.json "exports" exists in both builds.
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object') continue
  for (const condition of ['import', 'require']) {
    for (const path of Object.values(target[condition])) {
      if (!existsSync(resolve(root, path))) {
        throw new Error(`exports["${subpath}"].${condition}: ${path} was not built`)
      }
    }
  }
}

console.log(`built dist/cjs and dist/esm in ${((performance.now() - started) / 1000).toFixed(1)} s`)
