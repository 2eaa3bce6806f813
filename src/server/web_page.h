// The page `infini serve` shows at / (src/server/web/index.html, built into the binary).
#pragma once

#include <string_view>

namespace infini::server {

std::string_view web_page();

}  // namespace infini::server
