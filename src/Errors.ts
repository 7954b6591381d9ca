/**
 * Every failure effect-conntrack can report, as tagged errors with the facts in fields and a readable `message`.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"

/** A line of conntrack output that is not a flow. The rest of the output goes on. */
export class LineParseError extends Data.TaggedError("LineParseError")<{
  readonly line: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.reason}: ${JSON.stringify(this.line.length > 200 ? `${this.line.slice(0, 200)}...` : this.line)}`
  }
}

/** The `conntrack` binary (or `setpriv`, which starts it) is not installed or not at the given path. */
export class ConntrackNotFound extends Data.TaggedError("ConntrackNotFound")<{
  readonly binary: string
  readonly pkg: string
}> {
  override get message(): string {
    const install = `${this.binary} was not found: install the ${this.pkg} package (e.g. apt-get install ${this.pkg})`
    // setpriv only ties conntrack's life to ours: it can be done without.
    return this.binary === "setpriv"
      ? `${install}, or run conntrack without it with CONNTRACK_DIE_WITH_PARENT=false (then a conntrack may outlive a killed effect-conntrack)`
      : `${install} or give its path`
  }
}

/** conntrack refused to run: it needs root or the CAP_NET_ADMIN capability. */
export class PermissionDenied extends Data.TaggedError("PermissionDenied")<{
  readonly command: string
  readonly stderr: ReadonlyArray<string>
}> {
  override get message(): string {
    return `${this.command} was refused: run as root or give the process CAP_NET_ADMIN (${this.stderr.join(" / ")})`
  }
}

/**
 * conntrack ended: a dump with a failure, or an event stream at all (an event stream that ends is a failure); or it
 * could not be started, or its output could not be read (`problem` says which).
 */
export class ConntrackExited extends Data.TaggedError("ConntrackExited")<{
  readonly command: string
  readonly exitCode?: number
  readonly signal?: string
  /** What went wrong other than an exit: `could not be started: ...`, `output could not be read: ...`. */
  readonly problem?: string
  readonly stderr: ReadonlyArray<string>
}> {
  override get message(): string {
    const how =
      this.problem !== undefined
        ? this.problem
        : this.signal !== undefined
          ? `was killed by ${this.signal}`
          : this.exitCode !== undefined
            ? `exited with code ${this.exitCode}`
            : "ended"
    const tail = this.stderr.length > 0 ? `; its last stderr lines: ${this.stderr.join(" / ")}` : ""
    return `${this.command} ${how}${tail}`
  }
}

/**
 * conntrack reported ENOBUFS: the kernel dropped events it could not deliver. From conntrack 1.4.6 on the process
 * keeps running, so the event stream fails itself to force a resync.
 */
export class EventOverflow extends Data.TaggedError("EventOverflow")<{
  readonly command: string
}> {
  override get message(): string {
    return `${this.command} hit ENOBUFS and lost events: resyncing from a fresh dump`
  }
}

/** The kernel sends no conntrack events in this network namespace (or says nothing about them). */
export class EventsDisabled extends Data.TaggedError("EventsDisabled")<{
  readonly path: string
  /** What the file held, trimmed; absent when it could not be read. */
  readonly content?: string
  readonly reason: string
}> {
  override get message(): string {
    return `conntrack events are off: ${this.path} ${this.reason} (turn them on with sysctl -w net.netfilter.nf_conntrack_events=1)`
  }
}

/** The event helper was asked for (`eventSource: "helper"`) but is missing, not executable or does not run. */
export class EventHelperUnavailable extends Data.TaggedError("EventHelperUnavailable")<{
  readonly path: string
  readonly reason: string
}> {
  override get message(): string {
    return `the event helper ${this.path} ${this.reason}: build it (apt-get install -y libnetfilter-conntrack-dev gcc pkg-config, then npm rebuild effect-conntrack) or use the event source "auto" or "conntrack"`
  }
}

/** Every error that running conntrack can fail with. */
export type ConntrackError =
  | ConntrackNotFound
  | PermissionDenied
  | ConntrackExited
  | EventOverflow
  | EventHelperUnavailable

/** The events file did not answer in time (a FIFO, a hung file system): whether events are on is unknown. */
export class EventsCheckTimeout extends Data.TaggedError("EventsCheckTimeout")<{
  readonly path: string
  readonly timeout: Duration.Duration
}> {
  override get message(): string {
    return `could not tell whether conntrack events are on: reading ${this.path} took more than ${Duration.format(this.timeout)} (is it a FIFO, or a hung file system?)`
  }
}
