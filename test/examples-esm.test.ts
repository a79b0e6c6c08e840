/**
 * The examples as modules of an ES-module app (`"type": "module"`): importing one builds the app
 * and returns its exports, without listening and without CommonJS-only globals (`require`).
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = join(__dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'better-auth-esm-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

beforeAll(() => {
  // An ES-module app whose `better-auth-protocol` imports resolve to the sources (as in tsconfig).
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        experimentalDecorators: true,
        paths: {
          'better-auth-protocol': [join(root, 'src/index.ts')],
          'better-auth-protocol/*': [join(root, 'adapters/*/index.ts')],
        },
      },
    })
  )
})

it.each([
  ['express/server.ts', 'app'],
  ['koa/server.ts', 'app'],
  ['fetch/server.ts', 'handle'],
  ['node/server.ts', 'server'],
])('examples/%s imports as an ES module without listening', (file, name) => {
  const copy = `${file.replace('/', '-')}`
  copyFileSync(join(root, 'examples', file), join(dir, copy))
  // The process ends on its own once the import resolves: nothing listens.
  const script = [
    `const m = await import('./${copy}')`,
    `if (m.${name} === undefined) throw new Error('no ${name}')`,
    `console.log(typeof require === 'undefined' ? 'esm' : 'cjs', typeof m.${name})`,
    `await (m.auth ?? m.server.auth).close()`,
  ].join('\n')
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        BETTER_AUTH_DATABASE: 'memory:',
      },
      encoding: 'utf8',
      timeout: 20_000,
    }
  )
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' })
  expect(result.stdout).toMatch(/^esm (function|object)\n$/)
})
