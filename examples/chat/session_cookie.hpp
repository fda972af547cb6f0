// chat's session cookie: the sid each browser gets with the page, which --sticky-key
// cookie:sid keeps on one worker (and nginx's hash on one host) whenever it reconnects.
#pragma once

#include <cluster/http.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace chat {

// Whether one of the request's cookies is `name`.
inline bool has_cookie(const cluster::http::request& req, std::string_view name) {
    const auto cookies = req.header("Cookie");
    if (!cookies) return false;
    std::string_view rest = *cookies;
    while (!rest.empty()) {
        const auto end = rest.find(';');
        std::string_view pair = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        pair.remove_prefix(std::min(pair.find_first_not_of(' '), pair.size()));
        if (pair.starts_with(name) && pair.substr(name.size()).starts_with('=')) return true;
    }
    return false;
}

// A Set-Cookie line for a new sid: 64 random bits, unguessable enough to keep one client's
// place, not a credential.
class session_cookie {
public:
    std::string set_cookie_line() {
        char sid[17];
        std::snprintf(sid, sizeof sid, "%016llx", static_cast<unsigned long long>(random_()));
        return std::string("Set-Cookie: sid=") + sid + "; Path=/; SameSite=Lax\r\n";
    }

private:
    std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace chat
