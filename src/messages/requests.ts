/**
 * Request shapes of the ten operations and of access requests. Each reader validates every field
 * it uses (type and qualified format) and returns a typed view; unknown extra fields are ignored
 * (they are still covered by the signature).
 */
import { InvalidMessageError } from '../errors'
import type { Envelope, SignedPart } from './envelope'
import { signedPart } from './envelope'
import {
  hash,
  nonce as nonceField,
  object,
  publicKey,
  string,
  timestamp,
  type JsonObject,
} from './fields'

export type PointCheck = (publicKey: string) => boolean

/** `(identity, device) → (publicKey, rotationHash)` as presented by a device. */
export interface Authentication {
  device: string
  identity: string
  publicKey: string
  rotationHash: string
}

export interface CreateAccountRequest {
  nonce: string
  authentication: Authentication & { recoveryHash: string }
}

export type DeleteAccountRequest = { nonce: string; authentication: Authentication }
export type RotateDeviceRequest = DeleteAccountRequest

export interface RecoverAccountRequest {
  nonce: string
  authentication: Authentication & { recoveryHash: string; recoveryKey: string }
}

export interface ChangeRecoveryKeyRequest {
  nonce: string
  authentication: Authentication & { recoveryHash: string }
}

export interface LinkDeviceRequest {
  nonce: string
  authentication: Authentication
  /** The new device's signed link container. */
  link: SignedPart & { authentication: Authentication }
}

export interface UnlinkDeviceRequest {
  nonce: string
  authentication: Authentication
  link: { device: string }
}

export interface RequestSessionRequest {
  nonce: string
  identity: string
}

export interface CreateSessionRequest {
  nonce: string
  access: { publicKey: string; rotationHash: string }
  authentication: { device: string; nonce: string }
}

export interface RefreshSessionRequest {
  nonce: string
  access: { publicKey: string; rotationHash: string; token: string }
}

export interface AccessRequestFields<Request = unknown> {
  nonce: string
  timestamp: { text: string; ms: number }
  token: string
  request: Request
}

const P = 'payload'
const R = 'payload.request'

function access(envelope: Envelope): JsonObject {
  return object(envelope.payload, 'access', P)
}

function requestBody(envelope: Envelope): JsonObject {
  return object(envelope.payload, 'request', P)
}

function requestNonce(envelope: Envelope): string {
  return nonceField(access(envelope), 'nonce', 'payload.access')
}

function authentication(parent: JsonObject, path: string, isPoint: PointCheck): Authentication {
  const auth = object(parent, 'authentication', path)
  const at = `${path}.authentication`
  return {
    device: hash(auth, 'device', at),
    identity: hash(auth, 'identity', at),
    publicKey: publicKey(auth, 'publicKey', at, isPoint),
    rotationHash: hash(auth, 'rotationHash', at),
  }
}

function withRecoveryHash(parent: JsonObject, path: string, isPoint: PointCheck) {
  const base = authentication(parent, path, isPoint)
  const auth = parent.authentication as JsonObject
  return { ...base, recoveryHash: hash(auth, 'recoveryHash', `${path}.authentication`) }
}

export function readCreateAccount(envelope: Envelope, isPoint: PointCheck): CreateAccountRequest {
  const nonce = requestNonce(envelope)
  return { nonce, authentication: withRecoveryHash(requestBody(envelope), R, isPoint) }
}

export function readDeleteAccount(envelope: Envelope, isPoint: PointCheck): DeleteAccountRequest {
  const nonce = requestNonce(envelope)
  return { nonce, authentication: authentication(requestBody(envelope), R, isPoint) }
}

export const readRotateDevice = readDeleteAccount

/** changeRecoveryKey has createAccount's shape (authentication with a new recoveryHash). */
export const readChangeRecoveryKey: (
  envelope: Envelope,
  isPoint: PointCheck
) => ChangeRecoveryKeyRequest = readCreateAccount

export function readRecoverAccount(envelope: Envelope, isPoint: PointCheck): RecoverAccountRequest {
  const nonce = requestNonce(envelope)
  const body = requestBody(envelope)
  const base = withRecoveryHash(body, R, isPoint)
  const auth = body.authentication as JsonObject
  const recoveryKey = publicKey(auth, 'recoveryKey', `${R}.authentication`, isPoint)
  return { nonce, authentication: { ...base, recoveryKey } }
}

export function readLinkDevice(envelope: Envelope, isPoint: PointCheck): LinkDeviceRequest {
  const nonce = requestNonce(envelope)
  const body = requestBody(envelope)
  const auth = authentication(body, R, isPoint)
  const linkPath = `${R}.link`
  const part = signedPart(envelope, object(body, 'link', R), linkPath)
  const linked = authentication(part.payload, `${linkPath}.payload`, isPoint)
  return { nonce, authentication: auth, link: { ...part, authentication: linked } }
}

export function readUnlinkDevice(envelope: Envelope, isPoint: PointCheck): UnlinkDeviceRequest {
  const nonce = requestNonce(envelope)
  const body = requestBody(envelope)
  const auth = authentication(body, R, isPoint)
  const link = object(body, 'link', R)
  return { nonce, authentication: auth, link: { device: hash(link, 'device', `${R}.link`) } }
}

/** The optional request of the access-keys endpoint: `{"payload":{"access":{"nonce":N}}}`. */
export function readAccessKeysRequest(envelope: Envelope): string {
  return requestNonce(envelope)
}

export function readRequestSession(envelope: Envelope): RequestSessionRequest {
  const nonce = requestNonce(envelope)
  const auth = object(requestBody(envelope), 'authentication', R)
  return { nonce, identity: hash(auth, 'identity', `${R}.authentication`) }
}

export function readCreateSession(envelope: Envelope, isPoint: PointCheck): CreateSessionRequest {
  const nonce = requestNonce(envelope)
  const body = requestBody(envelope)
  const acc = object(body, 'access', R)
  const auth = object(body, 'authentication', R)
  return {
    nonce,
    access: {
      publicKey: publicKey(acc, 'publicKey', `${R}.access`, isPoint),
      rotationHash: hash(acc, 'rotationHash', `${R}.access`),
    },
    authentication: {
      device: hash(auth, 'device', `${R}.authentication`),
      nonce: nonceField(auth, 'nonce', `${R}.authentication`),
    },
  }
}

export function readRefreshSession(envelope: Envelope, isPoint: PointCheck): RefreshSessionRequest {
  const nonce = requestNonce(envelope)
  const acc = object(requestBody(envelope), 'access', R)
  return {
    nonce,
    access: {
      publicKey: publicKey(acc, 'publicKey', `${R}.access`, isPoint),
      rotationHash: hash(acc, 'rotationHash', `${R}.access`),
      token: string(acc, 'token', `${R}.access`),
    },
  }
}

export function readAccessRequest<Request = unknown>(
  envelope: Envelope
): AccessRequestFields<Request> {
  const acc = access(envelope)
  if (!('request' in envelope.payload)) throw new InvalidMessageError(`${R}`, 'is required')
  return {
    nonce: nonceField(acc, 'nonce', 'payload.access'),
    timestamp: timestamp(acc, 'timestamp', 'payload.access'),
    token: string(acc, 'token', 'payload.access'),
    request: envelope.payload.request as Request,
  }
}
