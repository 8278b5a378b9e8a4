#!/usr/bin/env bash
# Installs, on Debian (12), what `make test` needs:
#   samba slapd ldap-utils openssl  real directory servers for the integration tests
#   oathtool faketime               TOTP codes and clock shifts in tests
#   chromium                        browser tests
#   iproute2 util-linux tar         scripts/netns-exec.sh and the lab's template cache
#   npm, then axe-core (npm)        accessibility checks of the pages (web/browsertest.Axe),
#                                   into $REPLYRESET_TEST_CACHE (default ~/.cache/replyreset)
# Idempotent and non-interactive: when everything is installed it changes
# nothing and runs no apt-get update. Fails loudly.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(samba slapd ldap-utils openssl oathtool faketime chromium iproute2 util-linux tar)

say() { printf 'install-test-deps: %s\n' "$*"; }
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing_packages() {
  local p
  for p in "${packages[@]}"; do installed "$p" || printf '%s\n' "$p"; done
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  say "ERROR: this script needs Debian's dpkg and apt-get; install by hand: ${packages[*]}" >&2
  exit 1
fi

# axe-core, pinned: the version web/browsertest/axe.go (AxeVersion) reads.
axe_version=4.14.1
axe_dir="${REPLYRESET_TEST_CACHE:-$HOME/.cache/replyreset}/axe-core-$axe_version"
install_axe() {
  if [ -s "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    say "axe-core $axe_version present in $axe_dir"
    return
  fi
  say "+ npm install axe-core@$axe_version into $axe_dir"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-save --no-audit --no-fund --ignore-scripts "axe-core@$axe_version"
  if [ ! -s "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    say "ERROR: npm did not install $axe_dir/node_modules/axe-core/axe.min.js" >&2
    exit 1
  fi
}

mapfile -t missing < <(missing_packages)
# npm may come from Debian's npm package or with another nodejs build.
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  say "all present: ${packages[*]} npm"
  install_axe
  exit 0
fi
say "missing: ${missing[*]}"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  else
    say "ERROR: must run as root (or with password-less sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

# Package scripts must not start system services: slapd would listen on
# 0.0.0.0:389 and samba would start its daemons. A policy-rc.d that exits 101
# forbids that; the one we create is removed again when we are done.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  say "writing /usr/sbin/policy-rc.d (exit 101) so that package scripts start no services"
  "${sudo[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  trap 'say "removing /usr/sbin/policy-rc.d"; "${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi

apt=(apt-get -o DPkg::Lock::Timeout=600 -y)
say "+ apt-get update"
"${sudo[@]}" "${apt[@]}" update
say "+ apt-get install ${missing[*]}"
"${sudo[@]}" "${apt[@]}" install "${missing[@]}"

mapfile -t still < <(missing_packages)
if [ ${#still[@]} -ne 0 ]; then
  say "ERROR: still not installed after apt-get install: ${still[*]}" >&2
  exit 1
fi
say "installed: ${missing[*]}"
install_axe
