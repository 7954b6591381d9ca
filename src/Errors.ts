/**
 * Every failure effect-conntrack can report, as tagged errors with the facts in fields and a readable `message`.
 */
import * as Data from "effect/Data"

/** A line of conntrack output that is not a flow. The rest of the output goes on. */
export class LineParseError extends Data.TaggedError("LineParseError")<{
  readonly line: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.reason}: ${JSON.stringify(this.line.length > 200 ? `${this.line.slice(0, 200)}...` : this.line)}`
  }
}
