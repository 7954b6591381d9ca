import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { program, WalkerLive } from "./walk.js"

NodeRuntime.runMain(program.pipe(Effect.provide(WalkerLive)))
