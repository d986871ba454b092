#!/usr/bin/env bash
# Model-checks spec/ with TLC: parses every module with SANY, runs every model in MODELS
# below, and checks that each expected violation is still found.  Prints, per model, the
# distinct states, the depth and the seconds, and a last line "tlc: N passed, N failed"
# (a parsed module, a model and the fixture check each count as one test).
#
# Finding tla2tools.jar: $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar,
# ~/.cache/tlaplus/tla2tools.jar (nothing is downloaded: the jar is built from tlaplus/tlaplus
# at the commit spec/README.md, "Running TLC", names).  Without a jar this prints
# "TLC not found: model checking SKIPPED" and exits 0.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPEC="$ROOT/spec"

# name | module | config | mode | expectation | extra TLC options
#   A name starting with "long:" runs only with TLC_LONG=1 (the hosted CI sets it): it takes
#   minutes on its own and would push this script past its budget on a 2-core machine.
#   mode: check (exhaustive BFS) or simulate:<num>:<depth>
#   expectation: holds, or violates:<Property> (TLC must find that violation: an expected
#   counterexample that spec/README.md explains, or a witness: a deliberately false invariant
#   showing that the model reaches the states a property is about), or known-bug:<Property> (the same check,
#   for a violation caused by a bug in Protocol.FSharp that the spec mirrors and that is not
#   fixed yet: reported as KNOWN BUG; turn it into "holds" with the fix)
MODELS=(
  "FailureDetector3      |FailureDetector   |MCFailureDetector3.cfg      |check           |holds"
  "FailureDetectorLossy3 |FailureDetector   |MCFailureDetectorLossy3.cfg |check           |violates:Accuracy"
  "FailureDetectorRejoin3|MCFailureDetector |MCFailureDetectorRejoin3.cfg|check           |violates:NeverTrustedAgain"
  "LCR3                  |LCR               |MCLCR3.cfg                  |check           |holds|-deadlock"
  "LCR4                  |LCR               |MCLCR4.cfg                  |check           |holds|-deadlock"
  "LCR5                  |LCR               |MCLCR5.cfg                  |check           |holds|-deadlock"
  "LCR4Mixed             |MCLCR             |MCLCR4Mixed.cfg             |check           |holds"
  "LCR5Mixed             |MCLCR             |MCLCR5Mixed.cfg             |check           |holds"
  "LCR5Reversed          |MCLCR             |MCLCR5Reversed.cfg          |check           |holds"
  "LCR5Tight             |MCLCR             |MCLCR5Tight.cfg             |check           |violates:MessagesBelowBound"
  "FormalChatSync3       |MCFormalChat      |MCFormalChatSync3.cfg       |check           |holds"
  "long:FormalChatSync4  |MCFormalChat      |MCFormalChatSync4.cfg       |check           |holds"
  "FormalChatLive3       |FormalChat        |MCFormalChatLive3.cfg       |check           |holds"
  "long:FormalChatLive3Epoch2 |FormalChat   |MCFormalChatLive3Epoch2.cfg |check           |holds"
  "FormalChatRecovery3   |MCFormalChatLive  |MCFormalChatRecovery3.cfg   |check           |holds"
  "FormalChatRecovered3  |MCFormalChatLive  |MCFormalChatRecovered3.cfg  |check           |violates:NoRecoveryAfterLeaderDeath"
  "FormalChatTwoLeaders3 |FormalChat        |MCFormalChatTwoLeaders3.cfg |check           |violates:UniqueLeaderPerEpoch"
  "FormalChatLossy3      |FormalChat        |MCFormalChatLossy3.cfg      |check           |violates:Accuracy"
  "FormalChatSim6        |MCFormalChat      |MCFormalChatSim6.cfg        |simulate:300:60 |holds"
)

# shellcheck source=ci/find-tlc.sh
. "$(dirname "${BASH_SOURCE[0]}")/find-tlc.sh"

JAR=$(find_jar)
if [[ -z "$JAR" ]]; then
  echo "TLC not found: model checking SKIPPED"
  exit 0
fi

JAVA_OPTIONS=(-XX:+UseParallelGC -Xss4m)
WORKERS="${TLC_WORKERS:-2}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); printf '  PASS  %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL  %s\n' "$*"; }
trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; echo "${s%"${s##*[![:space:]]}"}"; }

VERSION=$(cd "$WORK" && java -cp "$JAR" tlc2.TLC -metadir "$WORK/version" NoSuchModule 2>&1 | grep -m1 -o 'TLC2 Version.*')
echo "tlc: ${VERSION:-unknown version} ($JAR)"

# 1. SANY on every module.
cd "$SPEC" || exit 1
for module in *.tla; do
  output=$(java "${JAVA_OPTIONS[@]}" -cp "$JAR" tla2sany.SANY "$module" 2>&1)
  status=$?
  if [[ $status -ne 0 ]] || grep -qE '\*\*\* Errors|Fatal errors|Parse Error|Lexical error' <<<"$output"; then
    fail "sany $module"
    echo "$output" | grep -vE '^(Parsing|Semantic processing|Linting)' | sed 's/^/        /'
  else
    pass "sany $module"
  fi
done

# 2. Every model.
printf '%-22s %-12s %12s %6s %8s  %s\n' model mode distinct depth seconds result
for row in "${MODELS[@]}"; do
  IFS='|' read -r name module config mode expect extra <<<"$row"
  name=$(trim "$name"); module=$(trim "$module"); config=$(trim "$config")
  if [[ "$name" == long:* ]]; then
    name="${name#long:}"
    if [[ "${TLC_LONG:-0}" != "1" ]]; then
      printf '  SKIP  %-22s (long model: set TLC_LONG=1)\n' "$name"
      continue
    fi
  fi
  mode=$(trim "$mode"); expect=$(trim "$expect"); extra=$(trim "${extra:-}")
  metadir="$WORK/$name"
  options=(-config "$config" -metadir "$metadir" -noGenerateSpecTE -cleanup)
  if [[ "$mode" == simulate:* ]]; then
    IFS=':' read -r _ num depth <<<"$mode"
    options+=(-simulate "num=$num" -depth "$depth" -seed 1 -workers 1)
  else
    options+=(-workers "$WORKERS")
  fi
  # shellcheck disable=SC2206
  [[ -n "$extra" ]] && options+=($extra)
  started=$(date +%s.%N)
  output=$(java "${JAVA_OPTIONS[@]}" -cp "$JAR" tlc2.TLC "${options[@]}" "$module.tla" 2>&1)
  status=$?
  seconds=$(echo "$(date +%s.%N) - $started" | bc)
  distinct=$(grep -oE '[0-9]+ distinct states found' <<<"$output" | tail -1 | cut -d' ' -f1)
  [[ -z "$distinct" ]] && distinct=$(grep -oE 'The number of states generated: [0-9]+' <<<"$output" | tail -1 | grep -oE '[0-9]+$')
  depth=$(grep -oE 'depth of the complete state graph search is [0-9]+' <<<"$output" | grep -oE '[0-9]+$')
  [[ -z "$depth" ]] && depth=$(grep -oE 'The maximum length of traces generated: [0-9]+' <<<"$output" | grep -oE '[0-9]+$')
  violated=$(grep -oE '(Invariant|[Pp]roperty) [A-Za-z0-9_]+ (is|was) violated|Deadlock reached' <<<"$output" | head -1)
  if [[ "$expect" == holds ]]; then
    if [[ $status -eq 0 ]]; then result="holds"; else result="UNEXPECTED: ${violated:-exit $status}"; fi
  else
    property="${expect#*:}"
    if [[ $status -eq 12 || $status -eq 13 ]] && grep -qE "(Invariant|[Pp]roperty) $property (is|was) violated" <<<"$output"; then
      if [[ "$expect" == known-bug:* ]]; then
        result="violates $property (expected: KNOWN BUG, see spec/README.md)"
      else
        result="violates $property (expected)"
      fi
    else
      result="EXPECTED VIOLATION OF $property NOT FOUND (exit $status${violated:+, $violated})"
    fi
  fi
  line=$(printf '%-22s %-12s %12s %6s %8.1f  %s' "$name" "${mode%%:*}" "${distinct:--}" "${depth:--}" "$seconds" "$result")
  if [[ "$result" == holds || "$result" == *"(expected"* ]]; then
    pass "$line"
  else
    fail "$line"
    echo "$output" | grep -vE '^(Parsing|Semantic processing|Linting|Progress)' | tail -40 | sed 's/^/        /'
  fi
done

# 3. The conformance fixtures are what this TLC makes from this spec.
fixture_check=$("$ROOT/ci/fixtures.sh" --check 2>&1)
fixture_status=$?
echo "$fixture_check" | sed 's/^/  /'
case $fixture_status in
  0) pass "fixtures: regenerated and identical to spec/fixtures" ;;
  3) echo "  SKIP  fixtures: no TLC for the regeneration check" ;;
  *) fail "fixtures: differ from spec/fixtures (run ci/fixtures.sh and commit)" ;;
esac

echo "tlc: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
