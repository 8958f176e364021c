// A TCP server on 127.0.0.1 that accepts every connection, sends an optional greeting, and then
// never says anything more: what a remote stuck behind a broken proxy or a hung git daemon looks
// like to a client. Connections stay open until the server is destroyed (also when a test fails).
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace sitesfs::it {

class StallServer {
public:
    explicit StallServer(std::string greeting = "");
    ~StallServer();
    StallServer(const StallServer&) = delete;
    StallServer& operator=(const StallServer&) = delete;

    int port() const { return port_; }
    int accepted() const { return accepted_.load(); }

private:
    void serve();

    std::string greeting_;
    int listener_ = -1;
    int wake_[2] = {-1, -1};  // a byte here stops serve()
    int port_ = 0;
    std::atomic<int> accepted_{0};
    std::vector<int> connections_;
    std::thread thread_;
};

// A listening socket whose accept queue is full, so the next connect() gets no answer at all (its
// SYN is dropped): a host that does not answer. Linux only queues backlog + 1 connections.
class FullBacklog {
public:
    FullBacklog();
    ~FullBacklog();
    FullBacklog(const FullBacklog&) = delete;
    FullBacklog& operator=(const FullBacklog&) = delete;

    int port() const { return port_; }
    // False (and why) when the queue could not be filled on this machine.
    bool filled(std::string* why) const;

private:
    int listener_ = -1;
    int port_ = 0;
    std::vector<int> clients_;
    std::string why_;
};

}  // namespace sitesfs::it
