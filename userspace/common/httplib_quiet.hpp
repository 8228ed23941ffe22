// cpp-httplib (Debian's libcpp-httplib) without its warnings, which our
// -Wall -Wextra -Werror build would otherwise turn into errors.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include <httplib.h>
#pragma GCC diagnostic pop
