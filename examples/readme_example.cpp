#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace std::chrono_literals;

int main() {
  spindle::Runtime rt;          // one worker per usable CPU
  spindle::Future<int> answer;  // asyncio.Future(), thread-safe

  std::thread producer([answer]() mutable {  // a plain thread...
    std::this_thread::sleep_for(10ms);
    answer.set_result(42);  // ...completes it
  });

  int total = rt.block_on([answer]() mutable {  // asyncio.run(main())
    auto slow = spindle::spawn([] {             // asyncio.create_task()
      spindle::sleep(20ms);                     // suspends the task, not the thread
      return 1;
    });
    auto doomed = spindle::spawn([] { spindle::sleep(1h); });
    doomed.cancel("not needed");          // thrown at its next suspension point
    int sum = answer.get() + slow.get();  // await: tasks suspend, threads block
    try {
      doomed.get();
    } catch (const spindle::Cancelled& c) {
      std::printf("doomed task: %s\n", c.message().c_str());
    }
    return sum;
  });
  producer.join();
  std::printf("total = %d\n", total);  // total = 43
  return total == 43 ? 0 : 1;
}
