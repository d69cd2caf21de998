# Shared helpers for scripts/demo, scripts/test and scripts/bench. Sourced, not run.
# Everything here is idempotent: run it twice, get the same machine.

# Root runs commands directly; others go through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG...: apt-get install only what is missing.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> installing: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
            || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
    fi
}

# ensure_user NAME: an unprivileged login user with a home and bash, not locked (sshd refuses
# locked accounts when PAM is off).
ensure_user() {
    local name=$1
    if ! id "$name" >/dev/null 2>&1; then
        as_root useradd --create-home --shell /bin/bash "$name"
    fi
    as_root usermod -p '*' "$name" >/dev/null
}

# The test users: PostgreSQL refuses to run as root; sshd logs in an ordinary user.
ensure_test_users() {
    if [ "$(id -u)" -eq 0 ]; then
        ensure_user bastion-pg
        ensure_user bastion-ssh
        mkdir -p /run/sshd
    fi
}

# PostgreSQL server binaries live outside PATH on Debian.
pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
    dirname "$(command -v initdb)"
}

# Builds are cached outside the clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bastion-target}"
