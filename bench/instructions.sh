#!/bin/sh
# Instructions the byte parser runs a line, counted by valgrind (cachegrind) with V8 in one thread. Unlike time, which
# swings 25-40% from run to run on these shared machines, the count repeats within 0.2%: weigh a parser change by it,
# then confirm with `npm run bench`. The count includes compiling the parser (the same for both sides of a comparison).
# WebAssembly (the line scanner) is compiled by V8's optimizing tier at once (`--no-liftoff`): in one thread, V8 would
# leave it in its baseline tier, which the scanner leaves after its first calls in a normal process.
#
#   bench/instructions.sh [BASE]
#
# BASE: another build's dist, counted too. Make it inside this repository (where it finds the dependencies), e.g.
# `cp -r dist dist-scratch` before the change. Needs valgrind (apt-get install -y valgrind). About a minute for each
# build and format.
set -eu
command -v valgrind >/dev/null || { echo "bench/instructions.sh: needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
base=""
if [ $# -gt 0 ]; then base=$(cd "$1" && pwd); fi
root=$(cd "$(dirname "$0")/.." && pwd)
lines=${INSTRUCTIONS_LINES:-200000}
cd "$root"
npm run -s build >/dev/null
npx tsc -p tsconfig.bench.json
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node bench/instructions-run.mjs corpus "$dir" "$lines"

# The instructions of one run, or nothing unless it parsed exactly $4 lines.
count() {
  valgrind --tool=cachegrind --cache-sim=no --smc-check=all-non-file --cachegrind-out-file=/dev/null \
    node --single-threaded --no-liftoff bench/instructions-run.mjs "$1" "$2" "$3" >"$dir/out.txt" 2>&1 || true
  awk -v want="$4" '/^parsed / { parsed = $2; seen = 1 } /I +refs/ { gsub(",", "", $NF); ir = $NF }
    END { if (seen && parsed == want && ir != "") print ir }' "$dir/out.txt"
}

failed() {
  echo "bench/instructions.sh: the run of $1 on $2 failed:" >&2
  grep -v "^==" "$dir/out.txt" | tail -5 >&2
  exit 1
}

for dist in "$root/dist" ${base:+"$base"}; do
  for format in dump events; do
    empty=$(count "$dist" "$dir/empty.txt" "$format" 0)
    [ -n "$empty" ] || failed "$dist" "an empty file"
    full=$(count "$dist" "$dir/$format.txt" "$format" "$lines")
    [ -n "$full" ] || failed "$dist" "$format"
    echo "instructions: $format: $(((full - empty) / lines)) a line ($dist, $lines rich lines, startup excluded)"
  done
done
