# Source this on a GPU machine before running a `--features cuda` build of nanotune:
#   . scripts/gpu-env.sh [BINARY]
# It puts the CUDA 13 libraries the binary links (libcublas, libcublasLt, libcudart, libcurand)
# on LD_LIBRARY_PATH from the NVIDIA wheels PyTorch was installed with, then lists any library
# the binary still cannot find, and adds gpu/ (ALSA's libasound.so.2, carried) where the system
# has no ALSA. The driver's libcuda.so.1 comes from the system. Never put the
# build's stub libcuda.so (target/cuda-toolkit/cudalink) on the path here.
nv=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
if [ -n "$nv" ]; then
  LD_LIBRARY_PATH=$(ls -d "$nv"/*/lib "$nv"/*/*/lib 2>/dev/null | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
else
  echo "gpu-env: no python3 'nvidia' package here: put the CUDA 13 libraries on LD_LIBRARY_PATH yourself" >&2
fi
# ALSA, which the binary links for the speakers, carried by scripts/build-cuda.sh for a server
# without it.
if [ -f gpu/libasound.so.2 ] && ! ldconfig -p | grep -q libasound.so.2; then
  LD_LIBRARY_PATH=$PWD/gpu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
fi
missing=$(ldd "${1:-gpu/nanotune}" 2>/dev/null | grep 'not found')
[ -z "$missing" ] || echo "gpu-env: still missing: $missing" >&2
