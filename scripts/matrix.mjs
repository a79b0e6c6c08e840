#!/usr/bin/env node
/**
 * The compatibility matrix: smoke tests of the packed package in fresh consumer apps.
 *
 * The tarball (`npm pack`) is installed from a file into one new app per cell, next to the
 * framework or driver major that cell tests, fetched from the npm registry; each app serves a
 * protected route and runs one client flow against it with the package's own client
 * (createAccount → createSession → accessRequest), then exits. Cells:
 *
 *   Express 4, Express 5, Koa 2, Koa 3, NestJS 10, NestJS 11   one app per framework major
 *   NestJS 12 (Express), NestJS 12 (Fastify)   an ES module app (`"type": "module"`, `import`):
 *                         Nest 12 is ESM-only, and the app gets the adapter's ES module build
 *   ioredis 5 + pg 8      the store (PostgreSQL + Redis) and the rate limiter in Redis, against
 *                         the local services (BETTER_AUTH_TEST_POSTGRES, BETTER_AUTH_TEST_REDIS)
 *   Node 22, Node 24      the Express 5 app under that Node.js (`npx -p node@N`), with SQLite on
 *                         the built-in node:sqlite (no better-sqlite3 installed)
 *   node:sqlite 22, 24    the SQLite store's conformance suite on node:sqlite (this repository)
 *
 * Installs run in parallel (MATRIX_JOBS, default 3) with npm's shared cache. A cell whose
 * versions the registry cannot give is skipped with the reason. One line per cell, then
 * `N passed, N failed, N skipped`; the exit code is 1 if any cell failed.
 *
 *   node scripts/matrix.mjs [cell-name …]     (make test-matrix; MATRIX_TARBALL to reuse a pack)
 */
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
// The services of the test suite (test/stores/services.ts).
const POSTGRES_URL =
  process.env.BETTER_AUTH_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.BETTER_AUTH_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const JOBS = Math.max(1, Number(process.env.MATRIX_JOBS ?? 3))
const started = performance.now()
const work = mkdtempSync(join(tmpdir(), 'better-auth-matrix-'))
const keep = process.env.MATRIX_KEEP === '1'

// ------------------------------------------------------------------ the apps

/** The client flow every app runs against itself. */
const FLOW = `
const { BetterAuthClient, Blake3Hasher, NodeSigningKey } = require('better-auth-protocol')
exports.flow = async function flow(baseUrl, responseKey) {
  const client = new BetterAuthClient({ baseUrl, responseKey })
  const recovery = NodeSigningKey.generate()
  await client.createAccount(new Blake3Hasher().sum(recovery.publicKeyText))
  await client.createSession()
  const reply = await client.accessRequest('/foo/bar', { foo: 'x', bar: 'y' })
  if (reply.wasFoo !== 'x' || reply.wasBar !== 'y') throw new Error('reply: ' + JSON.stringify(reply))
  // An unsigned request to the protected route is refused.
  const refused = await fetch(baseUrl + '/foo/bar', { method: 'POST', body: '{}' })
  if (refused.status !== 401) throw new Error('unsigned request: ' + refused.status)
}
exports.done = function done(extra = '') {
  console.log('ok node ' + process.version + (extra ? ' ' + extra : ''))
}
`

const STORE = `
const { openStore } = require('better-auth-protocol')
const store = openStore({ database: process.env.MATRIX_DATABASE || 'memory:' })
const driver = store.db && store.db.name ? 'sqlite=' + store.db.name : ''
`

// A protected route on the standalone server, for the client runtimes' cells: prints its URL and
// response key, then serves until killed.
const RUNTIME_SERVER = `
const { createServer } = require('better-auth-protocol/node')
const server = createServer({ rateLimit: false })
server.protect('/foo/bar', ({ request }) => ({ wasFoo: request.foo, wasBar: request.bar }))
server.listen(0, '127.0.0.1').then(async () => {
  const key = await server.auth.responsePublicKey()
  console.log('listening http://127.0.0.1:' + server.server.address().port + ' ' + key)
})
`

// The browser entry of the client, as a Deno, Bun or other Node app would import it.
const RUNTIME_CLIENT = `
import { BetterAuthClient, generateRecoveryKey } from 'better-auth-protocol/client'
const args = typeof Deno !== 'undefined' ? Deno.args : process.argv.slice(2)
const client = new BetterAuthClient({ baseUrl: args[0], responseKey: args[1] })
await client.createAccount((await generateRecoveryKey()).hash)
await client.createSession()
const reply = await client.accessRequest('/foo/bar', { foo: 'x', bar: 'y' })
if (reply.wasFoo !== 'x' || reply.wasBar !== 'y') throw new Error('reply: ' + JSON.stringify(reply))
console.log('ok client')
`

// The Nest apps' controller and module (plain JavaScript: the decorators applied by hand), the same
// in the CommonJS and the ES module app.
const NEST_APP_MODULE = `class AppController {
  fooBar(body) {
    return { wasFoo: body.foo, wasBar: body.bar }
  }
}
Body()(AppController.prototype, 'fooBar', 0)
const method = Object.getOwnPropertyDescriptor(AppController.prototype, 'fooBar')
for (const decorate of [Post('foo/bar'), HttpCode(200), BetterAuthAccess()]) {
  decorate(AppController.prototype, 'fooBar', method)
}
Controller()(AppController)
class AppModule {}
Module({ imports: [BetterAuthModule.forRoot({})], controllers: [AppController] })(AppModule)
`

const APPS = {
  express: `
const express = require('express')
const { betterAuth } = require('better-auth-protocol/express')
const { flow, done } = require('./flow.cjs')
${STORE}
const auth = betterAuth({ store })
const app = express()
app.use(auth.express())
app.use(express.json({ verify: auth.verify }))
app.post('/foo/bar', auth.requireAccess(), (req, res) => {
  res.json({ wasFoo: req.body.foo, wasBar: req.body.bar })
})
app.use(auth.errorHandler())
const server = app.listen(0, '127.0.0.1', async () => {
  try {
    await flow('http://127.0.0.1:' + server.address().port, await auth.responsePublicKey())
    done('express ' + require('express/package.json').version + ' ' + driver)
  } finally {
    server.close()
    await auth.close()
  }
})
`,
  koa: `
const Koa = require('koa')
const { betterAuth } = require('better-auth-protocol/koa')
const { flow, done } = require('./flow.cjs')
${STORE}
const auth = betterAuth({ store })
const app = new Koa()
app.use(auth.errorHandler())
app.use(auth.koa())
const protect = auth.requireAccess()
app.use(async (ctx, next) => {
  if (ctx.path !== '/foo/bar' || ctx.method !== 'POST') return next()
  await protect(ctx, async () => {
    const { request } = ctx.state.betterAuth
    ctx.body = { wasFoo: request.foo, wasBar: request.bar }
  })
})
const server = app.listen(0, '127.0.0.1', async () => {
  try {
    await flow('http://127.0.0.1:' + server.address().port, await auth.responsePublicKey())
    done('koa ' + require('koa/package.json').version)
  } finally {
    server.close()
    await auth.close()
  }
})
`,
  nestjs: `
require('reflect-metadata')
const { Body, Controller, HttpCode, Module, Post } = require('@nestjs/common')
const { NestFactory } = require('@nestjs/core')
const { BetterAuthAccess, BetterAuthModule, BetterAuthServer } = require('better-auth-protocol/nestjs')
const { flow, done } = require('./flow.cjs')

${NEST_APP_MODULE}
async function main() {
  const app = await NestFactory.create(AppModule, { rawBody: true, logger: false })
  await app.listen(0, '127.0.0.1')
  try {
    const auth = app.get(BetterAuthServer)
    await flow('http://127.0.0.1:' + app.getHttpServer().address().port, await auth.responsePublicKey())
    done('@nestjs/core ' + require('@nestjs/core/package.json').version)
  } finally {
    await app.close()
  }
}
main().catch(error => { console.error(error); process.exit(1) })
`,
  // An ES module app (Nest 12 is ESM-only): `import` gets the adapter's ES module build, which
  // shares the app's one copy of @nestjs/core. NEST_PLATFORM=fastify runs it on Fastify.
  'nestjs-esm': `
import 'reflect-metadata'
import { createRequire } from 'node:module'
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import { BetterAuthAccess, BetterAuthModule, BetterAuthServer } from 'better-auth-protocol/nestjs'
import { flow, done } from './flow.cjs'

const require = createRequire(import.meta.url)
const platform = process.env.NEST_PLATFORM === 'fastify' ? 'fastify' : 'express'

${NEST_APP_MODULE}
const options = { rawBody: true, logger: false }
let app
if (platform === 'fastify') {
  const { FastifyAdapter } = await import('@nestjs/platform-fastify')
  app = await NestFactory.create(AppModule, new FastifyAdapter(), options)
} else {
  app = await NestFactory.create(AppModule, options)
}
await app.listen(0, '127.0.0.1')
try {
  const auth = app.get(BetterAuthServer)
  await flow('http://127.0.0.1:' + app.getHttpServer().address().port, await auth.responsePublicKey())
  done('esm @nestjs/core ' + require('@nestjs/core/package.json').version + ' ' + platform)
} finally {
  await app.close()
}
`,
  services: `
const { createStore, createBetterAuth } = require('better-auth-protocol')
const { createServer } = require('better-auth-protocol/node')
const { Client } = require('pg')
const { flow, done } = require('./flow.cjs')
const name = 'matrix_' + process.pid + '_' + Date.now().toString(36)
async function main() {
  // A new prefix looks like a wiped Redis, which refuses messages signed before its first use;
  // clear() marks it as known empty.
  const { RedisEphemeralStore } = require('better-auth-protocol/stores/redis')
  const fresh = new RedisEphemeralStore({ url: process.env.REDIS_URL, prefix: name + ':' })
  await fresh.clear()
  await fresh.close()
  const store = await createStore({
    database: process.env.POSTGRES_URL + '?schema=' + name,
    redis: process.env.REDIS_URL + '?prefix=' + name + ':',
  })
  const auth = createBetterAuth({ store, rateLimit: { redis: store.redis } })
  const server = createServer(auth)
  server.protect('/foo/bar', ({ request }) => ({ wasFoo: request.foo, wasBar: request.bar }))
  const { port } = await server.listen(0, '127.0.0.1')
  try {
    await flow('http://127.0.0.1:' + port, await auth.responsePublicKey())
    done('pg ' + require('pg/package.json').version + ' ioredis ' + require('ioredis/package.json').version)
  } finally {
    await server.close()
    await auth.close()
    const pg = new Client({ connectionString: process.env.POSTGRES_URL })
    await pg.connect()
    await pg.query('DROP SCHEMA IF EXISTS "' + name + '" CASCADE')
    await pg.end()
  }
}
main().catch(error => { console.error(error); process.exit(1) })
`,
}

const NEST = major => ({
  '@nestjs/common': `^${major}.0.0`,
  '@nestjs/core': `^${major}.0.0`,
  '@nestjs/platform-express': `^${major}.0.0`,
  'reflect-metadata': '^0.2.0',
  rxjs: '^7.8.0',
})

/** The cells: an app and its dependencies, or a command run elsewhere. */
const CELLS = [
  { name: 'express 4', app: 'express', deps: { express: '^4.17.0' } },
  { name: 'express 5', app: 'express', deps: { express: '^5.0.0' } },
  { name: 'koa 2', app: 'koa', deps: { koa: '^2.13.0' } },
  { name: 'koa 3', app: 'koa', deps: { koa: '^3.0.0' } },
  { name: 'nestjs 10', app: 'nestjs', deps: NEST(10) },
  { name: 'nestjs 11', app: 'nestjs', deps: NEST(11) },
  { name: 'nestjs 12 esm (express)', app: 'nestjs-esm', esm: true, deps: NEST(12) },
  // A CommonJS app on Nest 12: require() of Nest's ES modules (Node.js 20.19+, 22.12+).
  { name: 'nestjs 12 commonjs (express)', app: 'nestjs', deps: NEST(12) },
  {
    name: 'nestjs 12 esm (fastify)',
    app: 'nestjs-esm',
    esm: true,
    env: { NEST_PLATFORM: 'fastify' },
    deps: { ...NEST(12), '@nestjs/platform-fastify': '^12.0.0' },
  },
  { name: 'ioredis 5 + pg 8', app: 'services', deps: { ioredis: '^5.0.0', pg: '^8.0.0' } },
  { name: 'node 22 (express 5, node:sqlite)', uses: 'express 5', node: '22', sqlite: true },
  { name: 'node 24 (express 5, node:sqlite)', uses: 'express 5', node: '24', sqlite: true },
  { name: 'node:sqlite store conformance (node 22)', conformance: '22' },
  { name: 'node:sqlite store conformance (node 24)', conformance: '24' },
  // better-auth-protocol/client (no node:* modules) in other runtimes, from the packed package.
  {
    name: 'client entry on Node 22',
    uses: 'express 5',
    runtime: ['npx', '-y', '-p', 'node@22', 'node'],
  },
  {
    name: 'client entry on Node 24',
    uses: 'express 5',
    runtime: ['npx', '-y', '-p', 'node@24', 'node'],
  },
  { name: 'client entry on Bun', uses: 'express 5', runtime: ['npx', '-y', 'bun@1'] },
  {
    name: 'client entry on Deno',
    uses: 'express 5',
    runtime: ['npx', '-y', 'deno', 'run', '--allow-net', '--allow-read', '--allow-env'],
  },
]

// ------------------------------------------------------------------ running

const execFileAsync = promisify(execFile)

/** Runs a command; resolves with its exit code and output (never rejects). */
function run(command, args, options = {}) {
  return new Promise(resolvePromise => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', chunk => (output += chunk))
    child.stderr.on('data', chunk => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 240_000)
    child.on('close', code => {
      clearTimeout(timer)
      resolvePromise({ code, output })
    })
  })
}

/** The versions the registry does not have: skip, do not fail. */
const UNAVAILABLE = /ETARGET|E404|No matching version|notarget|ENOVERSIONS/

async function install(cell, tarball) {
  const dir = join(work, cell.name.replace(/[^\w.-]+/g, '-'))
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'matrix-app',
        private: true,
        ...(cell.esm ? { type: 'module' } : {}),
        dependencies: { 'better-auth-protocol': `file:${tarball}`, ...cell.deps },
      },
      null,
      2
    )}\n`
  )
  const installed = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    { cwd: dir }
  )
  if (installed.code !== 0) {
    if (UNAVAILABLE.test(installed.output)) {
      const reason = installed.output.split('\n').find(line => UNAVAILABLE.test(line)) ?? ''
      return { skip: `not installable here: ${reason.replace(/^npm error (notarget )?/, '')}` }
    }
    throw new Error(`npm install failed:\n${installed.output}`)
  }
  writeFileSync(join(dir, 'flow.cjs'), FLOW)
  const file = cell.esm ? 'app.mjs' : 'app.cjs'
  writeFileSync(join(dir, file), APPS[cell.app])
  return { dir, file }
}

function lastLine(text) {
  return (
    text
      .trim()
      .split('\n')
      .filter(line => /ERR|error/i.test(line))
      .slice(-1)[0] ?? ''
  ).trim()
}

async function runApp(dir, node, env = {}, file = 'app.cjs') {
  const command =
    node === undefined ? [process.execPath] : ['npx', '-y', '-p', `node@${node}`, 'node']
  const result = await run(command[0], [...command.slice(1), file], {
    cwd: dir,
    env: { POSTGRES_URL, REDIS_URL, ...env },
    timeoutMs: 120_000,
  })
  const ok = /^ok .*$/m.exec(result.output)
  if (result.code !== 0 || ok === null)
    throw new Error(result.output.trim() || `exit ${result.code}`)
  return ok[0].slice(3)
}

async function conformance(node) {
  const result = await run(
    'npx',
    [
      '-y',
      '-p',
      `node@${node}`,
      'node',
      'node_modules/jest/bin/jest.js',
      'test/stores/sqlite.test.ts',
    ],
    { env: { BETTER_AUTH_SQLITE_DRIVER: 'node:sqlite' }, timeoutMs: 240_000 }
  )
  const summary = /Tests:\s+(.*)/.exec(result.output)?.[1] ?? ''
  if (/npx canceled|ETARGET|E404|ENOTFOUND|EAI_AGAIN/.test(result.output) && summary === '') {
    return { skip: `node@${node} cannot be fetched: ${lastLine(result.output)}` }
  }
  if (result.code !== 0) throw new Error(result.output.trim().split('\n').slice(-40).join('\n'))
  return { detail: summary.trim() }
}

/** Runs the client entry in `runtime` (a command) against a standalone server from `dir`. */
async function clientRuntime(dir, runtime, name) {
  const file = `client-${name.replace(/[^\w]+/g, '-')}.mjs`
  writeFileSync(join(dir, 'runtime-server.cjs'), RUNTIME_SERVER)
  writeFileSync(join(dir, file), RUNTIME_CLIENT)
  const server = spawn(process.execPath, ['runtime-server.cjs'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  try {
    const line = await new Promise((resolvePromise, reject) => {
      let output = ''
      const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 30_000)
      server.stdout.on('data', chunk => {
        output += chunk
        const found = /^listening (\S+) (\S+)$/m.exec(output)
        if (found !== null) {
          clearTimeout(timer)
          resolvePromise(found)
        }
      })
      server.stderr.on('data', chunk => (output += chunk))
      server.on('exit', code => reject(new Error(`server exited (${code}): ${output}`)))
    })
    const result = await run(runtime[0], [...runtime.slice(1), file, line[1], line[2]], {
      cwd: dir,
      timeoutMs: 180_000,
    })
    if (/npx canceled|ETARGET|E404|ENOTFOUND|EAI_AGAIN/.test(result.output) && result.code !== 0) {
      return { skip: `${runtime.join(' ')} cannot be fetched: ${lastLine(result.output)}` }
    }
    if (result.code !== 0 || !/^ok client$/m.test(result.output)) {
      throw new Error(result.output.trim() || `exit ${result.code}`)
    }
    return { detail: 'create, session, access request' }
  } finally {
    server.kill()
  }
}

async function pack() {
  if (process.env.MATRIX_TARBALL) return resolve(process.env.MATRIX_TARBALL)
  const out = join(work, 'pack')
  mkdirSync(out)
  await execFileAsync('npm', ['pack', '--pack-destination', out, '--silent'], {
    cwd: root,
    maxBuffer: 16 << 20,
  })
  const name = readdirSync(out).find(file => file.endsWith('.tgz'))
  if (name === undefined) throw new Error('npm pack produced no tarball')
  return join(out, name)
}

/** Runs `tasks` (functions returning promises) with at most `limit` at a time. */
async function pool(tasks, limit) {
  const results = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await tasks[index]()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}

const seconds = since => `${((performance.now() - since) / 1000).toFixed(1)} s`
const counts = { passed: 0, failed: 0, skipped: 0 }

function report(cell, outcome, since) {
  const time = seconds(since)
  if (outcome.skip !== undefined) {
    counts.skipped++
    console.log(`SKIP  ${cell.name}  (${outcome.skip})`)
  } else if (outcome.error !== undefined) {
    counts.failed++
    console.log(`FAIL  ${cell.name}  ${time}`)
    console.log(outcome.error.replace(/^/gm, '      '))
  } else {
    counts.passed++
    console.log(`ok    ${cell.name}  ${time}  ${outcome.detail ?? ''}`.trimEnd())
  }
}

async function main() {
  const only = process.argv.slice(2)
  const cells = only.length === 0 ? CELLS : CELLS.filter(c => only.some(o => c.name.includes(o)))
  const packStart = performance.now()
  const tarball = await pack()
  console.log(`packed ${tarball.split('/').pop()} in ${seconds(packStart)}`)

  const installs = new Map()
  const appCell = cell => async () => {
    const since = performance.now()
    let outcome
    try {
      const installed = await install(cell, tarball)
      installs.set(cell.name, installed)
      outcome =
        installed.skip !== undefined
          ? installed
          : { detail: await runApp(installed.dir, cell.node, cell.env, installed.file) }
    } catch (error) {
      outcome = { error: String(error.message ?? error) }
      installs.set(cell.name, { error: true })
    }
    report(cell, outcome, since)
  }
  const laterCell = cell => async () => {
    const since = performance.now()
    let outcome
    try {
      if (cell.conformance !== undefined) {
        outcome = await conformance(cell.conformance)
      } else {
        const base = installs.get(cell.uses)
        if (base === undefined) outcome = { skip: `needs the cell "${cell.uses}"` }
        else if (base.skip !== undefined || base.error)
          outcome = { skip: `"${cell.uses}" did not install` }
        else if (cell.runtime !== undefined) {
          outcome = await clientRuntime(base.dir, cell.runtime, cell.name)
        } else {
          const env = cell.sqlite
            ? { MATRIX_DATABASE: `sqlite:${join(base.dir, `node${cell.node}.db`)}` }
            : {}
          outcome = { detail: await runApp(base.dir, cell.node, env) }
        }
      }
    } catch (error) {
      outcome = { error: String(error.message ?? error) }
    }
    report(cell, outcome, since)
  }
  // Framework apps first (installs in parallel), then what runs on their installs.
  const first = cells.filter(c => c.app !== undefined)
  const later = cells.filter(c => c.app === undefined)
  if (later.some(c => c.uses !== undefined && !first.some(f => f.name === c.uses))) {
    first.push(...CELLS.filter(c => later.some(l => l.uses === c.name) && !first.includes(c)))
  }
  await pool(first.map(appCell), JOBS)
  await pool(later.map(laterCell), Math.min(JOBS, 2))

  console.log(
    `${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped  (${seconds(started)})`
  )
  return counts.failed === 0 ? 0 : 1
}

main()
  .then(code => {
    if (!keep) rmSync(work, { recursive: true, force: true })
    process.exit(code)
  })
  .catch(error => {
    console.error(error)
    if (!keep) rmSync(work, { recursive: true, force: true })
    process.exit(1)
  })
