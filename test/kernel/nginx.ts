// nginx (nginx-light) and ApacheBench (apache2-utils) inside a namespace of our own, for the load test and the load
// benchmark: one connection per request (no keep-alive), loopback only.
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { exited, lines, type Namespace, waitFor } from "./netns.js"

/** Why nginx and ab cannot run here, or undefined. */
export const loadTools = (): string | undefined => {
  for (const [tool, args, pkg] of [
    ["nginx", ["-v"], "nginx-light"],
    ["ab", ["-V"], "apache2-utils"]
  ] as const) {
    if (child.spawnSync(tool, args, { stdio: "ignore" }).error !== undefined) return `no ${tool} (install ${pkg})`
  }
  return undefined
}

/** nginx inside the namespace: one worker, no keep-alive, an access log of client address and port. */
export const nginx = async (ns: Namespace, dir: string, v4Port: number, v6Port: number) => {
  const log = path.join(dir, "access.log")
  fs.writeFileSync(
    path.join(dir, "nginx.conf"),
    [
      "daemon off;",
      "master_process off;",
      "worker_processes 1;",
      "user root;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      "events { worker_connections 8192; }",
      "http {",
      `  client_body_temp_path ${dir}/body;`,
      `  log_format flow '$remote_addr $remote_port $server_port';`,
      `  access_log ${log} flow buffer=64k flush=100ms;`,
      "  keepalive_timeout 0;",
      "  server {",
      `    listen 127.0.0.1:${v4Port} backlog=8192;`,
      `    listen [::1]:${v6Port} backlog=8192;`,
      "    location / { return 200 'ok\\n'; }",
      "  }",
      "}",
      ""
    ].join("\n")
  )
  const p = ns.spawn(["nginx", "-p", dir, "-c", path.join(dir, "nginx.conf")])
  const err = lines(p.stderr)
  await waitFor(`nginx listening on ${v4Port} and ${v6Port}`, () => {
    if (p.exitCode !== null) throw new Error(`nginx exited: ${err.join(" / ")}`)
    const listening = ns.run(["ss", "-Hltn"])
    return listening.includes(`127.0.0.1:${v4Port}`) && listening.includes(`[::1]:${v6Port}`)
  })
  /** The access log's requests: `family sport dport` keys with how many requests each had. */
  const served = (): Map<string, number> => {
    const counts = new Map<string, number>()
    for (const line of fs.readFileSync(log, "utf8").split("\n")) {
      const m = /^(\S+) (\d+) (\d+)$/.exec(line)
      if (m === null) continue
      const key = `${m[1]?.includes(":") ? "ipv6" : "ipv4"} ${m[2]} ${m[3]}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return counts
  }
  return { proc: p, served, log }
}

/** ApacheBench: `n` requests, `concurrency` at a time, a new connection each; its requests per second. */
export const ab = async (ns: Namespace, url: string, n: number, concurrency: number) => {
  const p = ns.spawn(["ab", "-q", "-r", "-n", String(n), "-c", String(concurrency), url])
  const out = lines(p.stdout)
  const err = lines(p.stderr)
  const code = await exited(p, 300_000)
  if (code !== 0) throw new Error(`ab ${url} exited with ${code}: ${err.join(" / ")}`)
  const text = out.join("\n")
  const rate = Number(/Requests per second:\s+([\d.]+)/.exec(text)?.[1] ?? Number.NaN)
  const failed = Number(/Failed requests:\s+(\d+)/.exec(text)?.[1] ?? Number.NaN)
  return { rate, failed }
}
