#include "hooks/reload.hpp"

#include "hooks/command.hpp"

namespace sitesfs::hooks {

namespace {

class CommandReloader : public Reloader {
public:
    CommandReloader(std::vector<std::string> argv, std::chrono::milliseconds timeout)
        : argv_(std::move(argv)), timeout_(timeout) {}
    void reload() override {
        const CommandResult r = run_command(argv_, timeout_);
        if (r.ok()) return;
        // Killed midway (by our deadline or a signal), it may have handed the proxy the new config.
        const bool cut_off = r.timed_out || r.signal != 0;
        throw ReloadError(describe() + ": " + r.summary(), cut_off ? RunningConfig::unknown : RunningConfig::unchanged);
    }
    std::string describe() const override { return "command " + argv_.front(); }

private:
    std::vector<std::string> argv_;
    std::chrono::milliseconds timeout_;
};

class NoReloader : public Reloader {
public:
    void reload() override {}
    std::string describe() const override { return "nothing (reload mode none)"; }
};

}  // namespace

std::unique_ptr<Reloader> make_reloader(const ReloadConfig& config) {
    switch (config.mode) {
        case ReloadMode::systemd:
            return make_systemd_reloader(config.unit, config.timeout);
        case ReloadMode::none:
            return std::make_unique<NoReloader>();
        case ReloadMode::command:
            if (config.command.empty())
                throw ReloadError("reload mode 'command' needs [reload] command, e.g. [\"caddy\", \"reload\", ...]",
                                  RunningConfig::unchanged);
            return std::make_unique<CommandReloader>(config.command, config.timeout);
    }
    throw ReloadError("unknown reload mode", RunningConfig::unchanged);
}

}  // namespace sitesfs::hooks
