#!/usr/bin/env bash
# Every TLC check of spec/ through the one runner, ci/tlc.fsx (its models: ci/tlc-models.fsx):
#
#   bash ci/tlc.sh                     SANY, every model, the fixture rows (regenerated and
#                                      compared), fixture freshness, the spec mutations; ends
#                                      with "tlc: N passed, N failed"
#   bash ci/tlc.sh --only replication  only that set (or model, or mutation) by name
#   bash ci/tlc.sh --fixtures [SET]    regenerate spec/fixtures/<SET>/ (then commit it)
#   bash ci/tlc.sh --check             fixture freshness only (no TLC needed)
#
# tla2tools.jar: $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar or ~/.cache/tlaplus/tla2tools.jar;
# without one the TLC runs print "TLC not found: model checking SKIPPED" (hosted CI fetches the
# pinned v1.7.4 release first: ci/tlc-jar.sh). Rows whose modules need a standard module the
# jar lacks (v1.7.4: Json, TLCExt) are SKIPPED with the reason. TLC_LONG=1 adds the
# long models and mutations, TLC_WORKERS sets the workers of exhaustive checks (default 2).
set -uo pipefail
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet fsi --quiet --exec "$(dirname "${BASH_SOURCE[0]}")/tlc.fsx" -- "$@"
