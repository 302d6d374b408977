#!/usr/bin/env bash
# Build llama.cpp's own C++ server (llama-server) from the llama.cpp source that the pinned
# llama-cpp-python sdist ships (vendor/llama.cpp), so both teacher servers run the same
# llama.cpp. Only PyPI is needed (pip download of the sdist); it compiles llama.cpp.
#   scripts/build_llama_server.sh [DEST]   (default: $ADE_DISTILL_CACHE or ~/.cache/ade-distill, /bin)
set -euo pipefail
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
PY=${PYTHON:-python3}
CACHE=${ADE_DISTILL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ade-distill}
DEST=${1:-$CACHE/bin}
JOBS=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$VERSION"
tar xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
# No network at run time or build time: no prebuilt web UI, no curl/openssl downloads.
# Native, but without ggml's AMX kernels, which segfault on the Q4_K_M teacher on Sapphire Rapids class
# CPUs (ggml-org/llama.cpp#20824); the Makefile builds llama-cpp-python the same way.
noamx=()
if [ "$(uname -m)" = x86_64 ]; then
  noamx=(-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
fi
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF "${noamx[@]}" \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_CURL=OFF -DGGML_NATIVE=ON >"$work/configure.log"
cmake --build "$work/build" --target llama-server -j "$JOBS" >"$work/build.log" || { tail -40 "$work/build.log"; exit 1; }
mkdir -p "$DEST"
install -m 755 "$work/build/bin/llama-server" "$DEST/llama-server.tmp"
mv "$DEST/llama-server.tmp" "$DEST/llama-server"
"$DEST/llama-server" --version 2>&1 | head -2
echo "built $DEST/llama-server (llama.cpp from llama-cpp-python $VERSION)"
