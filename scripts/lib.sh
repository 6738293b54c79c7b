# shellcheck shell=bash
# Helpers shared by scripts/test.sh, scripts/serve.sh and .ci/run. Source this file; do not run it.

# Progress line on stderr.
lk_say() {
    printf '==> %s\n' "$*" >&2
}

# Section header on stdout, for CI logs.
lk_section() {
    printf '\n======== %s ========\n' "$*"
}

# Prints an error and exits with status 1.
lk_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
lk_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        lk_die "'$*' needs root, and sudo is not installed"
    fi
}

# True if the Debian package is installed.
lk_deb_installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == *" ok installed" ]]
}

# Installs whichever of the given Debian packages are missing. `apt-get update` runs at most
# once per run (child scripts inherit LK_APT_UPDATED), and only when something is missing.
lk_apt_ensure() {
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        lk_say "not a Debian system: make sure these are installed: $*"
        return 0
    fi
    local missing=() pkg
    for pkg in "$@"; do
        lk_deb_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    lk_say "installing missing packages: ${missing[*]}"
    if [ "${LK_APT_UPDATED:-0}" != 1 ]; then
        lk_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        export LK_APT_UPDATED=1
    fi
    lk_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Packages needed to build latchkey (josekit links OpenSSL).
LK_BUILD_PACKAGES=(libssl-dev pkg-config)
# Packages the test suite needs: PostgreSQL and Redis, and Chromium for the headless browser test.
LK_TEST_PACKAGES=(postgresql postgresql-client redis-server redis-tools chromium)

# Prints a TCP port on 127.0.0.1 that nothing listens on.
lk_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    local port=${1:-55432}
    # A connection that fails means nothing listens there.
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# Shows a URL with its password replaced by ****.
lk_mask_url() {
    printf '%s\n' "$1" | sed -E 's#^([a-z]+://[^:/@]*):[^@/]*@#\1:****@#'
}
