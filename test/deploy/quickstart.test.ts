/**
 * The README's quick start: its code is examples/quickstart/{server,client}.ts as they are, and
 * the two run against each other, the client pinning the key the server printed (and the key
 * `better-auth-protocol keys` lists).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, type CliIo } from '../../cli'
import { runTsx } from './processes'

const root = join(__dirname, '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'better-auth-quickstart-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const readme = readFileSync(join(root, 'README.md'), 'utf8')

/** Runs an example with tsx; `until` resolves early once the output matches. */
function start(file: string, env: Record<string, string>, until?: RegExp) {
  const { child, out, err, exited } = runTsx(file, [], env)
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${file} timed out:\n${out()}${err()}`)),
      20_000
    )
    const check = () => {
      if (until !== undefined && until.test(out())) {
        clearTimeout(timer)
        resolve(out())
      }
    }
    child.stdout.on('data', check)
    void exited.then(code => {
      clearTimeout(timer)
      if (until === undefined) resolve(out())
      else reject(new Error(`${file} exited (${code}):\n${out()}${err()}`))
    })
  })
  return { child, ready, exited, err }
}

it('shows the quick starts (server, client, browser) in the README as they are', () => {
  const blocks = [...readme.matchAll(/<!-- quickstart: (\S+) -->\n\n```ts\n([\s\S]*?)```\n/g)]
  expect(blocks.map(b => b[1])).toEqual([
    'examples/quickstart/server.ts',
    'examples/quickstart/client.ts',
    'examples/web/quickstart.ts',
  ])
  for (const [, file, code] of blocks) {
    expect({ file, code }).toEqual({ file, code: readFileSync(join(root, file as string), 'utf8') })
  }
  // And they come first, right after the installation.
  const quickStart = readme.indexOf('<!-- quickstart:')
  expect(quickStart).toBeGreaterThan(readme.indexOf('npm install better-auth-protocol'))
  expect(quickStart).toBeLessThan(readme.indexOf('## What is here'))
})

it('the quick start client completes its flow against the quick start server', async () => {
  const database = `sqlite:${join(dir, 'better-auth.db')}`
  const server = start(
    'examples/quickstart/server.ts',
    { PORT: '0', BETTER_AUTH_DATABASE: database },
    /response key: \S+\n/
  )
  try {
    const printed = await server.ready
    const url = /listening on (\S+)/.exec(printed)?.[1] as string
    const responseKey = /response key: (\S+)/.exec(printed)?.[1] as string
    expect(responseKey).toMatch(/^1AAI/)

    // `npx better-auth-protocol keys` lists the same key.
    let out = ''
    const io: CliIo = { out: text => void (out += text), err: () => undefined, env: {} }
    expect(await runCli(['keys', '--database', database], io)).toBe(0)
    expect(out).toContain(`response ${responseKey}`)

    // Protected routes take signed requests only.
    const unsigned = await fetch(`${url}/hello`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":"world"}',
    })
    expect(unsigned.status).toBe(401)
    expect(await unsigned.json()).toMatchObject({ error: { code: 'BA404' } })

    const client = start('examples/quickstart/client.ts', {
      AUTH_URL: url,
      RESPONSE_KEY: responseKey,
    })
    expect(await client.ready).toBe('hello, world\n')
    expect(await client.exited).toBe(0)

    // Pinned to another key, the client refuses the server's replies.
    const other = '1AAIAz-J_fG7ZVd52hPkfKLe2PKoZLrLIccFD4mVlGIhhekp'
    const refused = start('examples/quickstart/client.ts', { AUTH_URL: url, RESPONSE_KEY: other })
    await refused.ready
    expect(await refused.exited).toBe(1)
    expect(refused.err()).toMatch(/BA2\d\d|signature|response key/i)
  } finally {
    server.child.kill('SIGTERM')
    await server.exited
  }
})
