// Text encodings for the JSON forms (histories, payloads): base64 for bytes
// JSON cannot hold as a string, and the UTF-8 check that decides it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace duro::engine {

// Standard base64 (RFC 4648 section 4), with padding.
std::string base64_encode(std::string_view bytes);
// Strict: whole groups of four, padding only at the end, the unused bits of
// a padded group zero, so each byte string has exactly one spelling.
// nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

// Well-formed UTF-8 (Unicode 15, table 3-7): no overlong forms, no
// surrogates, nothing above U+10FFFF. Exactly what the JSON library
// accepts, so text that passes is written as a JSON string unchanged.
bool is_utf8(std::string_view text) noexcept;

}  // namespace duro::engine
