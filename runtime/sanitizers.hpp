// Sanitizer detection for both compilers, and the fiber-switch entry points
// the sanitizers export. Only context.cpp calls the switch hooks; other files
// use the SPINDLE_*_ENABLED macros to size data or relax test scales.
#pragma once

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_ASAN_ENABLED 1
#endif
#if __has_feature(thread_sanitizer)
#define SPINDLE_TSAN_ENABLED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(SPINDLE_ASAN_ENABLED)
#define SPINDLE_ASAN_ENABLED 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SPINDLE_TSAN_ENABLED)
#define SPINDLE_TSAN_ENABLED 1
#endif
#ifndef SPINDLE_ASAN_ENABLED
#define SPINDLE_ASAN_ENABLED 0
#endif
#ifndef SPINDLE_TSAN_ENABLED
#define SPINDLE_TSAN_ENABLED 0
#endif

#include <cstddef>

extern "C" {
#if SPINDLE_ASAN_ENABLED
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif
#if SPINDLE_TSAN_ENABLED
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
#endif
}
