# Shared body of ci/tlc-placement.sh and ci/tlc-replication.sh: sourced (not run) by each of
# them after it has cd'd to the repository root and set, for its own spec:
#
#   tool                  script name without .sh: prefixes messages and the summary line
#   fixture_name          the fixtures live in spec/fixtures/$fixture_name
#   traces_module         the module the trace sets and state graphs are made from
#   sany_modules          modules SANY parses before the models run
#   models                "module configuration expected" lines (expected: pass, or the
#                         property TLC must violate); a configuration written "long:Name"
#                         runs only with TLC_LONG=1 (hosted CI): minutes on its own here
#   violation_exit_codes  exit codes TLC must also return when a violation is expected
#                         (empty: any exit code, the log alone decides)
#   trace_sets, graphs, sources   what make_fixtures makes and the files it comes from
#
# and then calls `tlc_main "$@"`.

# shellcheck source=ci/find-tlc.sh
. "$(dirname "${BASH_SOURCE[0]}")/find-tlc.sh"

tlc() { # tlc <directory to run in> <TLC arguments...>
  local directory=$1; shift
  (cd "$directory" && java -XX:+UseParallelGC -cp "$jar" tlc2.TLC -metadir "$(mktemp -d -p "$work")" -noGenerateSpecTE "$@")
}

tlc_version() {
  local banner
  banner=$(java -cp "$jar" tlc2.TLC 2>&1 | grep -m 1 '^TLC2 Version')
  echo "${banner:-TLC2 Version unknown}"
}

# ------------------------------------------------------------------------------------------
# Models.

sany() {
  local module status
  for module in "${sany_modules[@]}"; do
    (cd "$spec_dir" && java -cp "$jar" tla2sany.SANY -error-codes "$module.tla") > "$work/sany.log" 2>&1
    status=$?
    if [ "$status" -ne 0 ] || grep -qE '\*\*\* Errors|Semantic errors|Parse Error|Fatal errors' "$work/sany.log"; then
      cat "$work/sany.log"; echo "SANY $module: parse or semantic error"; return 1
    fi
    echo "SANY $module: ok"
  done
}

violation_exit_ok() { # violation_exit_ok <TLC exit code>: one of $violation_exit_codes, if any are set
  local code
  [ -z "${violation_exit_codes:-}" ] && return 0
  for code in $violation_exit_codes; do [ "$1" -eq "$code" ] && return 0; done
  return 1
}

check_models() {
  local passed=0 failed=0 line module config expected log run status started seconds states depth summary
  if sany; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  for line in "${models[@]}"; do
    read -r module config expected <<< "$line"
    if [[ "$config" == long:* ]]; then
      config=${config#long:}
      if [ "${TLC_LONG:-0}" != 1 ]; then echo "$config: SKIPPED (long model: set TLC_LONG=1)"; continue; fi
    fi
    log=$work/$config.log
    run=$work/run-$config; mkdir -p "$run/traces" # $traces_module writes traces/constants.json
    started=$(date +%s)
    tlc "$run" -workers "${TLC_WORKERS:-auto}" -config "$spec_dir/$config.cfg" "$spec_dir/$module.tla" > "$log" 2>&1
    status=$?
    seconds=$(($(date +%s) - started))
    states=$(grep -oE '[0-9]+ distinct states found' "$log" | tail -n 1 | grep -oE '^[0-9]+')
    depth=$(grep -oE 'depth of the complete state graph search is [0-9]+' "$log" | grep -oE '[0-9]+$')
    summary="${states:-?} distinct states, depth ${depth:-?}, ${seconds} s"
    if [ "$expected" = pass ]; then
      if [ "$status" -eq 0 ] && grep -q 'Model checking completed. No error has been found.' "$log"; then
        echo "$config: passed ($summary)"; passed=$((passed + 1))
      else
        grep -E '^Error|violated|is violated' "$log" | head -n 5
        echo "$config: FAILED, exit code $status ($summary); log follows"; tail -n 40 "$log"
        failed=$((failed + 1))
      fi
    else
      if violation_exit_ok "$status" && grep -qE "(Temporal property|Invariant|Action property) $expected (was|is) violated" "$log"; then
        echo "$config: passed, the expected violation of $expected was found ($summary)"; passed=$((passed + 1))
      else
        echo "$config: FAILED, TLC did not find the expected violation of $expected (exit code $status)"
        tail -n 40 "$log"; failed=$((failed + 1))
      fi
    fi
  done
  echo "$tool: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# ------------------------------------------------------------------------------------------
# Fixtures.

sha256_of() { tr -d '\r' < "$1" | sha256sum | cut -d ' ' -f 1; } # line endings do not count

json_string() { local text=$1; text=${text//\\/\\\\}; text=${text//\"/\\\"}; printf '"%s"' "$text"; }

constants_json() { # the CONSTANTS block of a .cfg as a JSON object of name: "value as written"
  local config=$1 first=1 line name value
  printf '{'
  while IFS= read -r line; do
    line=${line%%\\\**}
    if [[ $line =~ ^[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*(=|<-)[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]]; then
      name=${BASH_REMATCH[1]}; value=${BASH_REMATCH[3]}
      [ "${BASH_REMATCH[2]}" = "<-" ] && value="<- $value"
      [ $first -eq 1 ] || printf ', '
      printf '%s: %s' "$(json_string "$name")" "$(json_string "$value")"; first=0
    fi
  done < "$config"
  printf '}'
}

values_json() { # the constants as TLC evaluated them: traces/constants.json holds <<record>>
  local text
  text=$(tr -d '\n' < "$1/traces/constants.json")
  text=${text#[}; echo "${text%]}"
}

make_fixtures() { # make_fixtures <output directory>
  local out=$1 line config simulated kept least depth run number file lines count entries=() status
  mkdir -p "$out"
  rm -f "$out"/*.gz "$out"/manifest.json
  for line in "${trace_sets[@]}"; do
    read -r config simulated kept least depth <<< "$line"
    run=$work/$config; mkdir -p "$run/traces"
    tlc "$run" -workers 1 -simulate "num=$simulated" -depth "$depth" -seed $seed -fp $fingerprint_index \
      -config "$spec_dir/$config.cfg" "$spec_dir/$traces_module.tla" > "$run/tlc.log" 2>&1
    status=$?
    if [ "$status" -ne 0 ]; then tail -n 30 "$run/tlc.log"; echo "$config: simulation failed (exit code $status)"; return 1; fi
    count=0
    : > "$run/kept.ndjson"
    for number in $(seq 1 "$simulated"); do
      file=$run/traces/behaviour_$number.ndjson
      [ -f "$file" ] || continue
      lines=$(wc -l < "$file")
      if [ "$lines" -gt "$least" ] && [ "$count" -lt "$kept" ]; then
        cat "$file" >> "$run/kept.ndjson"; count=$((count + 1))
      fi
    done
    if [ "$count" -lt "$kept" ]; then echo "$config: only $count behaviours of depth $least or more"; return 1; fi
    gzip -9n < "$run/kept.ndjson" > "$out/$config.ndjson.gz"
    echo "$config: $count behaviours of depth $least to $depth"
    entries+=("{\"file\": \"$config.ndjson.gz\", \"kind\": \"traces\", \"module\": \"$traces_module\", \"config\": \"$config.cfg\", \"behaviours\": $count, \"least_depth\": $least, \"simulation_depth\": $depth, \"constants\": $(constants_json "$spec_dir/$config.cfg"), \"values\": $(values_json "$run")}")
  done
  for config in "${graphs[@]}"; do
    run=$work/$config; mkdir -p "$run/traces"
    tlc "$run" -workers 1 -seed $seed -fp $fingerprint_index -dump dot,actionlabels "$run/graph.dot" \
      -config "$spec_dir/$config.cfg" "$spec_dir/$traces_module.tla" > "$run/tlc.log" 2>&1
    status=$?
    if [ "$status" -ne 0 ]; then tail -n 30 "$run/tlc.log"; echo "$config: model checking failed (exit code $status)"; return 1; fi
    # The tooltips repeat the labels word for word: dropped to halve the file.
    sed -E 's/,tooltip="([^"\\]|\\.)*"//' "$run/graph.dot" | gzip -9n > "$out/$config.dot.gz"
    count=$(grep -oE '[0-9]+ distinct states found' "$run/tlc.log" | tail -n 1 | grep -oE '^[0-9]+')
    echo "$config: state graph of $count states"
    entries+=("{\"file\": \"$config.dot.gz\", \"kind\": \"graph\", \"module\": \"$traces_module\", \"config\": \"$config.cfg\", \"states\": $count, \"constants\": $(constants_json "$spec_dir/$config.cfg"), \"values\": $(values_json "$run")}")
  done
  {
    echo "{"
    echo "  \"generator\": \"ci/$tool.sh --fixtures\","
    echo "  \"tlc\": $(json_string "$(tlc_version)"),"
    echo "  \"seed\": $seed,"
    echo "  \"fingerprint_index\": $fingerprint_index,"
    echo "  \"workers\": 1,"
    echo "  \"sources\": {"
    local i
    for i in "${!sources[@]}"; do
      printf '    "spec/%s": "%s"%s\n' "${sources[$i]}" "$(sha256_of "$spec_dir/${sources[$i]}")" "$([ "$i" -lt $((${#sources[@]} - 1)) ] && echo ,)"
    done
    echo "  },"
    echo "  \"fixtures\": ["
    for i in "${!entries[@]}"; do
      printf '    %s%s\n' "${entries[$i]}" "$([ "$i" -lt $((${#entries[@]} - 1)) ] && echo ,)"
    done
    echo "  ]"
    echo "}"
  } > "$out/manifest.json"
}

without_tlc_line() { grep -v '^  "tlc": ' "$1"; } # a manifest less the line naming the TLC build

check_fixtures() { # regenerates the fixtures into $work and compares them with the committed ones
  # Strict on every byte but the manifest's "tlc" line: that line names the TLC build (its date
  # stamp and revision) for information only, so a jar built from the same tlaplus source with
  # another stamp passes, and anything TLC really does differently still fails.
  local different file name committed_tlc this_tlc
  make_fixtures "$work/fixtures" || { echo "$tool: 0 passed, 1 failed"; exit 1; }
  different=0
  for file in "$work/fixtures"/*; do
    name=$(basename "$file")
    if [ ! -f "$fixture_dir/$name" ]; then echo "missing committed fixture: $name"; different=1
    elif [ "$name" = manifest.json ]; then
      if ! cmp -s <(without_tlc_line "$file") <(without_tlc_line "$fixture_dir/$name"); then
        echo "fixture differs from a fresh TLC run: $name"; different=1
        diff <(without_tlc_line "$fixture_dir/$name") <(without_tlc_line "$file") | head -n 20
      fi
    elif ! cmp -s "$file" "$fixture_dir/$name"; then
      echo "fixture differs from a fresh TLC run: $name"; different=1
      case $name in
        *.gz) diff <(gzip -dc "$fixture_dir/$name") <(gzip -dc "$file") | head -n 20 ;;
        *) diff "$fixture_dir/$name" "$file" | head -n 20 ;;
      esac
    fi
  done
  for file in "$fixture_dir"/*; do
    [ -f "$work/fixtures/$(basename "$file")" ] || { echo "committed fixture no longer made: $(basename "$file")"; different=1; }
  done
  committed_tlc=$(grep -m 1 '^  "tlc": ' "$fixture_dir/manifest.json" 2>/dev/null | sed -E 's/^  "tlc": "(.*)",?$/\1/')
  this_tlc=$(tlc_version)
  if [ "$committed_tlc" != "$this_tlc" ]; then
    echo "(committed fixtures made by $committed_tlc, these by $this_tlc: that line is not compared)"
  fi
  if [ "$different" -eq 0 ]; then echo "fixtures are fresh"; echo "$tool: 1 passed, 0 failed"
  else
    [ "${committed_tlc##*(rev: }" != "${this_tlc##*(rev: }" ] && echo "(a TLC of another revision can number states or simulate differently)"
    echo "run: bash ci/$tool.sh --fixtures"; echo "$tool: 0 passed, 1 failed"; exit 1
  fi
}

# ------------------------------------------------------------------------------------------

tlc_main() { # tlc_main [--fixtures | --check]
  mode=models
  case "${1:-}" in
    "") ;;
    --fixtures) mode=fixtures ;;
    --check) mode=check ;;
    *) echo "usage: $0 [--fixtures | --check]" >&2; exit 2 ;;
  esac

  jar=$(find_jar)
  if [ -z "$jar" ] || ! command -v java > /dev/null; then
    echo "TLC not found: model checking SKIPPED"
    [ "$mode" = fixtures ] && exit 1
    exit 0
  fi

  spec_dir=$(pwd)/spec
  fixture_dir=$spec_dir/fixtures/$fixture_name
  seed=1
  fingerprint_index=1
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT

  case $mode in
    models) check_models ;;
    fixtures)
      make_fixtures "$fixture_dir" || { echo "$tool: fixtures FAILED"; exit 1; }
      du -b "$fixture_dir"/* | awk '{ printf "%10d bytes  %s\n", $1, $2 }'
      echo "$tool: fixtures written to spec/fixtures/$fixture_name" ;;
    check) check_fixtures ;;
  esac
}
