/** The OpenAPI 3.1 document generated from the route table. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { createBetterAuth, openApiDocument, routeTable, type Operation } from '../src'
import { createServer } from '../adapters/node'
import { addBetterAuthSecurity, operationSchemas } from '../src/server/openapi'
import spec from './fixtures/spec-examples.json'

type Example = { operation: string; kind: string; message: unknown }
const examples = spec.messages as unknown as Example[]

type Document = {
  openapi: string
  info: { version: string; license?: unknown }
  servers?: unknown[]
  paths: Record<
    string,
    Record<
      string,
      { operationId: string; security?: unknown[]; responses: Record<string, unknown> }
    >
  >
  components: {
    schemas: Record<string, unknown>
    securitySchemes?: Record<string, Record<string, unknown>>
  }
}

const document = openApiDocument(routeTable({}, '/auth')) as Document
const withAccess = openApiDocument(routeTable({}, '/auth'), { access: true }) as Document

function validator(schema: Record<string, unknown>) {
  const ajv = new Ajv2020({ strict: false, formats: { 'date-time': true } })
  return ajv.compile({ ...schema, components: withAccess.components })
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'better-auth-openapi-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The OpenAPI validator's verdict on a document. */
function validate(doc: object, name: string): unknown {
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify(doc))
  const cli = require.resolve('@seriousme/openapi-schema-validator/bin/validate-api-cli.js')
  const out = execFileSync(process.execPath, [cli, file], { encoding: 'utf8' })
  return JSON.parse(out.slice(out.indexOf('{')))
}

/** Redocly's recommended rules on a document: its problems (offline, no telemetry). */
function redoclyProblems(doc: object, name: string): string[] {
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify(doc))
  const manifest = require.resolve('@redocly/cli/package.json')
  const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin: Record<string, string> }).bin
  const cli = join(dirname(manifest), bin.redocly as string)
  let out: string
  try {
    out = execFileSync(process.execPath, [cli, 'lint', file, '--format=json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    })
  } catch (error) {
    out = String((error as { stdout?: string }).stdout)
  }
  const report = JSON.parse(out) as {
    problems: { ruleId: string; severity: string; location: { pointer: string }[] }[]
  }
  return report.problems.map(p => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}`)
}

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', () => {
    expect(validate(document, 'openapi')).toMatchObject({ valid: true })
    expect(validate(withAccess, 'access')).toMatchObject({ valid: true })
  })

  it("passes Redocly's recommended rules", () => {
    expect(redoclyProblems(document, 'redocly')).toEqual([])
  }, 30_000)

  it('has the package version, its license, a server and explicit security', () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      version: string
    }
    expect(document.info.version).toBe(manifest.version)
    expect(document.info.license).toEqual({ name: 'MIT', identifier: 'MIT' })
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })])
    for (const item of Object.values(document.paths)) {
      for (const operation of Object.values(item)) {
        expect({ operation: operation.operationId, security: operation.security }).toEqual({
          operation: operation.operationId,
          security: [],
        })
        expect(Object.keys(operation.responses).some(status => status.startsWith('4'))).toBe(true)
      }
    }
    // Components a document does not use are left out unless asked for.
    expect(document.components.securitySchemes).toBeUndefined()
    expect(document.components.schemas.AccessRequest).toBeUndefined()
    expect(withAccess.components.securitySchemes?.betterAuth).toMatchObject({
      type: 'http',
      scheme: 'BetterAuth',
    })
    expect(withAccess.components.schemas.AccessRequest).toBeDefined()
  })

  it('adds the security scheme and access schemas to a document made elsewhere', () => {
    // The shape of a @nestjs/swagger document (OpenAPI 3.0), with one protected route.
    const body = (name: string) => ({
      content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } },
    })
    const app = {
      openapi: '3.0.0',
      info: {
        title: 'Notes',
        version: '2.0.0',
        license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
      },
      servers: [{ url: 'https://notes.example' }],
      paths: {
        '/notes': {
          post: {
            operationId: 'createNote',
            summary: 'Create a note',
            security: [{ betterAuth: [] }],
            requestBody: { required: true, ...body('AccessRequest') },
            responses: {
              '201': { description: 'Created', ...body('AccessResponse') },
              '401': { description: 'Unauthorized', ...body('Note') },
            },
          },
        },
      },
      components: {
        schemas: { Note: { type: 'object', properties: { text: { type: 'string' } } } },
      },
    }
    const result = addBetterAuthSecurity(app)
    expect(result).toBe(app)
    const components = app.components as Document['components']
    expect(components.securitySchemes?.betterAuth).toMatchObject({ type: 'http' })
    expect(Object.keys(components.schemas).sort()).toEqual([
      'AccessRequest',
      'AccessResponse',
      'Note',
    ])
    // Self-contained (no references to schemas the document lacks), in OpenAPI 3.0's dialect.
    const text = JSON.stringify(components.schemas)
    expect(text).not.toContain('$ref')
    expect(text).not.toContain('"examples"')
    expect(validate(app, 'nest')).toMatchObject({ valid: true })
    expect(redoclyProblems(app, 'nest-redocly')).toEqual([])
    // Schemas the document has keep their definition; the scheme name can be chosen.
    const named = addBetterAuthSecurity(
      { openapi: '3.1.0', components: { schemas: { AccessRequest: { type: 'string' } } } },
      { name: 'signedAccess' }
    ) as unknown as Document
    expect(named.components.schemas.AccessRequest).toEqual({ type: 'string' })
    expect(Object.keys(named.components.securitySchemes ?? {})).toEqual(['signedAccess'])
  }, 30_000)

  it('lists every route of the table with its methods, under the prefix and custom paths', () => {
    const routes = routeTable({}, '/auth')
    expect(Object.keys(document.paths).sort()).toEqual(routes.map(r => r.path).sort())
    for (const route of routes) {
      expect(Object.keys(document.paths[route.path] ?? {}).sort()).toEqual(
        route.methods.map(m => m.toLowerCase()).sort()
      )
    }
    const custom = openApiDocument(routeTable({ createAccount: '/signup' })) as typeof document
    expect(custom.paths['/signup']?.post?.operationId).toBe('createAccount')
    expect(custom.paths['/account/create']).toBeUndefined()
    expect(Object.keys(document.paths['/auth/account/create']?.post?.responses ?? {})).toContain(
      '409'
    )
  })

  it("accepts every one of the specification's example messages", () => {
    let checked = 0
    for (const example of examples) {
      if (example.operation === 'access' || example.kind === 'linkContainer') continue
      const schemas = operationSchemas(example.operation as Operation)
      const validate = validator(example.kind === 'request' ? schemas.request : schemas.response)
      expect({
        example: example.operation,
        valid: validate(example.message),
        errors: validate.errors,
      }).toEqual({ example: example.operation, valid: true, errors: null })
      checked++
    }
    expect(checked).toBe(20)
    const accessRequest = examples.find(e => e.operation === 'access' && e.kind === 'request')
    expect(validator({ $ref: '#/components/schemas/AccessRequest' })(accessRequest?.message)).toBe(
      true
    )
  })

  it('refuses messages with malformed fields', () => {
    const example = examples.find(e => e.operation === 'rotateDevice' && e.kind === 'request')
    const validate = validator(operationSchemas('rotateDevice').request)
    const message = JSON.parse(JSON.stringify(example?.message)) as {
      payload: { request: { authentication: Record<string, string> } }
      signature?: string
    }
    message.payload.request.authentication.device = 'not-a-hash'
    expect(validate(message)).toBe(false)
    const unsigned = JSON.parse(JSON.stringify(example?.message)) as { signature?: string }
    delete unsigned.signature
    expect(validate(unsigned)).toBe(false)
  })

  it('describes the admin endpoints only when they are on, with their security scheme', async () => {
    expect(Object.keys(document.paths).some(path => path.includes('/admin'))).toBe(false)
    const admin = openApiDocument(routeTable({}, '/auth'), { admin: true }) as Document & {
      tags: { name: string }[]
    }
    expect(validate(admin, 'admin')).toMatchObject({ valid: true })
    expect(redoclyProblems(admin, 'admin-redocly')).toEqual([])
    const paths = Object.keys(admin.paths).filter(path => path.startsWith('/admin/'))
    expect(paths.sort()).toEqual([
      '/admin/identities/{identity}',
      '/admin/identities/{identity}/devices/{device}/revoke',
      '/admin/identities/{identity}/reinstate',
      '/admin/identities/{identity}/sessions/end',
      '/admin/identities/{identity}/suspend',
    ])
    expect(Object.keys(admin.paths['/admin/identities/{identity}'] ?? {}).sort()).toEqual([
      'delete',
      'get',
    ])
    for (const path of paths) {
      for (const operation of Object.values(admin.paths[path] ?? {})) {
        expect(operation.security).toEqual([{ betterAuthAdmin: [] }])
        expect(Object.keys(operation.responses)).toEqual(
          expect.arrayContaining(['200', '400', '401', '403', '404'])
        )
      }
    }
    expect(admin.components.securitySchemes?.betterAuthAdmin).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    })
    expect(admin.tags.map(t => t.name)).toContain('admin')
    // Under another prefix; with the access scheme too.
    const both = openApiDocument(routeTable(), {
      admin: { prefix: '/ops' },
      access: true,
    }) as Document
    expect(Object.keys(both.paths)).toContain('/ops/identities/{identity}/suspend')
    expect(Object.keys(both.components.securitySchemes ?? {}).sort()).toEqual([
      'betterAuth',
      'betterAuthAdmin',
    ])
    expect(validate(both, 'both')).toMatchObject({ valid: true })

    // The standalone server with the endpoints on serves them in its document.
    const auth = createBetterAuth({ keys: { env: false } })
    const served = createServer(auth, { openapi: true, admin: { authorize: () => undefined } })
    const { port } = await served.listen(0)
    try {
      const reply = await fetch(`http://127.0.0.1:${port}/openapi.json`)
      const doc = (await reply.json()) as Document
      expect(Object.keys(doc.paths)).toContain('/admin/identities/{identity}')
    } finally {
      await served.close()
      await auth.close()
    }
  }, 30_000)
})
