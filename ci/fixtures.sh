#!/usr/bin/env bash
# Regenerates the conformance fixtures under spec/ with TLC, reproducibly (one worker,
# fixed seed, fixed fingerprint function):
#   spec/fixtures/graphs/<Name>.txt   whole state graphs (from spec/fixtures/configs/Graph*.cfg)
#   spec/traces/<Name>/*.ndjson       simulated behaviours (from spec/fixtures/configs/Traces*.cfg)
#   spec/fixtures/manifest.json       SHA-256 of every spec and config file used, the TLC
#                                     version line (information only: never compared), the
#                                     seed and fingerprint, the constants
#
#   ci/fixtures.sh          regenerate in place (then commit the result)
#   ci/fixtures.sh --check  regenerate into a temporary directory and compare with the
#                           committed fixtures, every byte but the manifest's "tlc" line (the
#                           TLC build stamp): exit 0 identical, 1 different, 3 skipped (no TLC)
#
# Graph file format, one line each:  S <state number> <state, TLA+ text on one line>
#                                    I <state number>   (an initial state)
#                                    E <from> <to> <action label with parameters>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPEC="$ROOT/spec"
SEED=20260425
FINGERPRINT=7
TRACE_BEHAVIOURS=80      # per trace configuration
TRACE_DEPTH=50           # TLC may end a behaviour early when it closes a cycle
TRACE_MINIMUM_STATES=31  # shorter behaviours (fewer than 30 steps) are not kept
SPEC_FILES=(FailureDetector.tla LCR.tla FormalChat.tla MCFormalChatTraces.tla)

mode=generate
[[ "${1:-}" == "--check" ]] && mode=check

# shellcheck source=ci/find-tlc.sh
. "$(dirname "${BASH_SOURCE[0]}")/find-tlc.sh"
JAR=$(find_jar || true)
if [[ -z "$JAR" ]]; then
  echo "TLC not found: fixture regeneration SKIPPED"
  exit 3
fi
# TLC prints its version line first on every run; a run on a module that is not there is quickest.
VERSION=$(cd "$(mktemp -d)" && java -cp "$JAR" tlc2.TLC -metadir ./meta NoSuchModule 2>&1 | grep -m1 -o 'TLC2 Version.*' || true)

if [[ "$mode" == check ]]; then
  committed=$(grep -o '"tlc": *"[^"]*"' "$SPEC/fixtures/manifest.json" 2>/dev/null | sed 's/.*: *"//; s/"$//' || true)
  if [[ "$committed" != "$VERSION" ]]; then
    echo "fixtures: committed ones made by '$committed', these by '$VERSION' (that line is not compared)"
  fi
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
else
  OUT="$SPEC"
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK" ${OUT:+$([[ $mode == check ]] && echo "$OUT")}' EXIT

tlc() {  # tlc <run directory> <module> <config> <options...>
  local directory="$1" module="$2" config="$3"; shift 3
  (cd "$directory" && java -XX:+UseParallelGC -cp "$JAR" tlc2.TLC -workers 1 -seed "$SEED" -fp "$FINGERPRINT" \
      -metadir "$WORK/meta" -noGenerateSpecTE -cleanup -config "$config" "$@" "$SPEC/$module.tla") \
    >"$WORK/tlc.out" 2>&1 || { cat "$WORK/tlc.out" >&2; echo "fixtures: TLC failed on $config" >&2; return 1; }
  rm -rf "$WORK/meta"
}

# DOT (node ids are fingerprints) -> numbered states and labelled edges, one per line.
dot_to_graph() {
  sed -n -e 's/^\(-\{0,1\}[0-9][0-9]*\) -> \(-\{0,1\}[0-9][0-9]*\) \[label="\(.*\)",color=.*$/E \1 \2 \3/p' \
         -e 's/^\(-\{0,1\}[0-9][0-9]*\) \[label="\(.*\)",tooltip=.*$/S \1 \2/p' \
         -e 's/^\(-\{0,1\}[0-9][0-9]*\) \[label="\(.*\)",style = filled\]$/I \1 \2/p' "$1" |
    sed -e 's/\\\\/\x01/g' -e 's/\\n/ /g' -e 's/\\"/"/g' -e 's/\x01/\\/g' |
    awk '
      function number(fingerprint) {
        if (!(fingerprint in numbers)) numbers[fingerprint] = count++
        return numbers[fingerprint]
      }
      $1 == "S" || $1 == "I" {
        kind = $1; id = number($2); $1 = ""; $2 = ""; sub(/^  /, "")
        print "S " id " " $0
        if (kind == "I") print "I " id
        next
      }
      $1 == "E" { from = number($2); to = number($3); $1 = ""; $2 = ""; $3 = ""; sub(/^   /, ""); print "E " from " " to " " $0 }'
}

mkdir -p "$OUT/fixtures/graphs" "$OUT/traces"
rm -f "$OUT"/fixtures/graphs/*.txt
constants_json=""
for config in "$SPEC"/fixtures/configs/*.cfg; do
  name=$(basename "$config" .cfg)
  case "$name" in
    Graph*)
      tlc "$WORK" FormalChat "$config" -dump dot,actionlabels "$WORK/$name.dot"
      dot_to_graph "$WORK/$name.dot" >"$OUT/fixtures/graphs/$name.txt"
      rm -f "$WORK/$name.dot"
      echo "fixtures: $name: $(grep -c '^S' "$OUT/fixtures/graphs/$name.txt") states, $(grep -c '^E' "$OUT/fixtures/graphs/$name.txt") edges"
      ;;
    Traces*)
      rm -rf "${OUT:?}/traces/$name"; mkdir -p "$OUT/traces/$name"
      tlc "$OUT/traces/$name" MCFormalChatTraces "$config" -simulate "num=$TRACE_BEHAVIOURS" -depth "$TRACE_DEPTH"
      for behaviour in "$OUT/traces/$name"/*.ndjson; do
        if [[ $(wc -l <"$behaviour") -lt $TRACE_MINIMUM_STATES ]]; then rm "$behaviour"; fi
      done
      echo "fixtures: $name: $(ls "$OUT/traces/$name" | wc -l) behaviours of at least $((TRACE_MINIMUM_STATES - 1)) steps"
      ;;
  esac
  constants=$(sed -n '/^CONSTANTS/,/^[A-Z]/p' "$config" | grep -E '^ +[A-Za-z]+ *=' | awk '
      { name = $1; sub(/^ +[A-Za-z]+ *= */, ""); gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); parts[n++] = "\"" name "\": \"" $0 "\"" }
      END { for (k = 0; k < n; k++) printf "%s%s", (k ? ", " : ""), parts[k] }')
  constants_json+="${constants_json:+,
}    \"$name\": { $constants }"
done

sha() { sha256sum "$1" | cut -d' ' -f1; }
{
  echo "{"
  echo "  \"tlc\": \"$VERSION\","
  echo "  \"seed\": $SEED,"
  echo "  \"fingerprint\": $FINGERPRINT,"
  echo "  \"traceBehaviours\": $TRACE_BEHAVIOURS,"
  echo "  \"traceDepth\": $TRACE_DEPTH,"
  echo "  \"traceMinimumStates\": $TRACE_MINIMUM_STATES,"
  echo "  \"files\": {"
  files=("${SPEC_FILES[@]}")
  for config in "$SPEC"/fixtures/configs/*.cfg; do files+=("fixtures/configs/$(basename "$config")"); done
  for index in "${!files[@]}"; do
    separator=","; [[ $index -eq $((${#files[@]} - 1)) ]] && separator=""
    echo "    \"spec/${files[$index]}\": \"$(sha "$SPEC/${files[$index]}")\"$separator"
  done
  echo "  },"
  echo "  \"constants\": {"
  echo "$constants_json"
  echo "  }"
  echo "}"
} >"$OUT/fixtures/manifest.json"

if [[ "$mode" == check ]]; then
  # Every byte of the fixtures and the manifest is compared except the "tlc" line, which names
  # the TLC build (a jar of the same tlaplus source with another build stamp must pass).
  without_tlc_line() { grep -v '^  "tlc": ' "$1" || true; }
  if diff -rq "$SPEC/fixtures/graphs" "$OUT/fixtures/graphs" >/dev/null &&
     diff -rq "$SPEC/traces" "$OUT/traces" >/dev/null &&
     diff -q <(without_tlc_line "$SPEC/fixtures/manifest.json") <(without_tlc_line "$OUT/fixtures/manifest.json") >/dev/null; then
    echo "fixtures: regenerated, identical to the committed ones"
  else
    echo "fixtures: regenerated fixtures DIFFER from the committed ones:"
    diff -rq "$SPEC/fixtures/graphs" "$OUT/fixtures/graphs" | head -5 || true
    diff -rq "$SPEC/traces" "$OUT/traces" | head -5 || true
    diff <(without_tlc_line "$SPEC/fixtures/manifest.json") <(without_tlc_line "$OUT/fixtures/manifest.json") | head -10 || true
    [[ "${committed##*(rev: }" != "${VERSION##*(rev: }" ]] && echo "fixtures: (a TLC of another revision can number states or simulate differently)"
    exit 1
  fi
fi
