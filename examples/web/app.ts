/**
 * The web demo's page script: every step of an account's life in the browser, with
 * `better-auth-protocol/client` only. Bundled by esbuild (examples/web/server.ts serves it).
 * The client and the "quick start" button are ./quickstart.ts, the README's browser example.
 */
import { generateRecoveryKey, importRecoveryKey } from 'better-auth-protocol/client'
import { createClient, quickStart } from './quickstart'

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

const device = new URLSearchParams(location.search).get('device') ?? 'default'
const responseKey = document
  .querySelector('meta[name="better-auth-response-key"]')
  ?.getAttribute('content')
const { client, stores } = createClient(
  // Pinned by the page the server sent (trust on first use when missing).
  responseKey && responseKey !== '%RESPONSE_KEY%' ? responseKey : undefined,
  `better-auth-demo:${device}`
)

// For the browser tests and the curious (devtools): the client and its stores.
Object.assign(globalThis, { betterAuthDemo: { client, stores } })

$('db').textContent = `better-auth-demo:${device}`

async function showStatus(): Promise<void> {
  if (!(await client.hasAccount())) {
    $('status').textContent = 'No account on this device yet.'
    return
  }
  const session = await client.session()
  $('status').textContent = [
    `identity  ${await client.identity()}`,
    `device    ${await client.device()}`,
    session === undefined
      ? 'session   signed out'
      : `session   signed in until ${session.expiry} (refreshable until ${session.refreshExpiry})`,
  ].join('\n')
  ;($('link-identity') as HTMLInputElement).value ||= await client.identity()
}

function log(action: string, ok: boolean, text: string): void {
  const item = document.createElement('li')
  item.dataset.action = action
  item.dataset.ok = String(ok)
  item.textContent = `${action}: ${text}`
  $('log').append(item)
}

/** Wires a button: runs `task`, logs its outcome, refreshes the status. */
function on(id: string, task: () => Promise<string>): void {
  $(id).addEventListener('click', async () => {
    const button = $<HTMLButtonElement>(id)
    button.disabled = true
    try {
      log(id, true, await task())
    } catch (error) {
      const code = (error as { code?: string }).code
      log(
        id,
        false,
        error instanceof Error ? `${code ?? error.name}: ${error.message}` : String(error)
      )
    } finally {
      button.disabled = false
      await showStatus().catch(error => ($('status').textContent = String(error)))
    }
  })
}

function showRecoveryKeyOnce(text: string): void {
  $('recovery-key').textContent = text
  $('recovery-once').hidden = false
}

on('create', async () => {
  const recovery = await generateRecoveryKey()
  await client.createAccount(recovery.hash)
  showRecoveryKeyOnce(recovery.text)
  return `account ${await client.identity()} created`
})

on('quick-start', async () => {
  const reply = await quickStart(client, showRecoveryKeyOnce)
  $('reply').textContent = JSON.stringify(reply)
  return JSON.stringify(reply)
})

on('sign-in', async () => {
  await client.createSession()
  return 'signed in'
})

on('call', async () => {
  const reply = await client.accessRequest('/foo/bar', { foo: 'hello', bar: device })
  $('reply').textContent = JSON.stringify(reply)
  return JSON.stringify(reply)
})

on('refresh', async () => {
  await client.refreshSession()
  return 'session refreshed'
})

on('rotate', async () => {
  await client.rotateDevice()
  return 'device key rotated'
})

on('sign-out', async () => {
  await client.signOut()
  return 'signed out'
})

on('make-container', async () => {
  const identity = ($('link-identity') as HTMLInputElement).value.trim()
  const container = await client.generateLinkContainer(identity)
  ;($('link-container') as HTMLTextAreaElement).value = container
  return 'link container ready: copy it to a linked device'
})

on('link', async () => {
  await client.linkDevice(($('link-container') as HTMLTextAreaElement).value)
  return 'device linked'
})

on('recover', async () => {
  const identity = ($('recover-identity') as HTMLInputElement).value.trim()
  const key = await importRecoveryKey(($('recover-key') as HTMLTextAreaElement).value)
  const next = await generateRecoveryKey()
  await client.recoverAccount(identity, key, next.hash)
  ;($('recover-key') as HTMLTextAreaElement).value = ''
  showRecoveryKeyOnce(next.text)
  return 'account recovered on this device'
})

on('delete', async () => {
  await client.deleteAccount()
  await stores.destroy()
  return 'account deleted'
})

void showStatus()
