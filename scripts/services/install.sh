#!/usr/bin/env bash
# Install everything start.sh needs: MariaDB, Redis, RabbitMQ, nginx (Debian
# packages), OpenSearch (zip from Maven Central) and the non-root user that
# OpenSearch must run as.
#
# Idempotent: every step checks first and skips if already done, so it is
# cheap to call from CI before each run.
#
# The Debian packages come with system services on the default ports. We never
# use those: start.sh runs private instances with their own data dirs and
# ports. So this script makes sure no system instance is left running.
#
# Env:
#   OPENSEARCH_VERSION   preferred version (default 2.19.3; neighbouring 2.19.x
#                        versions are tried if Maven Central lacks it)
#   CHAT_SVC_CACHE_DIR   where OpenSearch is unpacked
#                        (default ${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend)
#   OPENSEARCH_USER      system user OpenSearch runs as (default opensearch)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"

t0=$(date +%s.%N)

# ---------------------------------------------------------------- apt packages
# redis-tools/mariadb-client give the CLIs the readiness checks use; unzip
# unpacks OpenSearch; curl talks to OpenSearch.
packages=(mariadb-server mariadb-client redis-server redis-tools rabbitmq-server nginx curl unzip)
# OpenSearch needs a JDK 17 to run and Maven to fetch it; take Debian's when the machine has none.
command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || packages+=(maven)
missing=()
for p in "${packages[@]}"; do
  # dpkg-query prints "install ok installed" only for fully configured packages.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  [[ $EUID -eq 0 ]] || die "need root to apt-get install: ${missing[*]}"
  log "apt-get install ${missing[*]}"
  # policy-rc.d exiting 101 tells invoke-rc.d (used by the packages' postinst)
  # not to start the services at all. Docker-style images already have one;
  # only add ours (and remove it afterwards) when there is none.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from chat-backend scripts/services/install.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'if ((own_policy)); then rm -f "$policy"; fi' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((own_policy)); then rm -f "$policy"; own_policy=0; fi
else
  log "apt packages already installed"
fi

# ------------------------------------------------- no system instances running
# Belt and braces after policy-rc.d: on a machine with systemd the units may
# have been started anyway (or were installed earlier without the policy), and
# they would sit on 3306/6379/5672/4369/80. Stop and disable them. We only
# touch the distro's own service names here, never our private instances.
if [[ $EUID -eq 0 ]]; then
  if [[ -d /run/systemd/system ]]; then
    for unit in mariadb redis-server rabbitmq-server nginx epmd.socket epmd.service; do
      if systemctl is-enabled --quiet "$unit" 2>/dev/null || systemctl is-active --quiet "$unit" 2>/dev/null; then
        log "disabling system unit $unit"
        systemctl disable --now --quiet "$unit" 2>/dev/null || true
      fi
    done
  else
    # No systemd (containers, this VM): look at the default ports instead of
    # calling "/etc/init.d/X status" -- the rabbitmq-server status action runs
    # rabbitmqctl, which itself starts a stray epmd on 4369.
    for pair in mariadb:3306 redis-server:6379 rabbitmq-server:5672 nginx:80; do
      svc=${pair%%:*} port=${pair##*:}
      if [[ -x /etc/init.d/$svc ]]; then
        if port_listening "$port"; then
          log "stopping system service $svc (listening on :$port)"
          /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
        fi
        update-rc.d "$svc" disable >/dev/null 2>&1 || true
      fi
    done
  fi
  # A system epmd on 4369 (started by a package script or an earlier
  # rabbitmqctl) is harmless but confusing; stop it if no node uses it.
  # "epmd -names" prints only the header line when no node is registered.
  if command -v epmd >/dev/null && port_listening 4369 &&
    [[ "$(ERL_EPMD_PORT=4369 epmd -names 2>/dev/null | wc -l)" -le 1 ]]; then
    log "stopping idle system epmd on :4369"
    ERL_EPMD_PORT=4369 epmd -kill >/dev/null 2>&1 || true
  fi
fi

# ------------------------------------------------------------ opensearch user
# OpenSearch refuses to start as root ("can not run opensearch as root").
if ! id -u "$OPENSEARCH_USER" >/dev/null 2>&1; then
  [[ $EUID -eq 0 ]] || die "need root to create user $OPENSEARCH_USER"
  log "creating system user $OPENSEARCH_USER"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$OPENSEARCH_USER"
fi

# ----------------------------------------------------------------- opensearch
# The integ-test zip is the minimal distribution (no plugins, no security
# plugin, no bundled JDK): plain HTTP, runs on the system Java 17.
mkdir -p "$CHAT_SVC_CACHE_DIR"
candidates=("$OPENSEARCH_VERSION" 2.19.3 2.19.2 2.19.4 2.19.1 2.19.0)
installed=""
for v in "${candidates[@]}"; do
  if [[ -x "$CHAT_SVC_CACHE_DIR/opensearch-$v/bin/opensearch" ]]; then
    installed=$v
    log "OpenSearch $v already in $CHAT_SVC_CACHE_DIR/opensearch-$v"
    break
  fi
done

if [[ -z $installed ]]; then
  command -v mvn >/dev/null || die "mvn not found (needed to fetch OpenSearch from Maven Central)"
  dl="$CHAT_SVC_CACHE_DIR/downloads"
  mkdir -p "$dl"
  for v in "${candidates[@]}"; do
    zip="$dl/opensearch-$v.zip"
    if [[ ! -s $zip ]]; then
      log "fetching org.opensearch.distribution.integ-test-zip:opensearch:$v:zip via mvn"
      # Run from an empty dir: dependency:copy needs no pom, and must not pick
      # up a pom that happens to be in the caller's cwd.
      tmpd="$(mktemp -d)"
      if ! (cd "$tmpd" && mvn -q -B dependency:copy \
        -Dartifact="org.opensearch.distribution.integ-test-zip:opensearch:$v:zip" \
        -DoutputDirectory="$dl" -Dmdep.stripVersion=false >"$tmpd/mvn.log" 2>&1); then
        log "  $v not available: $(grep -m1 -E 'ERROR' "$tmpd/mvn.log" | cut -c1-200 || true)"
        rm -rf "$tmpd"
        continue
      fi
      rm -rf "$tmpd"
    fi
    # Unpack next to the target and rename, so an interrupted unzip never
    # leaves a half-populated opensearch-<ver> that the skip check trusts.
    tmpx="$(mktemp -d "$CHAT_SVC_CACHE_DIR/.unpack.XXXXXX")"
    unzip -q "$zip" -d "$tmpx"
    top="$(find "$tmpx" -mindepth 1 -maxdepth 1 -type d | head -n1)"
    [[ -x "$top/bin/opensearch" ]] || die "unexpected zip layout in $zip"
    rm -rf "$CHAT_SVC_CACHE_DIR/opensearch-$v"
    mv "$top" "$CHAT_SVC_CACHE_DIR/opensearch-$v"
    rm -rf "$tmpx"
    installed=$v
    log "OpenSearch $v unpacked into $CHAT_SVC_CACHE_DIR/opensearch-$v"
    break
  done
  [[ -n $installed ]] || die "could not fetch any OpenSearch version of: ${candidates[*]}"
fi

# start.sh finds the install through this link unless OPENSEARCH_HOME is set.
ln -sfn "opensearch-$installed" "$CHAT_SVC_CACHE_DIR/opensearch-current"

log "install done in $(elapsed_since "$t0")s (OpenSearch $installed)"
