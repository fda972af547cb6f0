// cluster::detail::control_commands: the control socket's commands as this primary carries them
// out — its status, a reload, a scale, a stop, an upgrade — and the tap on its workers' relayed output.
#pragma once

#include <cluster/config.hpp>

#include <cstddef>
#include <string>

#include <cluster/detail/control_server.hpp>
#include <cluster/detail/log_tap.hpp>
#include <cluster/events.hpp>
#include <cluster/io/task.hpp>
#include <cluster/status.hpp>

namespace cluster::detail {

class supervisor;

class control_commands final : public control_target {
public:
    explicit control_commands(supervisor& s) noexcept : s_(s) {}

    CLUSTER_DECL cluster_status status() override;
    CLUSTER_DECL io::task<reload_event> reload() override;
    CLUSTER_DECL io::task<std::string> scale(std::size_t n) override;
    CLUSTER_DECL void stop() override;
    CLUSTER_DECL std::string upgrade() override;
    log_tap& logs() override { return tap_; }

private:
    supervisor& s_;
    log_tap tap_;
};

}  // namespace cluster::detail
