// cluster::detail::line_splitter: a worker's output stream cut into lines — at each newline, at
// output_line_limit for a line that goes on and on, and at the stream's end.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <cluster/output_line.hpp>

namespace cluster::detail {

// Where to cut a line longer than output_line_limit: at the limit, or up to 3 bytes before, so
// that a UTF-8 character is not split across two lines.
inline std::size_t line_cut(std::string_view text) noexcept {
    const auto continuation = [&](std::size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
    for (std::size_t cut = output_line_limit; cut > output_line_limit - 4; --cut)
        if (!continuation(cut)) return cut;
    return output_line_limit;  // not UTF-8 text: cut anywhere
}

// Keeps the start of a line until its end comes, never more than output_line_limit of it.
class line_splitter {
public:
    // The worker's next bytes: each line they complete goes to on_line(std::string_view text,
    // line_end end), in order.
    template <class OnLine>
    void take(std::string_view bytes, OnLine&& on_line) {
        partial_.append(bytes);
        std::string_view rest(partial_);
        for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1)) {
            std::string_view line = rest.substr(0, nl);
            while (line.size() > output_line_limit) line.remove_prefix(cut_piece(line, on_line));
            on_line(line, line_end::newline);
        }
        while (rest.size() > output_line_limit) rest.remove_prefix(cut_piece(rest, on_line));
        partial_.erase(0, partial_.size() - rest.size());
    }

    // The stream ended: a last line without a newline goes to on_line as it is.
    template <class OnLine>
    void finish(OnLine&& on_line) {
        if (!partial_.empty()) on_line(std::string_view(partial_), line_end::eof);
        partial_.clear();
    }

    // The start of a line whose end has not come yet.
    [[nodiscard]] std::size_t unfinished() const noexcept { return partial_.size(); }

private:
    // The first piece of a line longer than output_line_limit, given as a line; returns its length.
    template <class OnLine>
    static std::size_t cut_piece(std::string_view text, OnLine& on_line) {
        const std::size_t cut = line_cut(text);
        on_line(text.substr(0, cut), line_end::cut);
        return cut;
    }

    std::string partial_;
};

}  // namespace cluster::detail
