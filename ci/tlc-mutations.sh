#!/usr/bin/env bash
# The spec-side twin of the code mutation tests: applies each deliberate bug listed in
# spec/mutations/*.mutations to a copy of spec/ and requires TLC to report the property the
# mutation names as violated.  A mutation that no model notices means a property or a model
# is missing; this script keeps it from coming back unnoticed.
#
# Format of spec/mutations/<Name>.mutations (the text is replaced in spec/<Name>.tla):
#
#   === <short-name>
#   why: <one line: the bug>
#   model: <Module> <Config>      TLC model: spec/<Module>.tla with spec/<Config>.cfg
#   catches: <Property>           the invariant or property TLC must report violated
#                                 ("A | B": either, when several workers may meet either first)
#   long: yes                     optional: runs only with TLC_LONG=1 (minutes on its own)
#   timeout: <seconds>            optional: this mutation's time limit (default below)
#   options: <TLC options>        optional: extra TLC options, e.g. -deadlock
#   --- before
#   <exact lines of spec/<Name>.tla, occurring exactly once in it>
#   --- after
#   <the replacement lines (none: the lines are deleted)>
#
# Lines before the first "===" and "#" lines among the fields are comments, and so are the
# blank and "#" lines that end a before/after block (the spacing and comments between entries).  A mutation PASSES only when TLC exits with 12
# (invariant) or 13 (temporal or action property) and names that property as violated.  It
# FAILS when its before text is not found exactly once (the spec moved on: update the
# mutation), when the model holds, when another property is violated, or on any error or
# time-out; the line says which.  Last line: "tlc-mutations: N passed, N failed".
#
# TLC_WORKERS (default 2), TLC_LONG=1 (also the long mutations), TLC_MUTATION_TIMEOUT
# (seconds per mutation, default 300), TLC_MUTATIONS=<name,name> (run only those).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPEC="$ROOT/spec"

# shellcheck source=ci/find-tlc.sh
. "$(dirname "${BASH_SOURCE[0]}")/find-tlc.sh"

JAR=$(find_jar)
if [[ -z "$JAR" ]]; then
  echo "TLC not found: model checking SKIPPED"
  exit 0
fi

WORKERS="${TLC_WORKERS:-2}"
DEFAULT_TIMEOUT="${TLC_MUTATION_TIMEOUT:-300}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

# Splits one .mutations file into $2/<n>.fields ("key<TAB>value" lines), <n>.before and
# <n>.after, one set per mutation, numbered from 1.  A line among the fields that is not
# "key: value", a comment or blank is recorded as key "bad" so that the mutation fails.
split_mutations() { # <file> <directory>
  awk -v out="$2" '
    function file(suffix) { return out "/" n "." suffix }
    function closeall() { if (n > 0) { close(file("fields")); close(file("before")); close(file("after")) } }
    /^=== / { closeall(); n++; section = "fields"; held = ""
              name = substr($0, 5); gsub(/^[ \t]+|[ \t]+$/, "", name)
              print "name\t" name > file("fields"); printf "" > file("before"); printf "" > file("after"); next }
    n == 0 { next }
    section == "fields" && /^--- before[ \t]*$/ { section = "before"; next }
    section == "before" && /^--- after[ \t]*$/ { section = "after"; held = ""; next }
    section == "fields" {
      if ($0 ~ /^[ \t]*(#.*)?$/) next
      if ($0 ~ /^[a-z]+:/) { key = $0; sub(/:.*/, "", key); value = $0; sub(/^[a-z]+:[ \t]*/, "", value)
                             sub(/[ \t]+$/, "", value); print key "\t" value > file("fields") }
      else print "bad\t" $0 > file("fields")
      next }
    # A block ends at the next "===": its trailing blank and "#" lines are the comments
    # and spacing between entries, not spec text, so they are held back until a line of
    # text follows them in the same block.
    /^[ \t]*(#.*)?$/ { held = held $0 "\n"; next }
    { printf "%s", held > file(section); held = ""; print > file(section) }
    END { closeall() }' "$1"
}

field() { # <fields file> <key>: the value, empty if absent
  awk -F '\t' -v key="$2" '$1 == key { sub(/^[^\t]*\t/, ""); print; exit }' "$1"
}

# Replaces the before text by the after text in <target>, in place.  The before text must
# be whole lines and occur exactly once.  Exit 0 done, 2 not found, 3 found more than once.
apply_mutation() { # <before file> <after file> <target file>
  awk -v before_file="$1" -v after_file="$2" '
    function slurp(path,   text, line) {
      text = ""
      while ((getline line < path) > 0) text = text line "\n"
      close(path)
      return text }
    function chomp(text) { while (text ~ /\n\n$/) text = substr(text, 1, length(text) - 1); return text }
    { spec = spec $0 "\n" }
    END {
      before = chomp(slurp(before_file)); after = chomp(slurp(after_file))
      if (before == "" || before == "\n") exit 2
      # Match whole lines: the text, with a newline in front, must follow a newline.
      text = "\n" spec; needle = "\n" before
      first = index(text, needle)
      if (first == 0) exit 2
      if (index(substr(text, first + 1), needle) > 0) exit 3
      printf "%s", substr(text, 2, first - 1) after substr(text, first + length(needle)) > FILENAME ".new" }' "$3" \
  && mv "$3.new" "$3"
}

fail() { failed=$((failed + 1)); printf '  FAIL  %-34s %-40s %8s  %s\n' "$name" "$label" "$1" "$2"; }

printf '        %-34s %-40s %8s  %s\n' mutation model seconds result
for mutations in "$SPEC"/mutations/*.mutations; do
  [[ -f "$mutations" ]] || continue
  target_name=$(basename "$mutations" .mutations)
  if [[ ! -f "$SPEC/$target_name.tla" ]]; then
    name=$(basename "$mutations"); label=-
    fail - "no spec/$target_name.tla for these mutations"
    continue
  fi
  split_dir="$WORK/split-$target_name"
  mkdir -p "$split_dir"
  split_mutations "$mutations" "$split_dir"
  number=0
  while [[ -f "$split_dir/$((number + 1)).fields" ]]; do
    number=$((number + 1)); fields="$split_dir/$number.fields"
    name=$(field "$fields" name)
    module_config=$(field "$fields" model)
    property=$(field "$fields" catches)
    read -r module config <<<"$module_config"
    label="${module:-?} ${config:-?}"
    if [[ -n "${TLC_MUTATIONS:-}" && ",$TLC_MUTATIONS," != *",$name,"* ]]; then continue; fi
    if grep -q '^bad' "$fields" || [[ -z "$module" || -z "$config" || -z "$property" ]]; then
      fail - "malformed entry in $(basename "$mutations") (needs model: <Module> <Config> and catches: <Property>)"
      grep '^bad' "$fields" | cut -f2- | sed 's/^/        not a field: /'
      continue
    fi
    if [[ "$(field "$fields" long)" == yes && "${TLC_LONG:-0}" != 1 ]]; then
      printf '  SKIP  %-34s %-40s %8s  %s\n' "$name" "$label" - "long mutation: set TLC_LONG=1"
      continue
    fi
    # A fresh copy of spec/ per mutation: the mutated file and TLC's states stay private.
    copy="$WORK/spec-$target_name-$number"
    cp -r "$SPEC" "$copy"
    rm -rf "$copy/fixtures" "$copy/traces"
    apply_mutation "$split_dir/$number.before" "$split_dir/$number.after" "$copy/$target_name.tla"
    case $? in
      0) ;;
      2) fail - "before text not found in spec/$target_name.tla: the spec moved on, update the mutation"
         rm -rf "$copy"; continue ;;
      3) fail - "before text occurs more than once in spec/$target_name.tla: make it unique"
         rm -rf "$copy"; continue ;;
      *) fail - "could not apply the mutation to spec/$target_name.tla"; rm -rf "$copy"; continue ;;
    esac
    limit=$(field "$fields" timeout); limit=${limit:-$DEFAULT_TIMEOUT}
    # shellcheck disable=SC2206
    extra=($(field "$fields" options))
    started=$(date +%s.%N)
    output=$(cd "$copy" && timeout "$limit" java -XX:+UseParallelGC -Xss4m -cp "$JAR" tlc2.TLC \
               -workers "$WORKERS" -config "$config.cfg" -metadir "$copy/states" -noGenerateSpecTE \
               "${extra[@]}" "$module.tla" 2>&1)
    status=$?
    seconds=$(printf '%.1f' "$(echo "$(date +%s.%N) - $started" | bc)")
    rm -rf "$copy"
    violated=$(grep -oE '(Temporal property|Invariant|Action property) [A-Za-z0-9_]+ (was|is) violated|Deadlock reached' <<<"$output" | head -1)
    # "A | B": either property catches it (with several workers TLC reports whichever it meets first).
    caught="(${property// | /|})"
    if [[ ($status -eq 12 || $status -eq 13) ]] && grep -qE "(Temporal property|Invariant|Action property) $caught (was|is) violated" <<<"$output"; then
      passed=$((passed + 1))
      printf '  PASS  %-34s %-40s %8s  %s\n' "$name" "$label" "$seconds" "caught: $property violated"
    elif [[ $status -eq 124 ]]; then
      fail "$seconds" "TIME-OUT after $limit s: $property not reported violated"
    elif [[ $status -eq 0 ]]; then
      fail "$seconds" "NOT CAUGHT: the model holds with the mutation (expected $property violated)"
    elif [[ -n "$violated" ]]; then
      fail "$seconds" "WRONG PROPERTY: $violated (exit $status), expected $property"
    else
      fail "$seconds" "TLC ERROR (exit $status), expected $property violated"
      grep -vE '^(Parsing|Semantic processing|Linting|Progress|Starting|Finished)' <<<"$output" | tail -15 | sed 's/^/        /'
    fi
  done
done

echo "tlc-mutations: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
