// One deliberate defect per sanitizer, chosen by argv[1]. tests/integration/sanitizer_test.cpp runs
// it to prove that a report in a program the tests start fails the test, and that UBSan stops the
// program (-fno-sanitize-recover) instead of printing and going on.
#include <climits>
#include <cstdio>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    const std::string defect = argc > 1 ? argv[1] : "";
    // volatile: the optimizer must neither fold the defect away nor prove it at compile time.
    volatile int sink = 0;
    if (defect == "use-after-free") {
        int* p = new int[4]{};
        int* volatile stale = p;
        delete[] p;
        sink = stale[1];
    } else if (defect == "signed-overflow") {
        volatile int big = INT_MAX;
        const int value = big;
        sink = value + 1;
    } else if (defect == "leak") {
        int* volatile lost = new int[8]{};
        sink = lost[0];
        lost = nullptr;
    } else if (defect == "data-race") {
        int shared = 0;
        std::thread other([&] { ++shared; });
        ++shared;
        other.join();
        sink = shared;
    } else {
        std::fprintf(stderr, "usage: sanitizer-canary use-after-free|signed-overflow|leak|data-race\n");
        return 2;
    }
    std::printf("continued after the defect\n");
    return sink == 12345;  // uses sink; never true
}
