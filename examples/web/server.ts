/**
 * The web demo: the conformance server (examples/express-conformance.ts) plus a page that uses
 * `better-auth-protocol/client` in the browser (examples/web/app.ts, bundled by esbuild when the
 * server starts). State is in memory unless BETTER_AUTH_DATABASE says otherwise.
 *
 *   make example-web          # http://127.0.0.1:8080 (PORT, HOST)
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build } from 'esbuild'
import express from 'express'
import type { ServerStore } from '../../src'
import { createConformanceApp } from '../express-conformance'

/** The page script, bundled for the browser. */
export async function bundleWebDemo(): Promise<string> {
  const result = await build({
    entryPoints: [join(__dirname, 'app.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    // Error classes keep their names (BetterAuthError subclasses name themselves after them).
    keepNames: true,
    write: false,
    logLevel: 'silent',
    // better-auth-protocol/client resolves to the sources through tsconfig.json "paths".
    tsconfig: join(__dirname, '../../tsconfig.json'),
  })
  return result.outputFiles[0]?.text as string
}

export async function createWebDemo(options: { store?: ServerStore } = {}) {
  const { app: protocol, auth } = createConformanceApp(options)
  const [script, template] = await Promise.all([
    bundleWebDemo(),
    readFile(join(__dirname, 'index.html'), 'utf8'),
  ])
  const page = template.replace('%RESPONSE_KEY%', await auth.responsePublicKey())
  const app = express()
  app.disable('x-powered-by')
  app.get('/', (_req, res) => {
    res.type('html').set('cache-control', 'no-store').send(page)
  })
  app.get('/app.js', (_req, res) => {
    res.type('text/javascript').set('cache-control', 'no-store').send(script)
  })
  app.use(protocol)
  return { app, auth }
}
