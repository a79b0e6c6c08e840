/**
 * `better-auth-protocol admin <command>`: administration of identities, devices and sessions on
 * the database (SQLite or PostgreSQL) the servers use, through `auth.admin`. Every action is
 * atomic, changes nothing for an unknown identity or device (exit 1, BA608), and emits its audit
 * event with the actor (`--actor`, default `cli:<os user>`); the command line prints none.
 *
 *   admin show IDENTITY                      the identity and its devices
 *   admin revoke-device IDENTITY DEVICE      a server-side unlink
 *   admin end-sessions IDENTITY [--device D] tokens issued until now are refused at refresh
 *   admin suspend IDENTITY [--reason R]      no session, no refresh, until reinstated
 *   admin reinstate IDENTITY
 *   admin delete IDENTITY --yes              tombstoned: it can never be created again
 */
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { BetterAuthError, InvalidMessageError } from '../src/errors'
import type { AdminActionResult, AdminApi, AdminIdentity } from '../src/server/admin'
import { createBetterAuth } from '../src/server/core'
import type { AuditListener } from '../src/server/events'
import { supportsAdmin } from '../src/stores/admin'
import { createStore, parseDatabaseUrl, redact } from '../src/stores/url'

const NAME = 'better-auth-protocol'
const DEFAULT_DATABASE = 'sqlite:./better-auth.db'

/** What the admin commands write to and read. */
export interface AdminIo {
  out(text: string): void
  err(text: string): void
  env: Record<string, string | undefined>
  /** Receives the audit event of each action (the command line itself prints none). */
  onEvent?: AuditListener
}

const COMMON = `  --database URL      sqlite:PATH | postgres://…  (BETTER_AUTH_DATABASE, default
                      sqlite:./better-auth.db); an existing, migrated database only
  --json              print the result as JSON (errors: {"error":{"code","message"}})
  -h, --help          this help`

const ACTOR = `  --actor NAME        who acts, in the audit event (default cli:<os user>)`

const WHEN = `Running servers on the database see it at once at requestSession, createSession and refresh;
at access only on routes with checkRevocation, within their revocationCacheMs (2 s by default).`

/** Each admin command's summary and usage (`admin <command> --help`). */
const COMMANDS: Record<string, { summary: string; usage: string }> = {
  show: {
    summary: 'an identity and its devices (created, last rotated, last session)',
    usage: `usage: ${NAME} admin show IDENTITY [--database URL] [--json]

Show an identity: when it was created, whether it is suspended, when its sessions were last
ended, and its devices with when each was created, last rotated and last used for a session
(to the minute).

${COMMON}
`,
  },
  'revoke-device': {
    summary: 'revoke a device (a server-side unlink)',
    usage: `usage: ${NAME} admin revoke-device IDENTITY DEVICE [--actor NAME] [--database URL] [--json]

Revoke a device of an identity: it can no longer sign in, rotate or refresh (401 BA301). The
identity's other devices are untouched.

${ACTOR}
${COMMON}

${WHEN}
`,
  },
  'end-sessions': {
    summary: 'end the sessions of an identity (or of one device) now',
    usage: `usage: ${NAME} admin end-sessions IDENTITY [--device DEVICE] [--actor NAME] [--database URL] [--json]

End every session of an identity now, or of one of its devices: tokens issued until now are
refused at refresh (401 BA401; clients sign in again with their device key). New sessions may
be opened at once.

  --device DEVICE     end only this device's sessions
${ACTOR}
${COMMON}

${WHEN}
`,
  },
  suspend: {
    summary: 'suspend an identity: no new session, no refresh',
    usage: `usage: ${NAME} admin suspend IDENTITY [--reason TEXT] [--actor NAME] [--database URL] [--json]

Suspend an identity: requestSession, createSession and refresh are refused (403 BA307) until
it is reinstated, and its sessions end now. Suspending a suspended identity changes nothing.

  --reason TEXT       why (at most 1000 characters), kept with the suspension and in the event
${ACTOR}
${COMMON}

${WHEN}
`,
  },
  reinstate: {
    summary: 'lift the suspension of an identity',
    usage: `usage: ${NAME} admin reinstate IDENTITY [--actor NAME] [--database URL] [--json]

Lift a suspension: the identity's devices may open sessions again (the sessions the suspension
ended stay ended). Reinstating an identity that is not suspended changes nothing.

${ACTOR}
${COMMON}
`,
  },
  delete: {
    summary: 'delete an identity and its devices (needs --yes)',
    usage: `usage: ${NAME} admin delete IDENTITY --yes [--actor NAME] [--database URL] [--json]

Delete an identity and its devices, as the protocol's deleteAccount does: it is tombstoned and
can never be created again. Permanent, so it needs --yes.

  --yes               confirm the deletion
${ACTOR}
${COMMON}

${WHEN}
`,
  },
}

/** The usage of `admin` itself. */
export const ADMIN_USAGE = `usage: ${NAME} admin <command> IDENTITY … [options]
       ${NAME} admin <command> --help

Administration of identities, devices and sessions, on the database the servers use.

commands:
${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(15)} ${summary}`)
  .join('\n')}

Unknown identities or devices exit 1 (BA608) and change nothing; usage errors exit 2.
`

/** A mistake in the command line: exit code 2, a hint. */
class AdminUsageError extends Error {}

const HELP = { type: 'boolean', short: 'h' } as const
const BASE = {
  database: { type: 'string' },
  json: { type: 'boolean' },
  help: HELP,
} as const
const ACTION = { ...BASE, actor: { type: 'string' } } as const

/** Runs `admin <command> …`; resolves to the exit code. */
export async function runAdmin(argv: string[], io: AdminIo): Promise<number> {
  const [command, ...args] = argv
  if (command === undefined) {
    io.err(ADMIN_USAGE)
    return 2
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = args[0] === undefined ? undefined : COMMANDS[args[0]]
    io.out(topic?.usage ?? ADMIN_USAGE)
    return 0
  }
  const known = COMMANDS[command] !== undefined
  let json = false
  try {
    if (!known) throw new AdminUsageError(`unknown admin command: ${command}`)
    return await run(command, args, io, value => (json = value))
  } catch (error) {
    if (
      error instanceof AdminUsageError ||
      error instanceof InvalidMessageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const hint = known ? `${NAME} admin ${command} --help` : `${NAME} admin --help`
      io.err(`error: ${(error as Error).message.split('\n')[0]}\nsee '${hint}'\n`)
      return 2
    }
    if (error instanceof BetterAuthError) {
      // Refused by the store or the server core (BA608 unknown identity or device, …).
      const cause = error.cause instanceof Error ? ` (${error.cause.message})` : ''
      io.err(`error: ${error.code} ${error.message}${cause}\n`)
      if (json) io.out(`${JSON.stringify(error.toBody(false))}\n`)
      return 1
    }
    throw error
  }
}

async function run(
  command: string,
  args: string[],
  io: AdminIo,
  setJson: (json: boolean) => void
): Promise<number> {
  const usage = (COMMANDS[command] as { usage: string }).usage
  const options =
    command === 'show'
      ? BASE
      : command === 'end-sessions'
        ? { ...ACTION, device: { type: 'string' } }
        : command === 'suspend'
          ? { ...ACTION, reason: { type: 'string' } }
          : command === 'delete'
            ? { ...ACTION, yes: { type: 'boolean' } }
            : ACTION
  const { values, positionals } = parseArgs({
    args,
    options: options as typeof ACTION,
    allowPositionals: true,
  })
  const flags = values as typeof values & {
    device?: string
    reason?: string
    yes?: boolean
  }
  if (flags.help === true) {
    io.out(usage)
    return 0
  }
  setJson(flags.json === true)
  const wanted = command === 'revoke-device' ? ['IDENTITY', 'DEVICE'] : ['IDENTITY']
  if (positionals.length < wanted.length) {
    throw new AdminUsageError(`admin ${command} needs ${wanted.join(' and ')}`)
  }
  if (positionals.length > wanted.length) {
    throw new AdminUsageError(`unexpected argument: ${positionals[wanted.length] as string}`)
  }
  const [identity, device] = positionals as [string, string | undefined]
  if (command === 'delete' && flags.yes !== true) {
    throw new AdminUsageError('admin delete is permanent: add --yes to confirm')
  }
  const actor = flags.actor ?? defaultActor(io.env)
  const url = databaseOf(flags.database, io)
  return withAdmin(url, io, async admin => {
    const by = { actor }
    let result: AdminActionResult
    switch (command) {
      case 'show': {
        const record = await admin.getIdentity(identity)
        io.out(flags.json === true ? `${JSON.stringify(record)}\n` : describeIdentity(record))
        return 0
      }
      case 'revoke-device':
        result = await admin.revokeDevice(identity, device as string, by)
        break
      case 'end-sessions':
        result = await admin.endSessions(
          identity,
          flags.device === undefined ? by : { ...by, device: flags.device }
        )
        break
      case 'suspend':
        result = await admin.suspend(
          identity,
          flags.reason === undefined ? by : { ...by, reason: flags.reason }
        )
        break
      case 'reinstate':
        result = await admin.reinstate(identity, by)
        break
      default:
        result = await admin.deleteIdentity(identity, by)
    }
    io.out(flags.json === true ? `${JSON.stringify(result)}\n` : `${describeResult(result)}\n`)
    return 0
  })
}

/** `cli:<os user>`, the actor unless `--actor` names one. */
function defaultActor(env: AdminIo['env']): string {
  let user: string | undefined
  try {
    user = userInfo().username
  } catch {
    user = env.USER ?? env.LOGNAME
  }
  return `cli:${user === undefined || user === '' ? 'unknown' : user}`
}

/** The database URL of the command line or the environment: sqlite: or postgres://. */
function databaseOf(value: string | undefined, io: AdminIo): string {
  const url = value ?? (io.env.BETTER_AUTH_DATABASE?.trim() || DEFAULT_DATABASE)
  const option = value === undefined ? 'BETTER_AUTH_DATABASE' : '--database'
  let kind: string
  try {
    kind = parseDatabaseUrl(url).kind
  } catch (error) {
    throw new AdminUsageError(`${option}: ${(error as Error).message}`)
  }
  if (kind === 'memory') {
    throw new AdminUsageError(`${option}: memory: keeps no accounts; use sqlite: or postgres://`)
  }
  return url
}

/**
 * `auth.admin` on an existing database: nothing is created (a missing SQLite file or tables
 * that are missing or older than administration are an error), and the store is closed after.
 */
async function withAdmin(
  url: string,
  io: AdminIo,
  work: (admin: AdminApi) => Promise<number>
): Promise<number> {
  const store = await createStore({ database: url, existing: true })
  const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }
  const auth = createBetterAuth({
    // Without the store's key table: administration signs nothing, and creates no keys.
    store: {
      accounts: store.accounts,
      challenges: store.challenges,
      refreshKeys: store.refreshKeys,
      accessNonces: store.accessNonces,
      close: async () => store.close?.(),
    },
    keys: { env: false },
    rateLimit: false,
    openTelemetry: false,
    logger: silent,
    ...(io.onEvent === undefined ? {} : { onEvent: io.onEvent }),
  })
  try {
    const accounts = store.accounts
    if (!supportsAdmin(accounts)) throw new Error(`${redact(url)} does not support administration`)
    // One read, so a database without (current) tables says so before anything else.
    await accounts.getIdentityRecord('').catch((error: unknown) => {
      throw new Error(
        `cannot read the accounts of ${redact(url)} (run '${NAME} migrate' first if its ` +
          'tables are missing or older, or check --database)',
        { cause: error }
      )
    })
    return await work(auth.admin)
  } finally {
    await auth.close()
  }
}

const time = (ms: number | null, none: string): string =>
  ms === null ? none : new Date(ms).toISOString()

/** `admin show` as text. */
function describeIdentity(record: AdminIdentity): string {
  const suspended =
    record.suspendedAt === null
      ? 'no'
      : `since ${time(record.suspendedAt, '')}` +
        (record.suspendedReason === null ? '' : ` (${record.suspendedReason})`)
  const lines = [
    `identity        ${record.identity}`,
    `created         ${time(record.createdAt, 'unknown')}`,
    `suspended       ${suspended}`,
    `sessions ended  ${time(record.sessionsEndedAt, 'never')}`,
    `devices         ${record.devices.length}${record.devices.length === 0 ? ' (recovery only)' : ''}`,
  ]
  for (const device of record.devices) {
    lines.push(
      `  ${device.device}`,
      `    created         ${time(device.createdAt, 'unknown')}`,
      `    last rotated    ${time(device.rotatedAt, 'never')}`,
      `    last session    ${time(device.lastSessionAt, 'never')}`
    )
    if (device.sessionsEndedAt !== null) {
      lines.push(`    sessions ended  ${time(device.sessionsEndedAt, 'never')}`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** An action's result as one line. */
function describeResult(result: AdminActionResult): string {
  const at = time(result.at, '')
  const identity = `identity ${result.identity}`
  const device = result.device === undefined ? '' : `device ${result.device} of `
  switch (result.action) {
    case 'admin.device.revoked':
      return `revoked ${device}${identity}`
    case 'admin.sessions.ended':
      return `ended the sessions of ${device}${identity} at ${at}`
    case 'admin.identity.suspended':
      return result.changed
        ? `suspended ${identity} at ${at}`
        : `${identity} was suspended already; nothing changed`
    case 'admin.identity.reinstated':
      return result.changed
        ? `reinstated ${identity}`
        : `${identity} is not suspended; nothing changed`
    case 'admin.identity.deleted':
      return `deleted ${identity}`
  }
}
