// cluster::detail::control_commands' definitions, which need the whole supervisor. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <system_error>

#include <cluster/detail/control_commands.hpp>

namespace cluster::detail {

CLUSTER_DECL cluster_status control_commands::status() { return s_.report(); }

CLUSTER_DECL io::task<reload_event> control_commands::reload() { return s_.rollout.reload(); }

CLUSTER_DECL io::task<std::string> control_commands::scale(std::size_t n) {
    if (s_.stopping) co_return "the primary is stopping";
    try {
        co_await s_.rollout.scale(n);
    } catch (const std::system_error& e) {
        co_return e.what();
    }
    co_return std::string{};
}

CLUSTER_DECL void control_commands::stop() { s_.stopper.request_stop(); }

CLUSTER_DECL std::string control_commands::upgrade() {
    auto why = s_.upgrader.refusal();
    if (why.empty()) s_.upgrader.upgrade_on_signal();
    return why;
}

}  // namespace cluster::detail
