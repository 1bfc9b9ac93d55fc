// spindle: stackful tasks with asyncio's Tasks and Futures on a
// work-stealing multithreaded runtime. Include this header for everything.
#pragma once

#include "combinators.hpp"
#include "errors.hpp"
#include "future.hpp"
#include "queue.hpp"
#include "runtime.hpp"
#include "sync.hpp"
#include "task.hpp"
#include "task_group.hpp"
#include "this_task.hpp"
#include "to_thread.hpp"
