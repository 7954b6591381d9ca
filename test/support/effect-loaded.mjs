// Preloaded (`node --import`) by tests of the fast starts: at exit, writes to $EFFECT_LOADED_FILE whether Effect was
// loaded. Its global store, `effect/GlobalValue`, exists once a module that keeps state ran (Effect, Stream, Schema,
// the platform...); a pure helper such as `effect/Function` alone leaves none.
import * as fs from "node:fs"

process.on("exit", () => {
  fs.writeFileSync(process.env.EFFECT_LOADED_FILE ?? "", String("effect/GlobalValue" in globalThis))
})
