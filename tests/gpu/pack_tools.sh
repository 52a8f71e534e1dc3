#!/bin/bash
# Pack what a GPU host with no network needs for `llmrack verify --local --only hardware`: the checklist's
# distro tools (stress-ng, memtester, fio, smartctl, badblocks) with their shared libraries (glibc excluded: the
# host's own, newer one is used), and Python wheels of llmrack's dependencies for the host's Python.
# Travels as .tools.tar.xz and .whl/gpu (both ignored by git).
# Usage (repo root, on a Debian/Ubuntu machine with the tools installed): bash tests/gpu/pack_tools.sh [PYVER]
set -euo pipefail
PYVER=${1:-3.12}
rm -rf .tools && mkdir -p .tools/bin .tools/lib
if ! command -v smartctl >/dev/null; then
  tmp=$(mktemp -d); (cd "$tmp" && apt-get download smartmontools >/dev/null) && dpkg -x "$tmp"/smartmontools_*.deb "$tmp/x"
  cp "$tmp/x/usr/sbin/smartctl" .tools/bin/; rm -rf "$tmp"
fi
for b in stress-ng memtester fio smartctl badblocks; do
  p=$(command -v "$b" || true); [ -n "$p" ] && cp "$p" .tools/bin/
done
for b in .tools/bin/*; do
  ldd "$b" | awk '$3 ~ /^\// {print $3}' | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' \
    | xargs -r cp -Ln -t .tools/lib/ || true
done
# Travels as one compressed file (the libraries of fio alone are ~80 MiB); unpack with tar -xJf on the host.
tar -cJf .tools.tar.xz .tools
rm -rf .whl/gpu && mkdir -p .whl/gpu
deps=$(python3 - <<'PY'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(" ".join(d for d in p["dependencies"]))
PY
)
# shellcheck disable=SC2086
.venv/bin/pip download -q --disable-pip-version-check -d .whl/gpu --only-binary=:all: --python-version "$PYVER" \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --implementation cp $deps "pytest>=8" "pytest-testinfra>=10" "jsonschema>=4.20"
du -sh .tools.tar.xz .whl/gpu
