/**
 * The operation table: every protocol operation, by name, from its area module. The route table,
 * dispatch, audit events, default rate rules and the OpenAPI document all derive from it, so
 * adding an operation is adding one entry to an area module.
 */
import { ACCOUNT_OPERATIONS } from './accounts'
import { DEVICE_OPERATIONS } from './devices'
import { SESSION_OPERATIONS } from './sessions'
import type { OperationDefinition } from './types'

const TABLE = { ...ACCOUNT_OPERATIONS, ...DEVICE_OPERATIONS, ...SESSION_OPERATIONS }

/** The protocol's operations. */
export type Operation = keyof typeof TABLE

/** Every operation's definition, by name (a missing or misshapen entry is a type error). */
export const OPERATION_DEFINITIONS: Readonly<Record<Operation, OperationDefinition>> =
  Object.freeze(TABLE satisfies Record<Operation, OperationDefinition>)

/** The names of the protocol operations. */
export const OPERATIONS: readonly Operation[] = Object.freeze(
  Object.keys(OPERATION_DEFINITIONS) as Operation[]
)

export {
  defineOperation,
  type OperationArea,
  type OperationCall,
  type OperationDefinition,
  type OperationInfo,
  type OperationRateRules,
  type OperationServices,
  type OperationTrace,
} from './types'
