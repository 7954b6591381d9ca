/**
 * How the command line ends on a failure: one clear sentence on stderr and a non-zero exit, never a stack trace.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

const describe = (error: unknown): string | undefined => {
  // @effect/cli already printed its own help text for a bad flag or argument.
  if (ValidationError.isValidationError(error)) return undefined
  if (error instanceof Error) return error.message
  return String(error)
}

/** Prints the failure's message (for a typed error) or its cause (for a defect), keeping the failure. */
export const reportFailure = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapErrorCause(self, (cause) => {
    if (Cause.isInterruptedOnly(cause)) return Effect.void
    const failure = Cause.failureOption(cause)
    const text = failure._tag === "Some" ? describe(failure.value) : `unexpected error: ${Cause.pretty(cause)}`
    return text === undefined ? Effect.void : Console.error(`effect-conntrack: ${text}`)
  })
