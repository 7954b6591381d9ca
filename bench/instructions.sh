#!/bin/sh
# Instructions the byte parser runs a line, counted by valgrind (cachegrind) with V8 in one thread. Unlike time, which
# swings 25-40% from run to run on these shared machines, the count repeats within 0.2%: weigh a parser change by it,
# then confirm with `npm run bench`. The count includes compiling the parser (the same for both sides of a comparison).
#
#   bench/instructions.sh [BASE]    BASE: another build's dist directory (a copy of dist before the change), counted too
#
# Needs valgrind (apt-get install -y valgrind). About a minute for each build and format.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
lines=${INSTRUCTIONS_LINES:-200000}
cd "$root"
npm run -s build >/dev/null
npx tsc -p tsconfig.bench.json
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node bench/instructions-run.mjs corpus "$dir" "$lines"

count() {
  valgrind --tool=cachegrind --cache-sim=no --smc-check=all-non-file --cachegrind-out-file=/dev/null \
    node --single-threaded bench/instructions-run.mjs "$1" "$2" "$3" 2>&1 |
    awk '/I +refs/ { gsub(",", "", $NF); print $NF } /failed to parse/ { print "failed"; exit 1 }'
}

for dist in "$root/dist" ${1:+"$1"}; do
  for format in dump events; do
    empty=$(count "$dist" "$dir/empty.txt" "$format")
    full=$(count "$dist" "$dir/$format.txt" "$format")
    echo "instructions: $format: $(((full - empty) / lines)) a line ($dist, $lines rich lines, startup excluded)"
  done
done
