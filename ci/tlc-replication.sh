#!/usr/bin/env bash
# Model-checks the replication spec (spec/Replication.tla) with TLC, and makes the fixtures
# the F# conformance tests replay (tests/Protocol.Tests/Conformance/ReplicationConformance.fs).
#
#   bash ci/tlc-replication.sh             SANY, then every replication model: prints distinct
#                                          states, depth and seconds per model and ends with
#                                          `tlc-replication: N passed, N failed` (a model whose
#                                          invariant TLC must violate passes when it is violated)
#   bash ci/tlc-replication.sh --fixtures  regenerates spec/fixtures/replication/ (fixed seed
#                                          and fingerprint index, one worker: reproducible)
#   bash ci/tlc-replication.sh --check     regenerates the fixtures into a temporary directory
#                                          and fails if they differ from the committed ones
#
# The jar is $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar or ~/.cache/tlaplus/tla2tools.jar.
# Without a jar (or without java) the script prints `TLC not found: model checking
# SKIPPED` and exits 0; --fixtures then fails, because it cannot do what it was asked.
set -uo pipefail
cd "$(dirname "$0")/.."

tool=tlc-replication
fixture_name=replication
traces_module=MCReplicationTraces
sany_modules=(MCReplication MCReplicationTraces)
# TLC exits 12 on a violated invariant, 13 on a violated temporal or action property.
violation_exit_codes="12 13"

# ------------------------------------------------------------------------------------------
# Models: module, configuration, expected outcome (pass, or the property TLC must violate).

models=(
  "MCReplication MCReplication3 pass"
  # The state graphs are model-checked by --check too (it makes them again with their
  # invariants), which CI runs: here only in the long set.
  "MCReplicationTraces long:MCReplicationGraph3Backed pass"
  "MCReplicationTraces long:MCReplicationGraph3Fresh pass"
  "MCReplicationTraces long:MCReplicationGraph3Backed2 pass"
  "MCReplicationTraces long:MCReplicationGraph2Fresh pass"
  "MCReplication MCReplication3Fresh pass"
  "MCReplication MCReplication3Partition pass"
  "MCReplication MCReplication3LeaderOwns pass"
  "MCReplication MCReplication3TwoPartitions pass"
  "MCReplication long:MCReplication4 pass"
  "MCReplication MCReplication3TwoCrashes AckedDurable"
  "MCReplication MCReplication3FreshLeaderOwns AckedDurable"
  # Witnesses: deliberately false properties, violated where the states that matter are reached.
  "MCReplication MCReplication3WitnessFailover NoCommitAfterFailover"
  "MCReplication MCReplication3WitnessPromote NoPromote"
  "MCReplication MCReplication3WitnessGap NoGapFilled"
  "MCReplication long:MCReplication4WitnessGap NoGapFilled"
  "MCReplication MCReplication3WitnessQuorum NoQuorumLost"
)

# ------------------------------------------------------------------------------------------
# Fixtures.

# Trace sets: configuration, simulated behaviours, behaviours kept (the first ones, in TLC's
# order, that reach the depth kept), least depth kept, simulation depth.
trace_sets=(
  "MCReplicationTraces3 600 200 12 60"
  "MCReplicationTraces3Fresh 600 200 12 60"
  "MCReplicationTraces4 2000 100 12 60"
  "MCReplicationTraces2 600 100 8 60"
)
# State graphs for the successor-set test.
graphs=(MCReplicationGraph3Backed MCReplicationGraph3Fresh MCReplicationGraph3Backed2 MCReplicationGraph2Fresh)
# Every file the fixtures come from; the manifest holds their SHA-256.
sources=(Replication.tla MCReplication.tla MCReplicationTraces.tla MCReplicationTraces3.cfg MCReplicationTraces3Fresh.cfg
         MCReplicationTraces4.cfg MCReplicationTraces2.cfg MCReplicationGraph3Backed.cfg MCReplicationGraph3Fresh.cfg
         MCReplicationGraph3Backed2.cfg MCReplicationGraph2Fresh.cfg)

# shellcheck source=ci/tlc-common.sh
. ci/tlc-common.sh
tlc_main "$@"
