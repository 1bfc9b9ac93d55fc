# spindle_configure_target(target): warnings, thread-safety analysis where the
# compiler has it, and the sanitizer flags chosen by SPINDLE_SANITIZER.
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-Wthread-safety SPINDLE_HAS_WTHREAD_SAFETY)

set(_spindle_san_flags "")
if(SPINDLE_SANITIZER)
  string(REPLACE ";" "," _san_list "${SPINDLE_SANITIZER}")
  set(_spindle_san_flags -fsanitize=${_san_list} -fno-omit-frame-pointer)
  if(SPINDLE_SANITIZER MATCHES "undefined")
    list(APPEND _spindle_san_flags -fno-sanitize-recover=undefined)
  endif()
endif()

function(spindle_configure_target target)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "INTERFACE_LIBRARY")
    return()
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                         -fno-omit-frame-pointer)
  # clang leaves sized deallocation off by default; the allocator's
  # ::operator delete(p, size) needs it (GCC has it on from C++14).
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -fsized-deallocation)
  endif()
  if(SPINDLE_HAS_WTHREAD_SAFETY)
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
  if(SPINDLE_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(_spindle_san_flags)
    target_compile_options(${target} PRIVATE ${_spindle_san_flags})
    target_link_options(${target} PRIVATE ${_spindle_san_flags})
  endif()
endfunction()
