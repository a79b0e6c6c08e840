/**
 * Browser tests (make test-browser): the web demo and the client in Debian's Chromium, driven by
 * playwright-core (no browser download: CHROMIUM, `which chromium` or /usr/bin/chromium).
 *
 *   the demo's whole flow through its buttons; a reload keeps the session; the stored private
 *   keys are non-extractable; two tabs refreshing (and rotating) at once keep the chains intact;
 *   the client-store conformance suite on IndexedDB; the client in a Web Worker; and the page
 *   (create an account, sign in, call /foo/bar, reload) against the Express, Koa and fetch
 *   examples, served from each example's own origin.
 */
import { strict as assert } from 'node:assert'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { build } from 'esbuild'
import express from 'express'
import { chromium, type Browser, type Page } from 'playwright-core'
import './memory-env'
import * as expressExample from '../../examples/express/server'
import * as fetchExample from '../../examples/fetch/server'
import * as koaExample from '../../examples/koa/server'
import { bundleWebDemo, createWebDemo } from '../../examples/web/server'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

function chromiumPath(): string {
  if (process.env.CHROMIUM) return process.env.CHROMIUM
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim()
  } catch {
    if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium'
    throw new Error('chromium not found: apt-get install -y chromium, or set CHROMIUM')
  }
}

async function bundle(entry: string, globalName: string): Promise<string> {
  const result = await build({
    entryPoints: [join(__dirname, entry)],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName,
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0]?.text as string
}

const print = (line: string): void => void process.stdout.write(`${line}\n`)

const requests = new Map<string, number>()
const served = (path: string) => requests.get(path) ?? 0

async function act(page: Page, id: string, expectOk = true): Promise<string> {
  const items = page.locator(`#log li[data-action="${id}"]`)
  const before = await items.count()
  await page.click(`#${id}`)
  const item = items.nth(before)
  await item.waitFor({ timeout: 15_000 })
  const text = (await item.textContent()) ?? ''
  assert.equal(await item.getAttribute('data-ok'), String(expectOk), `${id}: ${text}`)
  return text
}

async function open(browser: Browser | ReturnType<Browser['contexts']>[number], url: string) {
  const page = await browser.newPage()
  page.on('pageerror', error => console.error(`page error: ${error.message}`))
  await page.goto(url)
  await page.waitForFunction(
    () => !document.getElementById('status')?.textContent?.includes('loading')
  )
  return page
}

const status = (page: Page) => page.locator('#status').textContent()

type Demo = {
  client: {
    refreshSession(): Promise<void>
    rotateDevice(): Promise<void>
    accessRequest(path: string, request: unknown): Promise<unknown>
    fetch(input: string, init?: RequestInit): Promise<Response>
    session(): Promise<{ publicKey: string } | undefined>
  }
  stores: {
    authenticationKeys: { savedKeys(): Promise<CryptoKey[]> }
    accessKeys: { savedKeys(): Promise<CryptoKey[]> }
  }
}
declare const betterAuthDemo: Demo

type Listener = (req: IncomingMessage, res: ServerResponse) => void

/**
 * An example app (its node:http listener) behind the demo page: `/` and `/app.js` are the page
 * and its script, everything else goes to the example; same origin, so no CORS.
 */
async function withPage(
  listener: Listener,
  responseKey: string,
  script: string
): Promise<{ origin: string; served: (path: string) => number; close(): Promise<void> }> {
  const template = await readFile(join(__dirname, '../../examples/web/index.html'), 'utf8')
  const page = template.replace('%RESPONSE_KEY%', responseKey)
  const counts = new Map<string, number>()
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    if (req.method === 'GET' && (path === '/' || path === '/app.js')) {
      const html = path === '/'
      res.writeHead(200, {
        'content-type': html ? 'text/html' : 'text/javascript',
        'cache-control': 'no-store',
      })
      res.end(html ? page : script)
      return
    }
    listener(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    served: path => counts.get(path) ?? 0,
    close: () => new Promise(resolve => server.close(() => resolve())),
  }
}

/** The examples the page runs against (their state in memory: ./memory-env). */
const EXAMPLES: [string, Listener, ExampleAuth][] = [
  ['Express', expressExample.app, expressExample.auth],
  ['Koa', koaExample.app.callback(), koaExample.auth],
  ['fetch', fetchExample.listener, fetchExample.auth],
]
type ExampleAuth = { responsePublicKey(): Promise<string>; close(): Promise<void> }

const steps: [string, () => Promise<void>][] = []
const step = (name: string, body: () => Promise<void>) => steps.push([name, body])

async function main(): Promise<void> {
  const started = Date.now()
  const { app, auth } = await createWebDemo()
  const outer = express()
  outer.use((req, _res, next) => {
    requests.set(req.path, served(req.path) + 1)
    next()
  })
  outer.use(app)
  const server: Server = await new Promise(resolve => {
    const s = outer.listen(0, '127.0.0.1', () => resolve(s))
  })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const [conformance, worker] = await Promise.all([
    bundle('conformance-entry.ts', 'BapConformance'),
    bundle('worker-entry.ts', 'BapWorker'),
  ])
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ARGS })
  const context = await browser.newContext()
  let failures = 0
  try {
    let tab: Page
    let identity = ''
    let recoveryKey = ''

    step('the demo creates an account and shows the recovery key once', async () => {
      tab = await open(context, `${origin}/`)
      assert.match((await status(tab)) ?? '', /No account/)
      await act(tab, 'create')
      recoveryKey = (await tab.locator('#recovery-key').textContent()) ?? ''
      assert.match(recoveryKey, /^bap-recovery-1:[A-Za-z0-9_-]+$/)
      identity = /identity\s+(E\S+)/.exec((await status(tab)) ?? '')?.[1] ?? ''
      assert.match(identity, /^E[A-Za-z0-9_-]{43}$/)
    })

    step('signs in and calls the protected route', async () => {
      await act(tab, 'sign-in')
      assert.match(await act(tab, 'call'), /"wasFoo":"hello","wasBar":"default"/)
    })

    step(
      'the README example (examples/web/quickstart.ts) runs as the "Quick start" button',
      async () => {
        const fresh = await open(context, `${origin}/?device=quickstart`)
        assert.match(await act(fresh, 'quick-start'), /"wasFoo":"bar","wasBar":"foo"/)
        assert.match((await fresh.locator('#recovery-key').textContent()) ?? '', /^bap-recovery-1:/)
        // Once the account exists: signs in again and calls, no new recovery key.
        assert.match(await act(fresh, 'quick-start'), /"wasFoo":"bar"/)
        await fresh.close()
      }
    )

    step('keeps every stored private key non-extractable', async () => {
      const keys = await tab.evaluate(async () => {
        const all = [
          ...(await betterAuthDemo.stores.authenticationKeys.savedKeys()),
          ...(await betterAuthDemo.stores.accessKeys.savedKeys()),
        ]
        return all.map(k => ({
          extractable: k.extractable,
          isCryptoKey: k instanceof CryptoKey,
          type: k.type,
        }))
      })
      assert.ok(keys.length >= 4, `${keys.length} keys`)
      for (const k of keys)
        assert.deepEqual(k, { extractable: false, isCryptoKey: true, type: 'private' })
    })

    step('a reload keeps the session without signing in again', async () => {
      const sessions = served('/session/create')
      await tab.reload()
      await tab.waitForFunction(() =>
        document.getElementById('status')?.textContent?.includes('signed in until')
      )
      assert.match(await act(tab, 'call'), /wasFoo/)
      assert.equal(served('/session/create'), sessions)
    })

    step('two tabs refreshing and rotating at once keep both chains intact', async () => {
      const other = await open(context, `${origin}/`)
      const refreshes = served('/session/refresh')
      const both = (task: () => Promise<unknown>) =>
        Promise.all([tab.evaluate(task), other.evaluate(task)])
      for (let i = 0; i < 3; i++) await both(() => betterAuthDemo.client.refreshSession())
      assert.equal(served('/session/refresh'), refreshes + 6)
      await both(() => betterAuthDemo.client.rotateDevice())
      const replies = await both(() =>
        betterAuthDemo.client.accessRequest('/foo/bar', { foo: 1, bar: 2 })
      )
      assert.deepEqual(replies, [
        { wasFoo: 1, wasBar: 2 },
        { wasFoo: 1, wasBar: 2 },
      ])
      await act(other, 'sign-in')
      await act(tab, 'call')
      await other.close()
    })

    step('links a second device with a text container', async () => {
      const phone = await open(context, `${origin}/?device=phone`)
      await phone.fill('#link-identity', identity)
      await act(phone, 'make-container')
      const container = await phone.inputValue('#link-container')
      assert.match(container, /^\{"payload":\{"authentication":/)
      await tab.fill('#link-container', container)
      await act(tab, 'link')
      await act(phone, 'sign-in')
      assert.match(await act(phone, 'call'), /"wasBar":"phone"/)
      await phone.close()
    })

    step('rotates and signs out', async () => {
      await act(tab, 'rotate')
      await act(tab, 'sign-out')
      assert.match((await status(tab)) ?? '', /signed out/)
      assert.match(await act(tab, 'call', false), /no access token/)
    })

    step('recovers the account on a new device from the recovery key text', async () => {
      const laptop = await open(context, `${origin}/?device=laptop`)
      await laptop.fill('#recover-identity', identity)
      await laptop.fill('#recover-key', recoveryKey)
      await act(laptop, 'recover')
      const next = (await laptop.locator('#recovery-key').textContent()) ?? ''
      assert.ok(next.startsWith('bap-recovery-1:') && next !== recoveryKey)
      await act(laptop, 'sign-in')
      assert.match(await act(laptop, 'call'), /"wasBar":"laptop"/)
      // Recovery revoked the other devices.
      assert.match(await act(tab, 'rotate', false), /BA301/)
      await laptop.close()
    })

    step('the client-store conformance suite passes on IndexedDB', async () => {
      const page = await open(context, `${origin}/?device=conformance`)
      await page.addScriptTag({ content: conformance })
      const results = await page.evaluate(() =>
        (
          globalThis as unknown as {
            BapConformance: {
              runClientStoreConformance(): Promise<{ name: string; error?: string }[]>
            }
          }
        ).BapConformance.runClientStoreConformance()
      )
      const failed = results.filter(r => r.error !== undefined)
      for (const r of results) print(`      ${r.error === undefined ? 'ok  ' : 'FAIL'} ${r.name}`)
      assert.equal(results.length, 14)
      assert.deepEqual(failed, [])
      await page.close()
    })

    step('the client runs unchanged in a Web Worker', async () => {
      const result = await tab.evaluate(
        ({ code, origin }) =>
          new Promise(resolve => {
            const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }))
            const w = new Worker(url)
            w.onmessage = event => {
              resolve(event.data)
              w.terminate()
            }
            w.onerror = event => resolve({ ok: false, error: event.message })
            w.postMessage({ origin })
          }),
        { code: worker, origin }
      )
      assert.deepEqual(result, { ok: true, reply: { wasFoo: 'worker', wasBar: 1 } })
    })

    const script = await bundleWebDemo()
    for (const [name, listener, auth] of EXAMPLES) {
      step(`the page against the ${name} example: account, sign-in, call, reload`, async () => {
        const site = await withPage(listener, await auth.responsePublicKey(), script)
        const own = await browser.newContext()
        try {
          const page = await open(own, `${site.origin}/`)
          assert.match((await status(page)) ?? '', /No account/)
          await act(page, 'create')
          await act(page, 'sign-in')
          assert.match(await act(page, 'call'), /"wasFoo":"hello","wasBar":"default"/)
          // The header form, the same URL twice: the browser's cache must not revalidate the
          // second (Express's replies carry an ETag), or its 304 would not verify as a 200.
          const replies = await page.evaluate(async () => {
            const out: [number, unknown][] = []
            for (let i = 0; i < 2; i++) {
              const reply = await betterAuthDemo.client.fetch('/me')
              out.push([reply.status, await reply.json()])
            }
            return out
          })
          for (const [code, body] of replies) {
            assert.equal(code, 200)
            assert.match(String((body as { identity?: unknown }).identity), /^E[A-Za-z0-9_-]{43}$/)
          }
          const sessions = site.served('/session/create')
          await page.reload()
          await page.waitForFunction(() =>
            document.getElementById('status')?.textContent?.includes('signed in until')
          )
          assert.match(await act(page, 'call'), /"wasFoo":"hello"/)
          await act(page, 'refresh')
          await act(page, 'rotate')
          assert.match(await act(page, 'call'), /"wasFoo":"hello"/)
          assert.equal(site.served('/session/create'), sessions)
        } finally {
          await own.close()
          await site.close()
          await auth.close()
        }
      })
    }

    for (const [name, body] of steps) {
      const t = Date.now()
      try {
        await body()
        print(`  ✓ ${name} (${Date.now() - t} ms)`)
      } catch (error) {
        failures++
        print(
          `  ✗ ${name}\n    ${String((error as Error).stack ?? error).replace(/\n/g, '\n    ')}`
        )
      }
    }
  } finally {
    await browser.close()
    await new Promise(resolve => server.close(resolve))
    await auth.close()
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  print(`browser tests: ${steps.length - failures} passed, ${failures} failed (${seconds} s)`)
  if (failures > 0) process.exitCode = 1
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
