/** The OpenAPI 3.1 document generated from the route table. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020'
import { openApiDocument, routeTable, type Operation } from '../src'
import { operationSchemas } from '../src/server/openapi'
import spec from './fixtures/spec-examples.json'

type Example = { operation: string; kind: string; message: unknown }
const examples = spec.messages as unknown as Example[]

const document = openApiDocument(routeTable({}, '/auth')) as {
  openapi: string
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>
  components: { schemas: Record<string, unknown> }
}

function validator(schema: Record<string, unknown>) {
  const ajv = new Ajv2020({ strict: false, formats: { 'date-time': true } })
  return ajv.compile({ ...schema, components: document.components })
}

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', () => {
    const dir = mkdtempSync(join(tmpdir(), 'better-auth-openapi-'))
    try {
      const file = join(dir, 'openapi.json')
      writeFileSync(file, JSON.stringify(document))
      const cli = require.resolve('@seriousme/openapi-schema-validator/bin/validate-api-cli.js')
      const out = execFileSync(process.execPath, [cli, file], { encoding: 'utf8' })
      expect(JSON.parse(out.slice(out.indexOf('{')))).toMatchObject({ valid: true })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

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
})
