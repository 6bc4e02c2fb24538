# Sourced by the scripts: run uv from PATH, or as a module of the Python that installed it
# (a fresh pip install may not have put it on PATH yet, e.g. before a pyenv rehash).
uv() {
  if type -P uv >/dev/null 2>&1; then command uv "$@"; else python3 -m uv "$@"; fi
}
