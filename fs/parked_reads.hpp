// Reads that wait: the first read of a file whose schema row has `settled` (a site's `wait`) is
// parked without a reply until the site settles, its deadline passes, the reader is interrupted
// (Ctrl-C) or the filesystem stops. No handler thread ever blocks: the request is answered later
// from whichever thread sees the change, so a hundred waiting scripts cost no threads.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "schemas/site_schema.hpp"

namespace sitesfs::fs {

struct Handle;

class ParkedReads {
public:
    // What a parked read of `site` (opened at `generation`) answers now: the content once settled,
    // nothing while it must wait; `err` set (e.g. ENOENT, site removed) ends the wait with an error.
    using Probe = std::function<std::optional<std::string>(const FieldSpec& field, const std::string& site,
                                                           uint64_t generation, int& err)>;

    ParkedReads(Probe probe, std::chrono::milliseconds timeout);
    ~ParkedReads();

    void start();
    void stop();  // answers every parked read with EINTR and joins the deadline thread

    // Answers `req` at once when the probe allows, else parks it. The answer is kept in the handle,
    // so later reads of the same open file continue the same text.
    void read(fuse_req_t req, Handle& handle, size_t size);
    // Re-probes the reads parked on `site` (after any change to it).
    void recheck(const std::string& site);

private:
    struct Parked {
        fuse_req_t req;
        Handle* handle;
        const FieldSpec* field;
        std::string site;
        uint64_t generation;
        size_t size;
        std::chrono::steady_clock::time_point deadline;
    };

    static void on_interrupt(fuse_req_t req, void* self);
    void answer(const Parked& p, const std::optional<std::string>& content, int err);
    void expire();

    Probe probe_;
    const std::chrono::milliseconds timeout_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<std::string, Parked> parked_;  // by site
    std::map<fuse_req_t, bool> unparked_;  // reads between registering for interrupts and parking: interrupted?
    bool running_ = false;
    std::thread deadlines_;
};

}  // namespace sitesfs::fs
