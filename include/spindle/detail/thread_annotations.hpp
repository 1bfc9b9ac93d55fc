// Not API. Clang's thread-safety annotations (-Wthread-safety), as abseil
// and marl spell them: a lock is a capability, data names the lock that
// guards it, a function names the locks it needs or must not hold. The
// tsa build preset compiles the tree with clang and -Wthread-safety
// -Werror, so a "guarded by" that the code breaks fails the test command.
// Other compilers see nothing.
//
// What the analysis cannot see, and spindle therefore states in comments:
// data guarded by a lock of another object (a waiter node belongs to the
// list it is linked on, and the list's lock guards it), and a lock taken in
// one function and dropped in another across a fiber switch.
#pragma once

#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(capability)
#define SPINDLE_TSA(x) __attribute__((x))
#endif
#endif
#ifndef SPINDLE_TSA
#define SPINDLE_TSA(x)
#endif

// A class whose objects are locks.
#define SPINDLE_CAPABILITY(name) SPINDLE_TSA(capability(name))
// An RAII class that holds a lock for its lifetime.
#define SPINDLE_SCOPED_CAPABILITY SPINDLE_TSA(scoped_lockable)
// Data read or written only while holding the lock.
#define SPINDLE_GUARDED_BY(lock) SPINDLE_TSA(guarded_by(lock))
// The pointee is read or written only while holding the lock.
#define SPINDLE_PT_GUARDED_BY(lock) SPINDLE_TSA(pt_guarded_by(lock))
// The caller holds these locks.
#define SPINDLE_REQUIRES(...) SPINDLE_TSA(requires_capability(__VA_ARGS__))
// The caller must not hold these locks (the function takes them).
#define SPINDLE_EXCLUDES(...) SPINDLE_TSA(locks_excluded(__VA_ARGS__))
// The function takes the lock and returns holding it.
#define SPINDLE_ACQUIRE(...) SPINDLE_TSA(acquire_capability(__VA_ARGS__))
// The function drops a lock the caller held.
#define SPINDLE_RELEASE(...) SPINDLE_TSA(release_capability(__VA_ARGS__))
// The function returns true (or the given value) holding the lock.
#define SPINDLE_TRY_ACQUIRE(...) SPINDLE_TSA(try_acquire_capability(__VA_ARGS__))
// The function returns a reference to this lock.
#define SPINDLE_RETURN_CAPABILITY(x) SPINDLE_TSA(lock_returned(x))
// Claims, unchecked, that the caller holds the lock: for the few places
// where the lock is held by construction the analysis cannot follow.
#define SPINDLE_ASSERT_CAPABILITY(x) SPINDLE_TSA(assert_capability(x))
// Turns the analysis off for one function; each use says why.
#define SPINDLE_NO_THREAD_SAFETY_ANALYSIS SPINDLE_TSA(no_thread_safety_analysis)
