// Going to the background without losing startup errors: the parent waits until the child has
// mounted (exit 0) or failed (prints the child's reason, exits with its code). The fork happens
// before any thread exists.
#pragma once

#include <string>

namespace sitesfs::mount {

class Startup {
public:
    // In the foreground nothing happens; otherwise forks and only the child returns.
    explicit Startup(bool foreground);

    // The mount answers: release the parent and detach from the terminal.
    void ready();
    // Prints `sitesfs: message` (through the parent when detached) and returns `code`.
    int fail(int code, const std::string& message);

private:
    int to_parent_ = -1;
};

}  // namespace sitesfs::mount
