#!/usr/bin/env bash
# Puts the pinned TLC release, tla2tools.jar v1.7.4 (the stable release asset of
# tlaplus/tlaplus, "TLC2 Version 2.19 of 08 August 2024 (rev: 5a47802)"), at
# ~/.cache/tlaplus/tla2tools.jar (or $TLA2TOOLS_JAR), where ci/tlc.sh and the trace tests look.
# Hosted CI runs it before ci/test.sh (.github/workflows/ci.yml); it is not needed where a jar
# is installed already (/opt/tlaplus/tla2tools.jar).
#
# The jar is checked against its SHA-256 whether it was just downloaded or restored from a
# cache; on a mismatch it is deleted and the script fails. Nothing is built: the release asset
# is used as published. v1.7.4 has neither the Json nor the TLCExt standard module, so
# ci/tlc.sh reports the rows that need them (the fixture generators) as SKIPPED (spec/README.md).
#
#   bash ci/tlc-jar.sh          fetch (if absent) and check; prints the jar's path
#   TLC_JAR_URL=...             another address for the same file (a mirror)
set -euo pipefail

version=v1.7.4
sha256=936a262061c914694dfd669a543be24573c45d5aa0ff20a8b96b23d01e050e88
url=${TLC_JAR_URL:-https://github.com/tlaplus/tlaplus/releases/download/$version/tla2tools.jar}
jar=${TLA2TOOLS_JAR:-$HOME/.cache/tlaplus/tla2tools.jar}

matches() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$sha256" ]; }

if [ -f "$jar" ] && ! matches "$jar"; then
  echo "tlc-jar: $jar is not tla2tools.jar $version (SHA-256 differs): fetching it again" >&2
  rm -f "$jar"
fi
if [ ! -f "$jar" ]; then
  mkdir -p "$(dirname "$jar")"
  partial="$jar.partial"
  curl --fail --location --silent --show-error --retry 3 --output "$partial" "$url"
  if ! matches "$partial"; then
    echo "tlc-jar: $url has SHA-256 $(sha256sum "$partial" | cut -d' ' -f1), not the pinned $sha256: refused" >&2
    rm -f "$partial"
    exit 1
  fi
  mv "$partial" "$jar"
fi
echo "$jar"
