# Sourced by every TLC script: find_jar prints the absolute path of tla2tools.jar, looked for at
# $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar and ~/.cache/tlaplus/tla2tools.jar (nothing is
# downloaded), or prints nothing and fails.
find_jar() {
  local candidate
  for candidate in "${TLA2TOOLS_JAR:-}" /opt/tlaplus/tla2tools.jar "$HOME/.cache/tlaplus/tla2tools.jar"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then echo "$(cd "$(dirname "$candidate")" && pwd)/$(basename "$candidate")"; return 0; fi
  done
  return 1
}
