/** Steps several operations share: naming who a message concerns, device checks, key rotation. */
import { verifySigned } from '../../messages/envelope'
import {
  ConflictError,
  InvalidDeviceError,
  InvalidHashError,
  UnknownAccountError,
} from '../../errors'
import type { Authentication } from '../../messages/requests'
import type { RotateResult, RotationEffect } from '../../stores/types'
import type { OperationCall, OperationServices, OperationTrace } from './types'

/** Names the identity (and device) a message concerns, for its audit event. */
export function seen(trace: OperationTrace, identity: string, device?: string): void {
  trace.identity = identity
  if (device !== undefined) trace.device = device
}

/** A device id must be the hash of its key and rotation hash. */
export function checkDevice(
  services: OperationServices,
  device: string,
  publicKey: string,
  rotationHash: string
): void {
  if (services.hasher.sum(publicKey + rotationHash) !== device) throw new InvalidDeviceError()
}

/**
 * The common path of the operations a device signs with its current key while committing to the
 * next: signature, identity limit, further checks, then the store's atomic rotation with `effect`.
 */
export async function rotateWith(
  call: OperationCall,
  a: Authentication,
  effect: RotationEffect,
  /** Further checks of the message, after its signature and before the rotation. */
  check?: () => Promise<void>
): Promise<void> {
  const { services, envelope, trace } = call
  seen(trace, a.identity, a.device)
  await verifySigned(services.verifier, envelope, a.publicKey)
  await call.limitIdentity(a.identity)
  await check?.()
  const result = await services.store.accounts.rotate(
    a.identity,
    a.device,
    services.hasher.sum(a.publicKey),
    { publicKey: a.publicKey, rotationHash: a.rotationHash },
    effect
  )
  throwForRotation(result)
}

function throwForRotation(result: RotateResult): void {
  switch (result) {
    case 'ok':
      return
    case 'unknown-device':
      throw new UnknownAccountError('device')
    case 'hash-mismatch':
      throw new InvalidHashError('rotation')
    case 'target-unknown':
      throw new UnknownAccountError('device to unlink')
    case 'target-exists':
      throw new ConflictError('device')
  }
}
