// Reading whole files, with the error scheme of the project.
#pragma once

#include <optional>
#include <string>

namespace ztseg {

// The file's bytes. Throws Error "read [what ]PATH: <strerror>".
std::string readFile(const std::string& path, const std::string& what = "");
// As readFile, but std::nullopt when the file does not exist (other errors throw).
std::optional<std::string> readFileIfExists(const std::string& path);

}  // namespace ztseg
