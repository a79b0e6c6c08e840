/**
 * The package as users get it: `npm pack` (which builds dist/ through prepack), the tarball
 * unpacked into a fresh project's node_modules, every subpath loaded with `require` and with
 * `import` (two builds: CommonJS and real ES modules), its types compiled from CommonJS and ES
 * module consumers, a bundle of one function, and the tarball checked by publint and
 * @arethetypeswrong/cli.
 */
import { execFileSync } from 'node:child_process'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(__dirname, '..')
const SUBPATHS = [
  '',
  '/express',
  '/koa',
  '/nestjs',
  '/passport',
  '/node',
  '/fetch',
  '/noble',
  '/stores/sqlite',
  '/stores/postgres',
  '/stores/redis',
  '/testing',
] as const
/** One export each subpath must have, whichever way it is loaded. */
const EXPECTED: Record<(typeof SUBPATHS)[number], string[]> = {
  '': [
    'createBetterAuth',
    'BetterAuthServer',
    'BetterAuthClient',
    'openApiDocument',
    'createStoreFromEnv',
    'RemoteAccessKeys',
  ],
  '/express': ['betterAuth', 'requireAccess', 'protocolRouter', 'keepRawBody', 'UnauthorizedError'],
  '/koa': ['betterAuth', 'requireAccess', 'protocolMiddleware', 'getPrincipal'],
  '/nestjs': ['BetterAuthModule', 'BetterAuthGuard', 'BetterAuthAccess', 'AccessData'],
  '/passport': ['BetterAuthStrategy'],
  '/node': ['createServer', 'StandaloneServer', 'UnauthorizedError'],
  '/fetch': ['betterAuth', 'FetchBetterAuth', 'readRequestBody'],
  '/noble': ['NobleP256Verifier', 'NobleSigningKey'],
  '/stores/sqlite': ['SqliteStore'],
  '/stores/postgres': ['PostgresStore'],
  '/stores/redis': ['RedisEphemeralStore'],
  '/testing': ['describeStoreConformance'],
}
/** What the consumer project links from ours: dependencies, peers, and types for the type check. */
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  exports: Record<string, unknown>
}
const LINKED = [
  ...new Set(
    [
      ...Object.keys(manifest.dependencies),
      ...Object.keys(manifest.peerDependencies),
      '@types/x',
    ].map(name => (name.startsWith('@') ? name.split('/')[0] : name) as string)
  ),
]

let work: string
let project: string
let tarball: string

const run = (command: string, args: string[], cwd = project): string =>
  execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'better-auth-package-'))
  run('npm', ['pack', '--pack-destination', work, '--silent'], root)
  const name = readdirSync(work).find(file => file.endsWith('.tgz'))
  if (name === undefined) throw new Error('npm pack produced no tarball')
  tarball = join(work, name)
  project = join(work, 'project')
  const installed = join(project, 'node_modules', 'better-auth-protocol')
  mkdirSync(installed, { recursive: true })
  run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'])
  for (const dependency of LINKED) {
    symlinkSync(join(root, 'node_modules', dependency), join(project, 'node_modules', dependency))
  }
  writeFileSync(join(project, 'package.json'), '{"name":"consumer","private":true}\n')
}, 120_000)

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

it('ships the build, the header form specification and its vectors, and nothing else', () => {
  const files = run('tar', ['-tzf', tarball]).trim().split('\n')
  expect(files).toContain('package/dist/esm/adapters/express/index.js')
  expect(files).toContain('package/dist/esm/adapters/express/index.d.ts')
  expect(files).toContain('package/dist/cjs/adapters/express/index.js')
  expect(files).toContain('package/dist/cjs/adapters/nestjs/index.d.ts')
  expect(files).toEqual(
    expect.arrayContaining([
      'package/LICENSE',
      'package/CHANGELOG.md',
      'package/docs/http-binding.md',
      'package/docs/http-binding-vectors.md',
    ])
  )
  const shipped =
    /^package\/(dist\/|package\.json|README\.md|LICENSE|CHANGELOG\.md|docs\/http-binding(-vectors)?\.md$)/
  expect(files.filter(f => !shipped.test(f))).toEqual([])
  expect(files.some(f => f.includes('/test/') || f.endsWith('.test.js'))).toBe(false)
  // No source maps: the sources they would point to are not in the package.
  expect(files.filter(f => f.endsWith('.map'))).toEqual([])
})

it('builds real ES modules, not wrappers of the CommonJS build', () => {
  const esm = join(project, 'node_modules', 'better-auth-protocol', 'dist', 'esm')
  expect(JSON.parse(readFileSync(join(esm, 'package.json'), 'utf8'))).toMatchObject({
    type: 'module',
  })
  const sources = readdirSync(esm, { recursive: true, encoding: 'utf8' }).filter(f =>
    f.endsWith('.js')
  )
  expect(sources.length).toBeGreaterThan(30)
  for (const file of sources) {
    const text = readFileSync(join(esm, file), 'utf8')
    expect({
      file,
      cjs: /(?:from|import\s*\(|require\s*\()\s*['"][^'"]*\/cjs\//.test(text),
    }).toEqual({
      file,
      cjs: false,
    })
    expect({ file, extensionless: /\bfrom\s*['"]\.{1,2}\/[^'"]*(?<!\.js)['"]/.test(text) }).toEqual(
      {
        file,
        extensionless: false,
      }
    )
  }
  expect(readFileSync(join(esm, 'src', 'errors.js'), 'utf8')).toMatch(
    /^export class BetterAuthError/m
  )
})

it('loads every subpath with require', () => {
  const script = `
    const result = {}
    for (const sub of ${JSON.stringify(SUBPATHS)}) {
      const m = require('better-auth-protocol' + sub)
      result[sub] = Object.keys(m)
    }
    const { betterAuth } = require('better-auth-protocol/fetch')
    betterAuth({ keys: { env: false } }).fetch(new Request('http://x/key/response')).then(
      async r => console.log(JSON.stringify({ result, key: await r.text() })))`
  const out = JSON.parse(run(process.execPath, ['-e', script])) as {
    result: Record<string, string[]>
    key: string
  }
  for (const sub of SUBPATHS) expect(out.result[sub]).toEqual(expect.arrayContaining(EXPECTED[sub]))
  expect(out.key).toMatch(/^1AAI[A-Za-z0-9_-]{44}$/)
})

it('loads every subpath with import, from the ES module build', () => {
  const script = `
    import * as core from 'better-auth-protocol'
    import { betterAuth } from 'better-auth-protocol/express'
    import { SqliteStore } from 'better-auth-protocol/stores/sqlite'
    const result = {}
    for (const sub of ${JSON.stringify(SUBPATHS)}) {
      result[sub] = Object.keys(await import('better-auth-protocol' + sub))
    }
    const auth = betterAuth({ keys: { env: false } })
    // The stores by URL load their driver lazily, and give the class that import gives.
    const store = await core.createStore({ database: 'sqlite::memory:' })
    console.log(JSON.stringify({
      result,
      esm: import.meta.resolve('better-auth-protocol').includes('/dist/esm/'),
      instance: auth.core instanceof core.BetterAuthServer,
      store: store instanceof SqliteStore,
      key: await auth.responsePublicKey(),
    }))
    await store.close()`
  const out = JSON.parse(run(process.execPath, ['--input-type=module', '-e', script])) as {
    result: Record<string, string[]>
    key: string
  }
  for (const sub of SUBPATHS) expect(out.result[sub]).toEqual(expect.arrayContaining(EXPECTED[sub]))
  expect(out).toMatchObject({ esm: true, instance: true, store: true })
  expect(out.key).toMatch(/^1AAI/)
})

it('recognizes errors of the other build with instanceof', () => {
  const script = `
    import { createRequire } from 'node:module'
    import * as esm from 'better-auth-protocol'
    const cjs = createRequire(import.meta.url)('better-auth-protocol')
    const fromCjs = new cjs.InvalidTokenError('bad')
    const fromEsm = new esm.ReplayError('nonce')
    // An error thrown inside the CommonJS build, caught by code that imported the ES modules.
    let thrown
    try { cjs.decodeToken('not a token') } catch (error) { thrown = error }
    console.log(JSON.stringify({
      separate: esm.BetterAuthError !== cjs.BetterAuthError,
      base: fromCjs instanceof esm.BetterAuthError,
      same: fromCjs instanceof esm.InvalidTokenError,
      other: fromCjs instanceof esm.ExpiredTokenError,
      reverse: fromEsm instanceof cjs.ReplayError && fromEsm instanceof cjs.BetterAuthError,
      reverseOther: fromEsm instanceof cjs.InvalidTokenError,
      thrown: thrown instanceof esm.BetterAuthError,
      error: fromCjs instanceof Error,
      plain: new Error('x') instanceof esm.BetterAuthError,
      wrapped: esm.toBetterAuthError(fromCjs) === fromCjs,
    }))`
  expect(JSON.parse(run(process.execPath, ['--input-type=module', '-e', script]))).toEqual({
    separate: true,
    base: true,
    same: true,
    other: false,
    reverse: true,
    reverseOther: false,
    thrown: true,
    error: true,
    plain: false,
    wrapped: true,
  })
})

it('recognizes a server core of the other build with instanceof', () => {
  const script = `
    import { createRequire } from 'node:module'
    import * as esm from 'better-auth-protocol'
    const cjs = createRequire(import.meta.url)('better-auth-protocol')
    const fromCjs = cjs.createBetterAuth({ keys: { env: false } })
    const fromEsm = esm.createBetterAuth({ keys: { env: false } })
    console.log(JSON.stringify({
      esm: fromCjs instanceof esm.BetterAuthServer,
      cjs: fromEsm instanceof cjs.BetterAuthServer,
      other: {} instanceof esm.BetterAuthServer,
    }))`
  expect(JSON.parse(run(process.execPath, ['--input-type=module', '-e', script]))).toEqual({
    esm: true,
    cjs: true,
    other: false,
  })
})

it('bundles only what is imported', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild')
  const bundle = (code: string) =>
    esbuild.buildSync({
      stdin: { contents: code, resolveDir: project, loader: 'js' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      minify: true,
      write: false,
      logLevel: 'silent',
    }).outputFiles[0]?.contents.byteLength ?? Infinity
  // One codec: 132 bytes when measured (the CommonJS wrappers of 0.1.0 gave 198 kB).
  expect(
    bundle("import { encodeBase64Url } from 'better-auth-protocol'\nexport { encodeBase64Url }")
  ).toBeLessThan(10_000)
  // The whole entry point, for scale.
  expect(bundle("export * from 'better-auth-protocol'")).toBeGreaterThan(100_000)
})

it('runs in an app bundled with esbuild, the drivers left external', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild')
  const app = (database: string) => `
    const { createStore } = require('better-auth-protocol')
    async function main() {
      const sqlite = await createStore({ database: ${JSON.stringify(database)} })
      const memory = await createStore({ database: 'memory:' })
      console.log(JSON.stringify([sqlite.constructor.name, memory.constructor.name]))
      await sqlite.close()
      await memory.close()
    }
    main().catch(error => { console.error(error); process.exit(1) })`
  const cases = [
    // import: the ES module build; require: the CommonJS build; into either output format.
    { source: 'import', format: 'cjs' },
    { source: 'import', format: 'esm' },
    { source: 'require', format: 'cjs' },
    // CommonJS code (ours and our dependencies') in an ES module bundle calls node's builtins
    // through `require`, which needs esbuild's usual banner.
    { source: 'require', format: 'esm', banner: true },
  ] as const
  const BANNER =
    "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"
  for (const testCase of cases) {
    const { source, format } = testCase
    const name = `bundle-${source}-${format}`
    const database = join(project, `${name}.db`)
    let code = app(`sqlite:${database}`)
    if (source === 'import') {
      code = code.replace(
        "const { createStore } = require('better-auth-protocol')",
        "import { createStore } from 'better-auth-protocol'"
      )
    }
    const outfile = join(project, 'bundles', `${name}.${format === 'esm' ? 'mjs' : 'cjs'}`)
    const result = esbuild.buildSync({
      stdin: { contents: code, resolveDir: project, loader: 'js' },
      bundle: true,
      platform: 'node',
      format,
      outfile,
      external: ['better-sqlite3', 'pg', 'ioredis'],
      ...('banner' in testCase ? { banner: { js: BANNER } } : {}),
      logLevel: 'silent',
    })
    // No warning that a require could not be followed.
    expect({ name, warnings: result.warnings.filter(w => /require/i.test(w.text)) }).toEqual({
      name,
      warnings: [],
    })
    // The bundle runs outside the project's node_modules but for the drivers it leaves out.
    expect({ name, out: run(process.execPath, [outfile]).trim() }).toEqual({
      name,
      out: '["SqliteStore","MemoryStore"]',
    })
    expect(readdirSync(project)).toContain(`${name}.db`)
  }
})

it('loads pg and ioredis in an ES module bundle only when a store needs them', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild')
  // An app of the package root with the memory store; it opens the PostgreSQL and Redis stores
  // by URL only when asked (argv), as an app configured from its environment does.
  const app = `
    import { MemoryStore, openStore } from 'better-auth-protocol'
    const [database, redis] = process.argv.slice(2)
    const memory = new MemoryStore()
    const configured = openStore({ database: 'memory:' })
    const result = { memory: memory.constructor.name, configured: configured.constructor.name }
    if (database !== undefined) {
      const store = openStore({ database })
      result.postgres = [store.constructor.name, typeof store.pool.query]
      await store.close()
    }
    if (redis !== undefined) {
      const store = openStore({ database: 'memory:', redis })
      result.redis = typeof store.redis.quit
      await store.close()
    }
    await memory.close()
    await configured.close()
    console.log(JSON.stringify(result))`
  // Outside the project: no node_modules on the way up, so pg and ioredis do not resolve.
  const deployed = join(work, 'esm-bundle')
  const outfile = join(deployed, 'app.mjs')
  const result = esbuild.buildSync({
    stdin: { contents: app, resolveDir: project, loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    external: ['better-sqlite3', 'pg', 'ioredis'],
    logLevel: 'silent',
  })
  expect(result.warnings.filter(w => /require/i.test(w.text))).toEqual([])
  // No import of either driver at the top of the bundle (which Node would load at start), only
  // the calls inside the stores' constructors.
  const bundle = readFileSync(outfile, 'utf8')
  expect(bundle).not.toMatch(/^\s*import\b[^;]*?["'](?:pg|ioredis)["']/m)
  expect(bundle).not.toMatch(/\bimport\s*\(\s*["'](?:pg|ioredis)["']/)
  expect(bundle).toContain('require("pg")')
  expect(bundle).toContain('require("ioredis")')
  const start = (args: string[] = []) => run(process.execPath, [outfile, ...args], deployed)
  expect(JSON.parse(start())).toEqual({ memory: 'MemoryStore', configured: 'MemoryStore' })
  // Asking for PostgreSQL without pg installed fails then, not before.
  expect(() => start(['postgres://user@127.0.0.1:1/db'])).toThrow(/Cannot find module 'pg'/)
  // Installed beside the app, the drivers load from there (no connection is needed to open).
  mkdirSync(join(deployed, 'node_modules'), { recursive: true })
  for (const driver of ['pg', 'ioredis']) {
    symlinkSync(join(root, 'node_modules', driver), join(deployed, 'node_modules', driver))
  }
  expect(JSON.parse(start(['postgres://user@127.0.0.1:1/db', 'redis://127.0.0.1:1']))).toEqual({
    memory: 'MemoryStore',
    configured: 'MemoryStore',
    postgres: ['PostgresStore', 'function'],
    redis: 'function',
  })
})

it('type-checks from CommonJS and ES module consumers', () => {
  const source = `
    import { createBetterAuth, type AccessPrincipal } from 'better-auth-protocol'
    import { betterAuth, type AuthedRequest } from 'better-auth-protocol/express'
    import { betterAuth as koaAuth } from 'better-auth-protocol/koa'
    import { betterAuth as fetchAuth } from 'better-auth-protocol/fetch'
    import { BetterAuthModule, BetterAuthAccess } from 'better-auth-protocol/nestjs'
    import { NobleP256Verifier } from 'better-auth-protocol/noble'
    import { SqliteStore } from 'better-auth-protocol/stores/sqlite'
    import { PostgresStore } from 'better-auth-protocol/stores/postgres'
    import { RedisEphemeralStore } from 'better-auth-protocol/stores/redis'
    interface Attributes { roles: string[] }
    const core = createBetterAuth<Attributes>({ keys: { env: false } })
    const auth = betterAuth(core)
    const handler = auth.requireAccess<{ foo: string }>({ authorize: p => p.attributes.roles.length > 0 })
    const principal: AccessPrincipal<Attributes> | undefined = undefined
    type R = AuthedRequest<Attributes, { foo: string }>
    const f = fetchAuth(core).requireAccess<{ n: number }>(({ data }) => data.n + 1)
    const stores = (s: SqliteStore, p: PostgresStore, r: RedisEphemeralStore) => [createBetterAuth({ store: s }), p.migrate(), r.clear()]
    export const all = [handler, principal, koaAuth(core).koa(), f, BetterAuthModule, BetterAuthAccess, NobleP256Verifier, stores]
    export type { R }
  `
  writeFileSync(join(project, 'consumer.mts'), source)
  writeFileSync(join(project, 'consumer.cts'), source)
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const args = ['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16']
  const compile = (file: string) =>
    run(process.execPath, [tsc, ...args, '--types', 'node', '--skipLibCheck', file])
  expect(compile('consumer.mts')).toBe('')
  expect(compile('consumer.cts')).toBe('')
  // And a wrong use is caught, so the check above is a real one.
  writeFileSync(
    join(project, 'wrong.mts'),
    "import { betterAuth } from 'better-auth-protocol/express'\nbetterAuth().requireAcess()\n"
  )
  let output = ''
  try {
    compile('wrong.mts')
  } catch (error) {
    output = String((error as { stdout?: string }).stdout)
  }
  expect(output).toMatch(/TS2551: Property 'requireAcess' does not exist/)
})

it('ships the command line, whose stores load from the build', () => {
  const cli = join(
    project,
    'node_modules',
    'better-auth-protocol',
    'dist',
    'cjs',
    'cli',
    'index.js'
  )
  const manifestBin = (
    JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      bin: Record<string, string>
    }
  ).bin
  expect(
    join(
      project,
      'node_modules',
      'better-auth-protocol',
      manifestBin['better-auth-protocol'] as string
    )
  ).toBe(cli)
  expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
  expect(run(process.execPath, [cli, '--version']).trim()).toBe(
    (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version
  )
  const database = `sqlite:${join(project, 'cli.db')}`
  expect(run(process.execPath, [cli, 'migrate', '--database', database])).toMatch(
    /applied \d+ migration/
  )
  expect(run(process.execPath, [cli, 'keys', '--database', database])).toMatch(/^response 1AAI/)
  const script = `
    const { createStore } = require('better-auth-protocol')
    createStore({ database: ${JSON.stringify(database)} }).then(async store => {
      console.log(store.constructor.name)
      await store.close()
    })`
  expect(run(process.execPath, ['-e', script]).trim()).toBe('SqliteStore')
})

it('passes publint and @arethetypeswrong/cli', () => {
  const cli = join(root, 'node_modules', 'publint', 'src', 'cli.js')
  const publint = run(process.execPath, [cli, 'run', tarball, '--pack', 'false'])
  expect(publint).toContain('All good!')
  const attwBin = JSON.parse(
    readFileSync(join(root, 'node_modules', '@arethetypeswrong', 'cli', 'package.json'), 'utf8')
  ) as { bin: Record<string, string> }
  const attw = join(root, 'node_modules', '@arethetypeswrong', 'cli', attwBin.bin.attw as string)
  const report = JSON.parse(run(process.execPath, [attw, tarball, '--format', 'json'])) as {
    problems: Record<string, unknown>
    analysis: { problems: unknown[]; entrypoints: Record<string, unknown> }
  }
  expect(Object.keys(report.analysis.entrypoints).sort()).toEqual(
    Object.keys(manifest.exports).sort()
  )
  expect(report.analysis.problems).toEqual([])
  expect(report.problems).toEqual({})
}, 120_000)
