// cluster::detail::metrics_endpoint's definitions. Inline in a header-only build; compiled
// once into cluster::core otherwise.
//
// The request head is read with detail::request_head, the balancer's bounded scanner, not
// with llhttp: the core depends on liburing and Boost only (llhttp belongs to the optional
// cluster::http component), and a scrape needs no more than a request line and a whole head.
#pragma once

#include <cluster/detail/metrics_endpoint.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <cluster/detail/request_head.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/metrics/text_format.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/result.hpp>

namespace cluster::detail {

namespace metrics_endpoint_parts {

inline std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                            std::string_view extra_header = {}) {
    std::string out = "HTTP/1.1 ";
    out.append(status).append("\r\nContent-Type: ").append(content_type);
    out.append("\r\nContent-Length: ").append(std::to_string(body.size()));
    out.append("\r\nConnection: close\r\n").append(extra_header).append("\r\n").append(body);
    return out;
}

inline std::string plain(std::string_view status, std::string_view extra_header = {}) {
    return response(status, "text/plain; charset=utf-8", std::string(status) + "\n", extra_header);
}

// The request head, as far as max_scrape_head and a byte more; an error if the client ends
// the connection before the head is whole.
inline io::task<result<std::string>> read_head(int fd) {
    std::string head;
    char buf[2048];
    for (;;) {
        const std::size_t room = std::min(sizeof buf, max_scrape_head + 1 - head.size());
        auto n = co_await io::recv(fd, std::span(buf, room));
        if (!n) co_return n.error();
        if (*n == 0) co_return std::make_error_code(std::errc::connection_reset);
        head.append(buf, *n);
        if (head.size() > max_scrape_head || scan_request(head).state != head_scan::incomplete) co_return head;
    }
}

}  // namespace metrics_endpoint_parts

CLUSTER_DECL std::string scrape_response(std::string_view head, const std::function<std::string()>& page) {
    using namespace metrics_endpoint_parts;
    if (head.size() > max_scrape_head) return plain("431 Request Header Fields Too Large");
    const auto request = scan_request(head);
    if (request.state != head_scan::found) return plain("400 Bad Request");
    if (request.target.substr(0, request.target.find('?')) != "/metrics") return plain("404 Not Found");
    if (request.method != "GET") return plain("405 Method Not Allowed", "Allow: GET\r\n");
    return response("200 OK", metrics::text_content_type, page());
}

CLUSTER_DECL void metrics_endpoint::start(const net::endpoint& where, page_function page, io::scope& tasks) {
    net::listen_options o;
    o.reuse_port = where.is_ip();
    std::string step;
    auto opened = net::detail::open_listening(where, o, step);
    if (!opened)
        throw std::system_error(opened.error(), "cluster: metrics endpoint " + where.to_string() + ": " + step);
    socket_ = std::move(*opened);
    auto bound = net::local_endpoint(socket_.get());
    local_ = bound ? *bound : where;
    page_ = std::move(page);
    tasks_ = &tasks;
    acceptor_ = std::make_shared<detail::acceptor>(
        socket_.get(), [this](unique_fd client) { admit(std::move(client)); }, counts_);
    tasks.spawn(detail::acceptor::run(acceptor_));
}

CLUSTER_DECL void metrics_endpoint::close_in_forked_child() const noexcept {
    if (acceptor_) acceptor_->close_queued_in_forked_child();
    if (socket_) ::close(socket_.get());
    for (const int fd : clients_) ::close(fd);
}

CLUSTER_DECL void metrics_endpoint::admit(unique_fd client) {
    if (clients_.size() >= max_scrapes) return;  // closed: the scraper tries again later
    clients_.insert(client.get());
    tasks_->spawn(serve(*this, std::move(client)));
}

CLUSTER_DECL io::task<void> metrics_endpoint::serve(metrics_endpoint& self, unique_fd client) {
    const int fd = client.get();
    auto head = co_await io::with_timeout(metrics_endpoint_parts::read_head(fd), scrape_request_time);
    if (head) {
        const std::string answer = scrape_response(*head, self.page_);
        const auto bytes = std::as_bytes(std::span(answer));
        if (co_await io::with_timeout(io::send_all(fd, bytes), scrape_write_time)) ::shutdown(fd, SHUT_WR);
    }
    client.reset();
    self.clients_.erase(fd);
}

}  // namespace cluster::detail
