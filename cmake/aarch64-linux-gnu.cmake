# Cross build for 64-bit Arm Linux (the `aarch64` preset): Debian's cross
# compiler (g++-aarch64-linux-gnu) against the arm64 multiarch libraries
# (libboost-context-dev:arm64, libgtest-dev:arm64) in /usr/lib/aarch64-linux-gnu.
# Tests run under qemu-user; `bash tools/dev.sh setup` installs all of it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
find_program(SPINDLE_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${SPINDLE_QEMU_AARCH64})
