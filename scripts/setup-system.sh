#!/usr/bin/env bash
# Install the system services ioc needs (PostgreSQL 15 + TimescaleDB, Mosquitto, Chromium).
# The broker is Mosquitto 2.0.21 built from Debian trixie's source with ioc's patch and plugin (broker/),
# installed under /usr/local. Idempotent: a second run checks and returns in seconds.
set -euo pipefail

PG_MAJOR=15
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
CACHE_DIR="${IOC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ioc}"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOSQUITTO_PREFIX=/usr/local
# What ioc.broker looks for: our broker, the guard plugin beside it, and a stamp naming the exact build.
MOSQUITTO_LIBDIR="$MOSQUITTO_PREFIX/lib/ioc-mosquitto"
PACKAGES=(
  "postgresql-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" postgresql-client
  cmake build-essential libssl-dev xz-utils
  mosquitto mosquitto-clients
  chromium fonts-dejavu-core
  python3-venv
)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
  done
}

timescaledb_installed() {
  local libdir sharedir
  [ -x "$PG_CONFIG" ] || return 1
  libdir=$("$PG_CONFIG" --pkglibdir); sharedir=$("$PG_CONFIG" --sharedir)
  [ -f "$libdir/timescaledb.so" ] && [ -f "$sharedir/extension/timescaledb.control" ]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else
    die "root is needed for: $*
  Run 'sudo make setup' once (or as root: bash scripts/setup-system.sh); it installs: ${PACKAGES[*]}
  and builds TimescaleDB for PostgreSQL ${PG_MAJOR} into $(dirname "$PG_CONFIG")/.."
  fi
}

install_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if [ "${#missing[@]}" -eq 0 ]; then say "system packages present"; return; fi
  say "installing: ${missing[*]}"
  as_root apt-get update -qq
  # Keep the distribution's own postgresql/mosquitto services from starting: ioc runs private ones.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"; created=1
  fi
  local log="$CACHE_DIR/apt-install.log"; mkdir -p "$CACHE_DIR"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
    || { [ "$created" = 1 ] && as_root rm -f "$policy"; tail -n 20 "$log" >&2; die "apt-get install failed for: ${missing[*]} (full log: $log)"; }
  [ "$created" = 1 ] && as_root rm -f "$policy"
  say "system packages installed"
}

# The first Debian mirror URI that the machine's own apt sources use (never hard-coded here).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | grep -i debian | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | grep -i debian | head -n1 || true)
  fi
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list*; add one or install TimescaleDB for PostgreSQL ${PG_MAJOR} by hand"
  printf '%s\n' "$uri"
}

install_timescaledb_binary() {
  local pkg
  for pkg in "timescaledb-2-postgresql-${PG_MAJOR}" "postgresql-${PG_MAJOR}-timescaledb"; do
    if apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      say "installing TimescaleDB binary package $pkg"
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$pkg" && return 0
    fi
  done
  return 1
}

build_timescaledb_from_source() {
  local apt_dir="$CACHE_DIR/apt-trixie" src_dir="$CACHE_DIR/timescaledb-src" tarball build
  mkdir -p "$apt_dir/lists/partial" "$src_dir"
  tarball=$(ls "$src_dir"/timescaledb_*.orig.tar.* 2>/dev/null | head -n1 || true)
  if [ -z "$tarball" ]; then
    printf 'deb-src %s trixie main\n' "$(debian_mirror)" > "$apt_dir/sources.list"
    local opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
                -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
    say "fetching Debian trixie source package 'timescaledb' (private apt state in $apt_dir)"
    apt-get "${opts[@]}" update -qq
    (cd "$src_dir" && apt-get "${opts[@]}" source --download-only -qq timescaledb)
    tarball=$(ls "$src_dir"/timescaledb_*.orig.tar.* 2>/dev/null | head -n1 || true)
    [ -n "$tarball" ] || die "apt-get source did not produce timescaledb_*.orig.tar.*"
  fi
  build="$src_dir/build-tree"
  if [ ! -f "$build/build/src/timescaledb.so" ] && [ ! -f "$build/.built" ]; then
    rm -rf "$build"; mkdir -p "$build"
    tar -xf "$tarball" -C "$build" --strip-components=1
    say "building TimescaleDB (Apache edition) against PostgreSQL ${PG_MAJOR}"
    (cd "$build" && ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$PG_CONFIG" >"$build/bootstrap.log" 2>&1 \
      && make -C build -j"$(nproc)" >"$build/make.log" 2>&1) \
      || die "TimescaleDB build failed; see $build/bootstrap.log and $build/make.log"
    touch "$build/.built"
  fi
  as_root make -C "$build/build" install >"$build/install.log" 2>&1 || die "TimescaleDB install failed; see $build/install.log"
  say "TimescaleDB installed from source (cached in $src_dir)"
}

install_build_tools() {
  local missing=() p
  for p in build-essential libssl-dev ca-certificates; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Fetch a Debian trixie source package into $2 with a private apt state (no change to the system's apt).
fetch_trixie_source() {
  local name=$1 dest=$2 apt_dir="$CACHE_DIR/apt-trixie"
  mkdir -p "$apt_dir/lists/partial" "$dest"
  printf 'deb-src %s trixie main\n' "$(debian_mirror)" > "$apt_dir/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  say "fetching Debian trixie source package '$name' (private apt state in $apt_dir)"
  apt-get "${opts[@]}" update -qq
  (cd "$dest" && apt-get "${opts[@]}" source --download-only -qq "$name")
}

# The build's identity: the upstream tarball plus every file of broker/ (a changed patch means a rebuild).
mosquitto_build_id() {
  local tarball=$1
  { basename "$tarball"; cat "$REPO_DIR"/broker/*.patch "$REPO_DIR"/broker/*.c; } | sha256sum | cut -c1-16
}

# Mosquitto from source: Debian 12's 2.0.11 (and upstream 2.0.x) forgets a persistent session's shared
# subscription on restart (persist__subs_save writes only plain ones), and its ACL file cannot refuse a
# SUBSCRIBE. broker/ holds the persistence patch and the ioc_guard plugin; see docs/security.md.
build_mosquitto_from_source() {
  local src_dir="$CACHE_DIR/mosquitto-src" tarball id build stamp="$MOSQUITTO_LIBDIR/BUILD"
  tarball=$(ls "$src_dir"/mosquitto_2.0.*.orig.tar.* 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$tarball" ]; then
    fetch_trixie_source mosquitto "$src_dir"
    tarball=$(ls "$src_dir"/mosquitto_2.0.*.orig.tar.* 2>/dev/null | sort -V | tail -n1 || true)
    [ -n "$tarball" ] || die "apt-get source did not produce mosquitto_2.0.*.orig.tar.*"
  fi
  id=$(mosquitto_build_id "$tarball")
  if [ -x "$MOSQUITTO_PREFIX/sbin/mosquitto" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$id" ]; then
    say "Mosquitto with ioc's patch present ($MOSQUITTO_PREFIX/sbin/mosquitto, build $id)"; return
  fi
  build="$src_dir/build-$id"
  if [ ! -f "$build/.built" ]; then
    rm -rf "$src_dir"/build-*; mkdir -p "$build"
    tar -xf "$tarball" -C "$build" --strip-components=1
    local p
    for p in "$REPO_DIR"/broker/*.patch; do
      patch -d "$build" -p1 --quiet < "$p" >"$build/patch.log" 2>&1 || die "$(basename "$p") does not apply to $(basename "$tarball"); see $build/patch.log"
    done
    say "building Mosquitto $(basename "$tarball" .orig.tar.gz | cut -d_ -f2) with ioc's patch and plugin"
    (make -C "$build/src" -j"$(nproc)" WITH_DOCS=no WITH_CJSON=no WITH_WEBSOCKETS=no WITH_SRV=no \
        WITH_SYSTEMD=no prefix="$MOSQUITTO_PREFIX" mosquitto >"$build/make.log" 2>&1 \
      && cc -O2 -Wall -fPIC -shared -I"$build" -I"$build/include" "$REPO_DIR/broker/ioc_guard.c" \
        -o "$build/ioc_guard.so" >>"$build/make.log" 2>&1) \
      || die "Mosquitto build failed; see $build/make.log"
    touch "$build/.built"
  fi
  as_root install -d "$MOSQUITTO_PREFIX/sbin" "$MOSQUITTO_LIBDIR"
  as_root install -m 0755 "$build/src/mosquitto" "$MOSQUITTO_PREFIX/sbin/mosquitto"
  as_root install -m 0644 "$build/ioc_guard.so" "$MOSQUITTO_LIBDIR/ioc_guard.so"
  printf '%s\n' "$id" | as_root tee "$stamp" >/dev/null
  say "Mosquitto with ioc's patch installed: $MOSQUITTO_PREFIX/sbin/mosquitto, $MOSQUITTO_LIBDIR (cached in $src_dir)"
}

main() {
  if [ "${1:-}" = "--broker-only" ]; then  # scripts/Containerfile.broker: just the broker
    install_build_tools; build_mosquitto_from_source; return
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this set-up supports Debian/Ubuntu-like systems. Install PostgreSQL ${PG_MAJOR} with TimescaleDB, Mosquitto 2 and Chromium, then run 'make venv'"
  install_packages
  if timescaledb_installed; then
    say "TimescaleDB present for PostgreSQL ${PG_MAJOR}"
  else
    install_timescaledb_binary || build_timescaledb_from_source
    timescaledb_installed || die "TimescaleDB is still missing after installation"
  fi
  build_mosquitto_from_source
}
main "$@"
