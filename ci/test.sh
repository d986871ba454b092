#!/usr/bin/env bash
# Runs every test FormalChat has: the TLC model checks (skipped with a notice where no
# tla2tools.jar is found), the F# protocol tests (Expecto) and the C# loopback tests (xunit).
# Ends with one line `N passed, N failed, N skipped` summed over all suites, and exits non-zero
# on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
passed=0; failed=0; skipped=0; broken=0
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

add_counts() { # file with "N passed, N failed[, N skipped]" lines
  local line
  line=$(grep -E '^[a-z-]*:? ?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  [ -n "$line" ] || return 1
  passed=$((passed + $(sed -E 's/^[^0-9]*([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
  if grep -q skipped <<<"$line"; then skipped=$((skipped + $(sed -E 's/.* ([0-9]+) skipped.*/\1/' <<<"$line"))); fi
}

# The dashboard test drives Debian's Chromium (Playwright's own browser download cannot work
# here), the IRC test a real irssi in tmux. Installed in the background while the build and the
# model checks run; a test whose program is missing is skipped with a message.
package_install=""
missing=$(for program in chromium irssi tmux; do command -v "$program" > /dev/null || echo "$program"; done)
if [ -n "$missing" ] && command -v apt-get > /dev/null && [ "$(id -u)" -eq 0 ]; then
  # shellcheck disable=SC2086
  ( (apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq $missing) > "$log_dir/packages.log" 2>&1 ) &
  package_install=$!
fi

echo "== build"
if ! dotnet build FormalChat.sln -c Release -v quiet -nologo 2>&1 | tee "$log_dir/build.log" | grep -E 'error|Warn|Build succeeded'; then :; fi
if ! grep -q 'Build succeeded' "$log_dir/build.log" || grep -qE ' error ' "$log_dir/build.log"; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi

# TLC: SANY, every model of ci/tlc-models.fsx, the conformance fixtures (regenerated and
# compared, and fresh by their sources' hashes) and the spec mutations, through the one runner.
# It runs beside the .NET suites at the lowest CPU priority: the loopback tests mostly wait on
# the network and timers, so TLC takes the cycles they leave, and they still get the CPU at once
# when they need it (their nodes' heartbeats must not be starved). Its output is shown after them.
echo "== TLA+ model checking: ci/tlc.sh (in the background, lowest priority; its output follows the .NET suites)"
nice -n 19 bash ci/tlc.sh > "$log_dir/tlc.log" 2>&1 &
tlc_job=$!

# The F# protocol tests are an Expecto console program. Its closing line
#   EXPECTO! N tests run in … – N passed, N ignored, N failed, N errored. Success!
# is added to the totals, errored as failed and ignored as skipped; each failing test is printed
# with its message (Expecto's ERR entries).
echo "== tests/Protocol.Tests"
dotnet run --project tests/Protocol.Tests -c Release --no-build -- --colours 0 --no-spinner --fail-on-focused-tests \
  > "$log_dir/expecto.log" 2>&1
status=$?
sed -i -E 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$log_dir/expecto.log"
# An entry `[hh:mm:ss ERR] <test> failed in …` ends with ` <Expecto>` after the message;
# `… errored in … <Expecto>` is followed by the exception and its stack trace.
awk '
  /^\[[0-9:]+ [A-Z]+\]/ { show = ($2 == "ERR]"); errored = / <Expecto>$/; trace = 0; lines = 0
                          if (show) print; next }
  !show || /^Ok, passed [0-9]+ tests\.$/ { next }
  errored && /^   at / { trace = 1 }
  errored && trace && !/^   at / { show = 0; next }
  lines++ < 60 { print }
  !errored && / <Expecto>$/ { show = 0 }' "$log_dir/expecto.log" | head -300
summary=$(grep -a -E 'EXPECTO! [0-9,]+ tests run' "$log_dir/expecto.log" | tail -n 1)
count() { sed -E "s/.* ([0-9,]+) $1.*/\1/; s/,//g" <<<"$summary"; }
if [ -n "$summary" ]; then
  echo "${summary% <Expecto>}"
  run_passed=$(count passed); run_ignored=$(count ignored); run_failed=$(( $(count failed) + $(count errored) ))
  passed=$((passed + run_passed)); skipped=$((skipped + run_ignored)); failed=$((failed + run_failed))
  if [ $((run_passed + run_failed)) -eq 0 ]; then
    echo "tests/Protocol.Tests: ran no tests"; failed=$((failed + 1))
  fi
else
  grep -a -v '^Ok, passed [0-9]* tests\.$' "$log_dir/expecto.log" | tail -n 40
  echo "tests/Protocol.Tests: no Expecto summary (the run crashed, found no tests, duplicate names or focused tests)"
  failed=$((failed + 1))
fi
[ "$status" -eq 0 ] || broken=1

if [ -n "$package_install" ]; then
  wait "$package_install" || true
  for program in chromium irssi tmux; do
    command -v "$program" > /dev/null || { echo "$program could not be installed (its test is skipped):"; tail -n 3 "$log_dir/packages.log"; }
  done
fi

# The C# loopback tests (xunit).
for project in tests/Cluster.Tests; do
  echo "== $project"
  # The whole output goes to a file (a pipe that closes early would kill the run); failures
  # are printed with their messages, then the runner's summary line is added to the totals.
  dotnet test "$project" -c Release --no-build -nologo > "$log_dir/test.log" 2>&1
  status=$?
  grep -E '^\s+Failed |Error Message|^\s+(Assert|System)\.' -A30 "$log_dir/test.log" | head -300
  summary=$(grep -E '(Passed|Failed)!\s+-' "$log_dir/test.log" | tail -n 1)
  if [ -n "$summary" ]; then
    echo "$summary"
    passed=$((passed + $(sed -E 's/.*Passed:\s+([0-9]+).*/\1/' <<<"$summary")))
    failed=$((failed + $(sed -E 's/.*Failed:\s+([0-9]+),.*/\1/' <<<"$summary")))
    skipped=$((skipped + $(sed -E 's/.*Skipped:\s+([0-9]+).*/\1/' <<<"$summary")))
  else
    tail -n 40 "$log_dir/test.log"
    echo "$project: no test summary (the run crashed or found no tests)"; failed=$((failed + 1))
  fi
  [ "$status" -eq 0 ] || broken=1
done

echo "== TLA+ model checking: ci/tlc.sh"
wait "$tlc_job"
tlc_status=$?
cat "$log_dir/tlc.log"
add_counts "$log_dir/tlc.log" || true
[ "$tlc_status" -eq 0 ] || { broken=1; grep -qE '^tlc: [0-9]+ passed, [1-9][0-9]* failed' "$log_dir/tlc.log" || failed=$((failed + 1)); }

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$broken" -eq 0 ]
