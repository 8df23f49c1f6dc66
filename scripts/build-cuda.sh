#!/usr/bin/env bash
# Builds nanotune with the `cuda` feature on a machine with no GPU and no system CUDA toolkit,
# from the CUDA 13.0 wheels of the Python package registry (after ../shared/cuda/build-cuda.sh).
#
#   scripts/build-cuda.sh [SCRATCH]     -> target/cuda/release/nanotune, and gpu/nanotune.xz
#
# SCRATCH (default target/cuda-toolkit) holds the venv with nvcc and the CUDA libraries, and a
# link folder with a stub libcuda.so that only serves the linker. CUDA 13.0 because the GPU
# machine's driver is 580 (CUDA 13.0): PTX from a newer nvcc may not load there. The kernels are
# built for compute capability 9.0 (H100); set CUDA_COMPUTE_CAP for another GPU.
# The binary needs at run time the driver's libcuda.so.1 and libcublas, libcublasLt, libcudart
# (13) and libcurand (10): see docs/gpu.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(mkdir -p "${1:-$repo/target/cuda-toolkit}" && cd "${1:-$repo/target/cuda-toolkit}" && pwd)
cd "$root"

# 1. The CUDA 13.0 toolchain and libraries (pin nvvm too: nvcc pulls a newer one otherwise).
[ -x venv/bin/pip ] || python3 -m venv venv
venv/bin/pip install -q nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
cu=$(echo "$root"/venv/lib/python3*/site-packages/nvidia/cu13)

# 2. Unversioned .so links (the wheels ship only .so.N), and a libcuda.so stub whose SONAME is
#    libcuda.so.1, made from the driver symbols cudarc declares, so the link needs no driver.
mkdir -p cudalink/lib stub
for l in cublas:libcublas.so.13 cublasLt:libcublasLt.so.13 cudart:libcudart.so.13 \
  curand:libcurand.so.10 nvrtc:libnvrtc.so.13; do
  ln -sf "$cu/lib/${l#*:}" "cudalink/lib/lib${l%%:*}.so"
done
cudarc=$(cd "$repo" && cargo metadata --format-version 1 --features cuda |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc").rsplit("/", 1)[0])')
grep -hoE '^\s+fn (cu[A-Za-z0-9_]+)\(' "$cudarc/src/driver/sys/mod.rs" |
  sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u >stub/syms.txt
while read -r s; do echo "int $s(void) { return 999; }"; done <stub/syms.txt >stub/libcuda_stub.c
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o cudalink/lib/libcuda.so stub/libcuda_stub.c

# 3. The build, in its own target folder so the CPU build stays as it is.
export PATH=$cu/bin:$PATH NVCC=$cu/bin/nvcc CUDA_HOME=$root/cudalink CUDARC_CUDA_VERSION=13000 \
  CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-2} \
  LIBRARY_PATH=$root/cudalink/lib LD_LIBRARY_PATH=$cu/lib
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target/cuda}
CARGO_TARGET_DIR=$target cargo build --release --features cuda
# 4. A stripped, compressed copy in gpu/ (ignored by git) to carry to the GPU machine: 56 MB
#    stripped (mostly PTX), 7 MB as xz. There: xz -dc gpu/nanotune.xz >/tmp/nanotune.
mkdir -p gpu
strip -o gpu/nanotune "$target/release/nanotune"
xz -T0 -6 -f gpu/nanotune
# The binary links ALSA (for the speakers, through cpal), which a GPU server may lack: the H200
# machine had no libasound.so.2 on 2026-12-04, and the binary would not start. Carry this one;
# scripts/gpu-env.sh puts gpu/ on the library path where it finds it.
cp -L "$(ldconfig -p | awk '/libasound.so.2 .*x86-64/ { print $NF; exit }')" gpu/ ||
  echo "no libasound.so.2 here to carry: install libasound2 on the GPU machine" >&2
echo "built $target/release/nanotune; stripped and compressed: gpu/nanotune.xz ($(du -k gpu/nanotune.xz | cut -f1) kB)"
