/**
 * Options of the walker: a plain object for library users, and a `Config` reader (environment variables with a
 * `CONNTRACK_` prefix) for the command line, mapped onto the same object.
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import {
  DEFAULT_BINARY,
  DEFAULT_PROTOCOL,
  DUMP_WRITE_SIZE,
  isDumpWriteSize,
  MAX_DUMP_WRITE_SIZE
} from "./internal/conntrackCommand.js"

/** How to run conntrack. */
export interface ConntrackOptions {
  /** Path or name of the conntrack binary. Default `conntrack`. */
  readonly binary?: string
  /** Protocol to track (`-p`); `all` passes no `-p`. Default `tcp`. */
  readonly protocol?: string
  /**
   * Receive buffer of the event socket in bytes (`--buffer-size`; the kernel doubles it); 0 passes none. Default 32 MiB:
   * under 2,000-7,000 connections/s a 4 MiB buffer overflowed even for the event helper on a busy machine.
   */
  readonly bufferSize?: number
  /** More arguments for both `-L` and `-E` (e.g. `["--zone", "3"]`). */
  readonly extraArgs?: ReadonlyArray<string>
  /** More arguments for `-L` only, after `extraArgs`. */
  readonly dumpArgs?: ReadonlyArray<string>
  /** More arguments for `-E` only, after `extraArgs` (e.g. `["-e", "UPDATE,DESTROY"]`). */
  readonly eventArgs?: ReadonlyArray<string>
  /**
   * Bytes `conntrack -L` writes at a time (a whole number up to 16 MiB), set with `stdbuf -o` (coreutils) when it is
   * on the PATH; 0 leaves conntrack's own 4 KiB writes. Default 64 KiB: fewer, larger reads cost the reader less CPU,
   * which a large dump otherwise takes from conntrack. A stdbuf that fails to run is logged at warning, and that dump
   * and the later ones in the process run conntrack without it; another value is logged and taken as 0.
   */
  readonly dumpWriteSize?: number
  /** Start conntrack through `setpriv --pdeathsig KILL` so that it dies with this process. Default true. */
  readonly dieWithParent?: boolean
  /** How long a stopped conntrack gets between SIGTERM and SIGKILL. Default 2 seconds. */
  readonly stopTimeout?: Duration.DurationInput
  /**
   * What delivers events: the event helper (`helper`, built into `dist/native/conntrack-events`), `conntrack -E`
   * (`conntrack`), or the helper when it is there and runs, else `conntrack -E` with one warning (`auto`). Default
   * `auto`.
   */
  readonly eventSource?: EventSourceKind
  /** Path of the event helper. Default: `dist/native/conntrack-events` of this package. */
  readonly helperPath?: string | undefined
}

/** What delivers events: see `ConntrackOptions.eventSource`. */
export type EventSourceKind = "auto" | "helper" | "conntrack"

/** How the flow table behaves. */
export interface TableOptions {
  /**
   * Most deaths kept for readers that have not walked them yet; past it the oldest are dropped, and each reader that
   * missed them is told how many (and `conntrack_dead_flows_dropped` counts them). Default: the kernel's
   * `nf_conntrack_max` (read by the walker under `procRoot`), else 262,144.
   */
  readonly maxDead?: number
  /**
   * Most connections remembered as reported dead while the kernel still holds them (TIME_WAIT), so that a later dump
   * or a stale event does not report them again; each is forgotten when its DESTROY arrives or a dump no longer shows
   * it. Past the bound the oldest are forgotten, down to 7/8 of it. Default: the kernel's `nf_conntrack_max`, else
   * 262,144.
   */
  readonly maxReported?: number
  /** Treat flows seen only as NEW as active (their direction may be wrong). Default false, as in the Go tracker. */
  readonly includeNew?: boolean
}

/** Everything the walker takes. */
export interface WalkerOptions extends ConntrackOptions, TableOptions {
  /** Where `sys/net/netfilter/nf_conntrack_events` is read from. Default `/proc`. */
  readonly procRoot?: string
  /** Pause before restarting after any failure. Default 1 second. */
  readonly restartDelay?: Duration.DurationInput
  /** Longest wait for conntrack -E to say it listens (its buffer-size NOTICE) before dumping. Default 1 second. */
  readonly listenTimeout?: Duration.DurationInput
  /**
   * How far reading may run ahead of folding, in chunks of events (up to 64 KiB, about 250 events, each; while a dump
   * runs, up to 4 chunks of its flows, 2,048 or up to one read more each, wait besides). Past it the walker stops
   * reading, conntrack blocks on its pipe, the kernel drops events, conntrack reports ENOBUFS and the walker resyncs.
   * Default 512 (about 128,000 events: seconds of a busy host's events, tens of MB at most). Reading runs ahead while
   * the dump runs and while a `changes` subscriber takes its snapshot; otherwise, once the dump is in, each read is
   * folded as soon as it is read, before the next read (on one thread, reading ahead would not fold any sooner).
   */
  readonly eventBuffer?: number
  /** How many changes a slow `changes` subscriber may fall behind before it loses the oldest. Default 65,536. */
  readonly changesBuffer?: number
  /**
   * Make the walker's own reader (its `walk`). A daemon whose consumers all make readers of their own (`serve`) turns it
   * off, so that deaths nobody will walk are not kept. Default true.
   */
  readonly ownReader?: boolean
  /** How often the walker checks that the kernel still sends events (`nf_conntrack_events`). Default 30 seconds. */
  readonly supportCheckInterval?: Duration.DurationInput
}

export const defaults = {
  binary: DEFAULT_BINARY,
  protocol: DEFAULT_PROTOCOL,
  bufferSize: 32 * 1024 * 1024,
  extraArgs: [] as ReadonlyArray<string>,
  dumpArgs: [] as ReadonlyArray<string>,
  eventArgs: [] as ReadonlyArray<string>,
  dumpWriteSize: DUMP_WRITE_SIZE,
  dieWithParent: true,
  stopTimeout: Duration.seconds(2),
  eventSource: "auto" as EventSourceKind,
  maxDead: 262_144,
  maxReported: 262_144,
  includeNew: false,
  procRoot: "/proc",
  restartDelay: Duration.seconds(1),
  listenTimeout: Duration.seconds(1),
  eventBuffer: 512,
  changesBuffer: 65_536,
  supportCheckInterval: Duration.seconds(30)
} as const

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly binary: string
  readonly protocol: string
  readonly bufferSize: number
  readonly extraArgs: ReadonlyArray<string>
  readonly dumpArgs: ReadonlyArray<string>
  readonly eventArgs: ReadonlyArray<string>
  readonly dumpWriteSize: number
  readonly dieWithParent: boolean
  readonly stopTimeout: Duration.Duration
  readonly eventSource: EventSourceKind
  /** Absent: the helper built with this package. */
  readonly helperPath: string | undefined
  readonly maxDead: number
  readonly maxReported: number
  readonly includeNew: boolean
  readonly procRoot: string
  readonly restartDelay: Duration.Duration
  readonly listenTimeout: Duration.Duration
  readonly eventBuffer: number
  readonly changesBuffer: number
  readonly supportCheckInterval: Duration.Duration
}

export const resolve = (options: WalkerOptions = {}): ResolvedOptions => ({
  binary: options.binary ?? defaults.binary,
  protocol: options.protocol ?? defaults.protocol,
  bufferSize: options.bufferSize ?? defaults.bufferSize,
  extraArgs: options.extraArgs ?? defaults.extraArgs,
  dumpArgs: options.dumpArgs ?? defaults.dumpArgs,
  eventArgs: options.eventArgs ?? defaults.eventArgs,
  dumpWriteSize: options.dumpWriteSize ?? defaults.dumpWriteSize,
  dieWithParent: options.dieWithParent ?? defaults.dieWithParent,
  stopTimeout: Duration.decode(options.stopTimeout ?? defaults.stopTimeout),
  eventSource: options.eventSource ?? defaults.eventSource,
  helperPath: options.helperPath,
  maxDead: options.maxDead ?? defaults.maxDead,
  maxReported: options.maxReported ?? defaults.maxReported,
  includeNew: options.includeNew ?? defaults.includeNew,
  procRoot: options.procRoot ?? defaults.procRoot,
  restartDelay: Duration.decode(options.restartDelay ?? defaults.restartDelay),
  listenTimeout: Duration.decode(options.listenTimeout ?? defaults.listenTimeout),
  eventBuffer: options.eventBuffer ?? defaults.eventBuffer,
  changesBuffer: options.changesBuffer ?? defaults.changesBuffer,
  supportCheckInterval: Duration.decode(options.supportCheckInterval ?? defaults.supportCheckInterval)
})

const words = (s: string): ReadonlyArray<string> => s.split(/\s+/).filter((a) => a !== "")

const optional = <A>(config: Config.Config<A>) => Config.option(config)

/**
 * The walker's options from the environment: `CONNTRACK_BINARY`, `CONNTRACK_PROTOCOL`, `CONNTRACK_BUFFER_SIZE`,
 * `CONNTRACK_EXTRA_ARGS` (split on spaces; for both `-L` and `-E`), `CONNTRACK_DUMP_ARGS` (`-L` only),
 * `CONNTRACK_EVENT_ARGS` (`-E` only), `CONNTRACK_DUMP_WRITE_SIZE`, `CONNTRACK_DIE_WITH_PARENT`,
 * `CONNTRACK_STOP_TIMEOUT`, `CONNTRACK_EVENT_SOURCE` (`auto`, `helper` or `conntrack`), `CONNTRACK_HELPER_PATH`,
 * `CONNTRACK_MAX_DEAD`, `CONNTRACK_MAX_REPORTED`, `CONNTRACK_INCLUDE_NEW`, `CONNTRACK_PROC_ROOT`,
 * `CONNTRACK_RESTART_DELAY`, `CONNTRACK_LISTEN_TIMEOUT`, `CONNTRACK_EVENT_BUFFER`, `CONNTRACK_CHANGES_BUFFER`,
 * `CONNTRACK_SUPPORT_CHECK_INTERVAL`. Durations use Effect's syntax (`250 millis`, `2 seconds`).
 * Unset variables are left out, so the defaults (or values given in code) apply.
 */
export const config: Config.Config<WalkerOptions> = Config.all({
  binary: optional(Config.nonEmptyString("BINARY")),
  protocol: optional(Config.nonEmptyString("PROTOCOL")),
  bufferSize: optional(
    Config.integer("BUFFER_SIZE").pipe(Config.validate({ message: "must be 0 or more", validation: (n) => n >= 0 }))
  ),
  extraArgs: optional(Config.string("EXTRA_ARGS").pipe(Config.map(words))),
  dumpArgs: optional(Config.string("DUMP_ARGS").pipe(Config.map(words))),
  eventArgs: optional(Config.string("EVENT_ARGS").pipe(Config.map(words))),
  dumpWriteSize: optional(
    Config.integer("DUMP_WRITE_SIZE").pipe(
      Config.validate({ message: `must be from 0 to ${MAX_DUMP_WRITE_SIZE}`, validation: isDumpWriteSize })
    )
  ),
  dieWithParent: optional(Config.boolean("DIE_WITH_PARENT")),
  stopTimeout: optional(Config.duration("STOP_TIMEOUT")),
  eventSource: optional(Config.literal("auto", "helper", "conntrack")("EVENT_SOURCE")),
  helperPath: optional(Config.nonEmptyString("HELPER_PATH")),
  maxDead: optional(
    Config.integer("MAX_DEAD").pipe(Config.validate({ message: "must be 1 or more", validation: (n) => n >= 1 }))
  ),
  maxReported: optional(
    Config.integer("MAX_REPORTED").pipe(Config.validate({ message: "must be 1 or more", validation: (n) => n >= 1 }))
  ),
  includeNew: optional(Config.boolean("INCLUDE_NEW")),
  procRoot: optional(Config.nonEmptyString("PROC_ROOT")),
  restartDelay: optional(Config.duration("RESTART_DELAY")),
  listenTimeout: optional(Config.duration("LISTEN_TIMEOUT")),
  eventBuffer: optional(
    Config.integer("EVENT_BUFFER").pipe(Config.validate({ message: "must be 1 or more", validation: (n) => n >= 1 }))
  ),
  changesBuffer: optional(
    Config.integer("CHANGES_BUFFER").pipe(Config.validate({ message: "must be 1 or more", validation: (n) => n >= 1 }))
  ),
  supportCheckInterval: optional(Config.duration("SUPPORT_CHECK_INTERVAL"))
}).pipe(
  Config.nested("CONNTRACK"),
  Config.map((values) => {
    const options: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(values) as Array<[string, Option.Option<unknown>]>) {
      if (Option.isSome(value)) options[key] = value.value
    }
    return options as WalkerOptions
  })
)
