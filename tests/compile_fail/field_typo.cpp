// Must not compile: a misspelt field name (tests/CMakeLists: schema.FieldTypoDoesNotCompile).
#include "schemas/site_record.hpp"

const sitesfs::FieldValue& typo(const sitesfs::SiteRecord& site) { return site.field("domian"); }
