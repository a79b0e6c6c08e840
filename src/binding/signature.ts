/**
 * `Signature-Input` and `Signature` (RFC 9421 §4): parsing the one `ba` signature, and the
 * checks shared by requests and replies. Failures are FieldErrors; the request side turns
 * them into BA101, the reply side (in the client) into BA204.
 */
import { parseDictionary, type BareItem, type Item, type Parameters } from 'structured-headers'
import { unqualifySignature, qualifySignature } from '../codec/qualified'
import type { SigningKey } from '../crypto/types'
import { ALGORITHM, LABEL, componentIdentifier, serializeSignatureParams } from './base'
import { FieldError, dictionaryKeys, innerListParameters } from './fields'

/** A parsed `ba` signature: covered components, parameters and the raw r ‖ s bytes. */
export interface ParsedSignature {
  /** The covered components as sent, in order. */
  components: Item[]
  /** Each component's identity for set checks: its name, or `signature;req;key=ba`. */
  names: string[]
  params: Parameters
  /** `@signature-params`: the inner list re-serialized (canonical form). */
  paramsText: string
  /** created, in seconds. */
  created: number
  signature: Uint8Array
}

/** The name under which the reply's request-signature component is checked. */
export const BOUND_SIGNATURE = 'signature;req;key=ba'

function parseMember(text: string, field: string): Item | [Item[], Parameters] {
  const keys = dictionaryKeys(text, field)
  if (keys.length !== 1 || keys[0] !== LABEL) {
    throw new FieldError(`${field} must hold exactly one signature, labelled ${LABEL}`)
  }
  let member
  try {
    member = parseDictionary(text).get(LABEL)
  } catch {
    throw new FieldError(`${field} is not a structured dictionary`)
  }
  if (member === undefined) throw new FieldError(`${field} has no ${LABEL} member`)
  return member
}

function componentName(item: Item): string {
  const [name, params] = item
  if (typeof name !== 'string' || name === '') {
    throw new FieldError('a covered component is not a string')
  }
  if (params.size === 0) return name
  if (name === 'signature' && params.size === 2 && params.get('req') === true) {
    if (params.get('key') === LABEL) return BOUND_SIGNATURE
  }
  throw new FieldError(`covered component ${name} has parameters`)
}

const INTEGER = /^[0-9]{1,15}$/

/**
 * Parses `Signature-Input` and `Signature`: exactly one member each, labelled `ba`; an inner
 * list of plain component names; parameters without repeats, all in `allowed`; `created` an
 * integer; `alg` the string `ecdsa-p256-sha256`; `tag` the string `tag`; a 64-byte signature.
 */
export function parseSignatureFields(
  input: string,
  signature: string,
  tag: string,
  allowed: ReadonlySet<string>
): ParsedSignature {
  const member = parseMember(input, 'signature-input')
  if (!Array.isArray(member[0])) throw new FieldError('signature-input is not an inner list')
  const components = member[0]
  const names = components.map(componentName)
  if (new Set(names).size !== names.length) {
    throw new FieldError('signature-input repeats a component')
  }
  const params = member[1]
  const raw = innerListParameters(input, 'signature-input')
  for (const key of params.keys()) {
    if (!allowed.has(key)) throw new FieldError(`signature parameter ${key} is not allowed`)
  }
  const created = params.get('created')
  if (created === undefined) throw new FieldError('signature parameter created is missing')
  if (typeof created !== 'number' || !INTEGER.test(raw.get('created') ?? '')) {
    throw new FieldError('signature parameter created is not a non-negative integer')
  }
  const alg = params.get('alg')
  if (alg !== ALGORITHM) throw new FieldError(`signature parameter alg must be "${ALGORITHM}"`)
  if (params.get('tag') !== tag) throw new FieldError(`signature parameter tag must be "${tag}"`)
  for (const key of ['nonce', 'keyid']) {
    const value = params.get(key)
    if (value !== undefined && typeof value !== 'string') {
      throw new FieldError(`signature parameter ${key} is not a string`)
    }
  }

  const sig = parseMember(signature, 'signature')
  const bytes = sig[0]
  if (Array.isArray(bytes) || !(bytes instanceof ArrayBuffer) || sig[1].size !== 0) {
    throw new FieldError('signature is not a plain byte sequence')
  }
  if (bytes.byteLength !== 64) throw new FieldError('signature is not 64 bytes (r ‖ s)')

  return {
    components: components as Item[],
    names,
    params,
    paramsText: serializeSignatureParams(components as Item[], params),
    created,
    signature: new Uint8Array(bytes),
  }
}

/**
 * Checks the covered components: each in `allowed`, every one of `required` present. Order is
 * free (the base follows the order sent); repeats were refused by the parser.
 */
export function checkComponents(
  names: readonly string[],
  allowed: ReadonlySet<string>,
  required: readonly string[]
): void {
  // Indexed loops: `names` is often a kept list's frozen array, whose iterator and `includes`
  // V8 runs in its generic built-ins rather than inline.
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string
    if (!allowed.has(name)) throw new FieldError(`component ${name} may not be covered`)
  }
  for (let r = 0; r < required.length; r++) {
    const name = required[r] as string
    let found = false
    for (let i = 0; i < names.length && !found; i++) found = names[i] === name
    if (!found) throw new FieldError(`component ${name} must be covered`)
  }
}

export const identifiers = (components: readonly Item[]): string[] =>
  components.map(componentIdentifier)

/** Signs `base` with a protocol signing key; RFC 9421 wants raw r ‖ s, the key gives `0I…`. */
export async function signBase(signer: SigningKey, base: string): Promise<Uint8Array> {
  const qualified = await signer.sign(new TextEncoder().encode(base))
  const raw = unqualifySignature(qualified)
  if (raw === undefined) throw new TypeError('the signing key did not return a P-256 signature')
  return raw
}

/** The protocol's text form (`0I…`) of raw r ‖ s bytes, for a `Verifier`. */
export const qualified = (raw: Uint8Array): string => qualifySignature(raw)

/** Serializes the parameters this binding emits, in its order. */
export function emitParams(values: {
  created: number
  nonce?: string
  keyid?: string
  tag: string
}): Map<string, BareItem> {
  const params = new Map<string, BareItem>([['created', values.created]])
  if (values.nonce !== undefined) params.set('nonce', values.nonce)
  if (values.keyid !== undefined) params.set('keyid', values.keyid)
  params.set('alg', ALGORITHM)
  params.set('tag', values.tag)
  return params
}
